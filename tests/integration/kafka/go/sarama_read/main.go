// sarama_read: reads every record of a topic with Debian's sarama (golang-github-shopify-sarama-dev) at its
// default protocol Version (0.8.2: Fetch v0, message format v0), then commits the positions of group GROUP
// with sarama's offset manager (FindCoordinator v0, OffsetCommit v1) and reads them back.
//
// Usage: sarama_read BROKER TOPIC GROUP
// Prints one line per record, "msg PARTITION OFFSET KEY VALUE", then "committed N" and "done N".
package main

import (
	"fmt"
	"os"
	"sort"
	"time"

	"github.com/Shopify/sarama"
)

func fail(format string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, "sarama_read: "+format+"\n", a...)
	os.Exit(1)
}

func main() {
	if len(os.Args) != 4 {
		fail("usage: sarama_read BROKER TOPIC GROUP")
	}
	broker, topic, group := os.Args[1], os.Args[2], os.Args[3]
	conf := sarama.NewConfig() // Version stays at its default, the oldest sarama speaks
	conf.Consumer.Return.Errors = true
	conf.Consumer.MaxWaitTime = 100 * time.Millisecond
	client, err := sarama.NewClient([]string{broker}, conf)
	if err != nil {
		fail("client: %v", err)
	}
	defer client.Close()
	parts, err := client.Partitions(topic)
	if err != nil {
		fail("partitions: %v", err)
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i] < parts[j] })
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		fail("consumer: %v", err)
	}
	ends := map[int32]int64{}
	total := 0
	for _, p := range parts {
		end, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			fail("end offset of %d: %v", p, err)
		}
		ends[p] = end
		if end == 0 {
			continue
		}
		pc, err := consumer.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			fail("consume %d: %v", p, err)
		}
		deadline := time.After(30 * time.Second)
	loop:
		for {
			select {
			case m := <-pc.Messages():
				fmt.Printf("msg %d %d %s %s\n", m.Partition, m.Offset, m.Key, m.Value)
				total++
				if m.Offset+1 >= end {
					break loop
				}
			case e := <-pc.Errors():
				fail("partition %d: %v", p, e)
			case <-deadline:
				fail("partition %d: timed out before offset %d", p, end)
			}
		}
		pc.Close()
	}
	om, err := sarama.NewOffsetManagerFromClient(group, client)
	if err != nil {
		fail("offset manager: %v", err)
	}
	for _, p := range parts {
		pom, err := om.ManagePartition(topic, p)
		if err != nil {
			fail("manage %d: %v", p, err)
		}
		pom.MarkOffset(ends[p], "")
		pom.Close()
	}
	om.Close() // flushes the marked offsets
	committed := 0
	om2, err := sarama.NewOffsetManagerFromClient(group, client)
	if err != nil {
		fail("offset manager: %v", err)
	}
	for _, p := range parts {
		pom, err := om2.ManagePartition(topic, p)
		if err != nil {
			fail("manage %d: %v", p, err)
		}
		if off, _ := pom.NextOffset(); off == ends[p] {
			committed++
		} else {
			fail("partition %d: committed %d, expected %d", p, off, ends[p])
		}
		pom.Close()
	}
	om2.Close()
	fmt.Printf("committed %d\n", committed)
	fmt.Printf("done %d\n", total)
}
