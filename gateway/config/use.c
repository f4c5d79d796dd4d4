/*
 * use.c - what the programs ask of a loaded configuration: a broker by name, the route table its mappings
 * make, a mapping's effective retention, a broker's or a forwarder's password read from its file. Loading and
 * checking the YAML is config.c's; these work on the validated struct mq_config alone.
 */
#include "config/config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "route/route.h"

const struct mq_config_broker *mq_config_broker_find(const struct mq_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->nbrokers; i++)
        if (cfg->brokers[i].name && strcmp(cfg->brokers[i].name, name) == 0)
            return &cfg->brokers[i];
    return NULL;
}

enum mq_err mq_config_route_table(const struct mq_config *cfg, struct mq_route_table **out, char *errstr,
                                  size_t errstr_size)
{
    struct mq_route_def *defs = NULL;
    if (cfg->nmappings && !(defs = calloc(cfg->nmappings, sizeof(*defs))))
        return mq_errf(MQ_ERR_NOMEM, errstr, errstr_size, "out of memory");
    for (size_t i = 0; i < cfg->nmappings; i++) {
        const struct mq_config_mapping *m = &cfg->mappings[i];
        defs[i] = (struct mq_route_def){
            .from = (const char *const *)m->from,
            .nfrom = m->nfrom,
            .broker = m->broker,
            .qos = (int)m->qos,
            .to = m->to,
            .partitions = (int32_t)m->partitions,
            .key = m->key,
        };
    }
    enum mq_err err = mq_route_table_new(defs, cfg->nmappings, cfg->unmatched, out, errstr, errstr_size);
    free(defs);
    return err;
}

void mq_config_mapping_retention(const struct mq_config *cfg, const struct mq_config_mapping *m, int64_t *ms,
                                 int64_t *bytes)
{
    *ms = m->retention_ms >= 0 ? m->retention_ms : cfg->log.retention_ms;
    *bytes = m->retention_bytes >= 0 ? m->retention_bytes : cfg->log.retention_bytes;
}

int mq_config_mapping_compression(const struct mq_config *cfg, const struct mq_config_mapping *m)
{
    return m->compression >= 0 ? m->compression : cfg->log.compression;
}

int64_t mq_config_mapping_recompact_after(const struct mq_config *cfg, const struct mq_config_mapping *m)
{
    return m->recompact_after_ms >= 0 ? m->recompact_after_ms : cfg->log.recompact_after_ms;
}

enum mq_err mq_config_password_file(const char *path, char **out, char *errstr, size_t errstr_size)
{
    *out = NULL;
    if (!path)
        return MQ_OK;
    FILE *f = fopen(path, "r");
    if (!f)
        return mq_errf(mq_err_from_errno(errno), errstr, errstr_size, "password_file %s: %s", path,
                       MQ_STRERROR(errno));
    char *line = NULL;
    size_t cap = 0;
    errno = 0;
    ssize_t n = getline(&line, &cap, f);
    int read_errno = errno;
    bool failed = ferror(f) != 0;
    fclose(f);
    if (n < 0) {
        free(line);
        if (failed)
            return mq_errf(mq_err_from_errno(read_errno), errstr, errstr_size, "password_file %s: %s", path,
                           MQ_STRERROR(read_errno));
        return mq_errf(MQ_ERR_INVAL, errstr, errstr_size, "password_file %s is empty", path);
    }
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    *out = line;
    return MQ_OK;
}

enum mq_err mq_config_broker_password(const struct mq_config_broker *b, char **out, char *errstr,
                                      size_t errstr_size)
{
    return mq_config_password_file(b->password_file, out, errstr, errstr_size);
}

enum mq_err mq_config_sasl_password(const struct mq_config_sasl *s, char **out, char *errstr,
                                    size_t errstr_size)
{
    return mq_config_password_file(s->mechanism ? s->password_file : NULL, out, errstr, errstr_size);
}
