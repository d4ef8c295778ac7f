// Command reset clears the Kafka side of the demo pipeline so `make demo` can run again from
// scratch: it deletes the pipeline's record topics (<prefix>.*) and writes a tombstone for the
// pipeline in the offsets topic, inside a transaction of the pipeline's own transactional id.
//
// The demo drops and recreates the Postgres slot on every run. A slot that is new while the
// offsets topic still holds a committed position is a gap, and cdcd refuses to start; so the
// position has to go too. Writing the tombstone with the transactional id cdcd-<pipeline>
// first fences any producer of an earlier, killed run and aborts its open transaction, so a
// read_committed reader sees the tombstone at once instead of after transaction.timeout.
//
//	go run ./scripts/demo/reset --brokers 127.0.0.1:19092 --pipeline shop --prefix shop
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func main() {
	brokers := flag.String("brokers", "127.0.0.1:19092", "comma-separated bootstrap brokers")
	pipeline := flag.String("pipeline", "shop", "pipeline name (offsets key; transactional id cdcd-<name>)")
	prefix := flag.String("prefix", "shop", "topic prefix: every topic named <prefix>.* is deleted")
	offsetsTopic := flag.String("offsets-topic", "_cdcd_offsets", "the offsets topic")
	flag.Parse()

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := reset(ctx, strings.Split(*brokers, ","), *pipeline, *prefix, *offsetsTopic); err != nil {
		fmt.Fprintln(os.Stderr, "reset:", err)
		os.Exit(1)
	}
}

func reset(ctx context.Context, brokers []string, pipeline, prefix, offsetsTopic string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)

	topics, err := adm.ListTopics(ctx)
	if err != nil {
		return fmt.Errorf("listing topics: %w", err)
	}
	var doomed []string
	for _, t := range topics.Names() {
		if strings.HasPrefix(t, prefix+".") {
			doomed = append(doomed, t)
		}
	}
	sort.Strings(doomed)
	if len(doomed) > 0 {
		resp, err := adm.DeleteTopics(ctx, doomed...)
		if err != nil {
			return fmt.Errorf("deleting topics: %w", err)
		}
		if err := resp.Error(); err != nil {
			return fmt.Errorf("deleting topics: %w", err)
		}
		// Deletion is asynchronous: wait until the topics are gone from the metadata, or
		// cdcd could find a topic that is still being deleted and fail to produce to it.
		for {
			left, err := adm.ListTopics(ctx, doomed...)
			if err != nil {
				return fmt.Errorf("listing topics: %w", err)
			}
			n := 0
			for _, d := range left {
				if d.Err == nil {
					n++
				}
			}
			if n == 0 {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("waiting for topics %v to be deleted: %w", doomed, ctx.Err())
			case <-time.After(200 * time.Millisecond):
			}
		}
		fmt.Printf("deleted topics %s\n", strings.Join(doomed, " "))
	}

	if !topics.Has(offsetsTopic) {
		return nil // nothing committed yet
	}
	tx, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.TransactionalID("cdcd-"+pipeline))
	if err != nil {
		return err
	}
	defer tx.Close()
	if err := tx.BeginTransaction(); err != nil {
		return fmt.Errorf("beginning transaction: %w", err)
	}
	if err := tx.ProduceSync(ctx, &kgo.Record{Topic: offsetsTopic, Key: []byte(pipeline)}).FirstErr(); err != nil {
		_ = tx.EndTransaction(ctx, kgo.TryAbort)
		return fmt.Errorf("writing the tombstone for %s to %s: %w", pipeline, offsetsTopic, err)
	}
	if err := tx.EndTransaction(ctx, kgo.TryCommit); err != nil {
		return fmt.Errorf("committing the tombstone: %w", err)
	}
	fmt.Printf("cleared the committed position of pipeline %s in %s\n", pipeline, offsetsTopic)
	return nil
}
