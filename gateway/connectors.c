/*
 * connectors.c - the table of connectors built into this binary. CMake defines MQ_HAVE_<NAME> for each
 * connector whose library target exists (its build option is on), so a build without one simply does not
 * offer it, and a configuration naming it is refused with that reason (daemon/load.c).
 */
#include <string.h>

#include "connector.h"

#ifdef MQ_HAVE_PAHO
extern const struct mq_connector mq_connector_paho;
#endif
#ifdef MQ_HAVE_MOSQUITTO
extern const struct mq_connector mq_connector_mosquitto;
#endif

const struct mq_connector *const mq_connectors[] = {
#ifdef MQ_HAVE_PAHO
    &mq_connector_paho,
#endif
#ifdef MQ_HAVE_MOSQUITTO
    &mq_connector_mosquitto,
#endif
    NULL,
};

const struct mq_connector *mq_connector_find(const char *name)
{
    for (size_t i = 0; mq_connectors[i]; i++)
        if (mq_connectors[i]->version >= 1 && strcmp(mq_connectors[i]->name, name) == 0)
            return mq_connectors[i];
    return NULL;
}
