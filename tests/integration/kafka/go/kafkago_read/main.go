// kafkago_read: reads COUNT records of a topic with Debian's kafka-go 0.2.1
// (golang-github-segmentio-kafka-go-dev, Fetch v2: message format v1) in consumer group GROUP (JoinGroup
// v1, SyncGroup v0, OffsetCommit v2), committing each record as it is read.
//
// Usage: kafkago_read BROKER TOPIC GROUP COUNT
// Prints one line per record, "msg PARTITION OFFSET KEY VALUE TIMESTAMP_MS", then "done N".
package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"time"

	kafka "github.com/segmentio/kafka-go"
)

func main() {
	if len(os.Args) != 5 {
		fmt.Fprintln(os.Stderr, "usage: kafkago_read BROKER TOPIC GROUP COUNT")
		os.Exit(2)
	}
	count, err := strconv.Atoi(os.Args[4])
	if err != nil {
		fmt.Fprintln(os.Stderr, "kafkago_read: bad COUNT")
		os.Exit(2)
	}
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:           []string{os.Args[1]},
		Topic:             os.Args[2],
		GroupID:           os.Args[3],
		MinBytes:          1,
		MaxBytes:          1 << 20,
		MaxWait:           100 * time.Millisecond,
		HeartbeatInterval: 500 * time.Millisecond,
		SessionTimeout:    6 * time.Second,
	})
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for n := 0; n < count; n++ {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			fmt.Fprintf(os.Stderr, "kafkago_read: after %d records: %v\n", n, err)
			os.Exit(1)
		}
		fmt.Printf("msg %d %d %s %s %d\n", m.Partition, m.Offset, m.Key, m.Value, m.Time.UnixNano()/1e6)
	}
	fmt.Printf("done %d\n", count)
}
