/*
 * paho.h - the MQTT source connector on Eclipse Paho MQTT C (MQTTAsync), `client: paho` in the configuration.
 *
 * It acknowledges a QoS 1/2 message only after mq_ingest_message() stored it, and with the broker's
 * durable_ack only after its records are durable (mq_ingest_wait()). Paho runs one receive thread for the
 * whole process: a message callback waiting for the disk stalls every Paho connection of the process, so
 * `sessions: N` does not multiply durable-ack throughput inside one process (see paho_int.h).
 */
#ifndef MQ_CONNECTOR_PAHO_H
#define MQ_CONNECTOR_PAHO_H

#include "connector.h"

extern const struct mq_connector mq_connector_paho;

#endif
