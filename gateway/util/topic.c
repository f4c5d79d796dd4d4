/*
 * topic.c - Kafka's topic-name rule (see topic.h).
 */
#include "util/topic.h"

#include <string.h>

bool mq_topic_name_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
}

bool mq_topic_name_valid_len(const char *name, size_t len)
{
    if (!name || len == 0 || len > MQ_TOPIC_NAME_MAX)
        return false;
    if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.'))
        return false; /* they would name the directory itself or its parent */
    for (size_t i = 0; i < len; i++)
        if (!mq_topic_name_char((unsigned char)name[i]))
            return false;
    return true;
}

bool mq_topic_name_valid(const char *name)
{
    return name && mq_topic_name_valid_len(name, strlen(name));
}
