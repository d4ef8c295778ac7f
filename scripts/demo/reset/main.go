// Command reset clears the Kafka side of the demo pipeline so `make demo` can run again from
// scratch:
//
//   - it deletes the pipeline's record topics (<prefix>.*), so the watcher, which reads from
//     the start, shows only the new run. Deletion is asynchronous: it waits until the brokers
//     no longer list them, or cdcd could recreate a topic that is still being deleted;
//   - it forgets the pipeline's committed position, as `cdcd reset-offsets` does: a tombstone
//     for the pipeline in the offsets topic, written in a transaction of the pipeline's own
//     transactional id (cdcd-<pipeline>), which also fences a producer a killed run left
//     behind and aborts its open transaction. The demo recreates the replication slot on every
//     run, and a new slot under an old position is a gap cdcd refuses to start on. Unlike
//     `cdcd reset-offsets`, it also works when the offsets topic does not exist yet;
//   - with --window-job, it deletes that window job's internal topics (cdcd-window.<job>.*)
//     and its consumer group, so the job starts with no state and no committed offsets (its
//     output topic is under the prefix).
//
// Usage:
//
//	go run ./scripts/demo/reset --brokers 127.0.0.1:19092 --prefix shop --pipeline shop
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

func main() {
	brokers := flag.String("brokers", "127.0.0.1:19092", "comma-separated bootstrap brokers")
	prefix := flag.String("prefix", "shop", "topic prefix: every topic named <prefix>.* is deleted")
	pipeline := flag.String("pipeline", "shop", "pipeline whose committed position to forget")
	offsetsTopic := flag.String("offsets-topic", "_cdcd_offsets", "the offsets topic (kafka.offsets_topic)")
	windowJob := flag.String("window-job", "", "a window job whose internal topics and consumer group to delete")
	flag.Parse()

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	bs := strings.Split(*brokers, ",")
	err := deleteTopics(ctx, bs, *prefix+".")
	if err == nil && *windowJob != "" {
		err = forgetWindowJob(ctx, bs, *windowJob)
	}
	if err == nil {
		err = forgetPosition(ctx, bs, *offsetsTopic, *pipeline)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "reset:", err)
		os.Exit(1)
	}
}

func forgetPosition(ctx context.Context, brokers []string, topic, pipeline string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return err
	}
	topics, err := kadm.NewClient(cl).ListTopics(ctx, topic)
	cl.Close()
	if err != nil {
		return fmt.Errorf("listing topics: %w", err)
	}
	if d, ok := topics[topic]; !ok || d.Err != nil {
		fmt.Printf("no offsets topic %s yet: no position to forget\n", topic)
		return nil
	}
	tx, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.TransactionalID("cdcd-"+pipeline))
	if err != nil {
		return err
	}
	defer tx.Close()
	if err := tx.BeginTransaction(); err != nil {
		return fmt.Errorf("beginning a transaction: %w", err)
	}
	if err := tx.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: []byte(pipeline)}).FirstErr(); err != nil {
		_ = tx.EndTransaction(ctx, kgo.TryAbort)
		return fmt.Errorf("writing the tombstone of %s to %s: %w", pipeline, topic, err)
	}
	if err := tx.EndTransaction(ctx, kgo.TryCommit); err != nil {
		return fmt.Errorf("committing the tombstone: %w", err)
	}
	fmt.Printf("forgot the committed position of pipeline %s (tombstone in %s)\n", pipeline, topic)
	return nil
}

func deleteTopics(ctx context.Context, brokers []string, prefix string) error {
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
		if strings.HasPrefix(t, prefix) {
			doomed = append(doomed, t)
		}
	}
	if len(doomed) == 0 {
		fmt.Printf("no topics %s* to delete\n", prefix)
		return nil
	}
	sort.Strings(doomed)
	resp, err := adm.DeleteTopics(ctx, doomed...)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		return fmt.Errorf("deleting topics %v: %w", doomed, err)
	}
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
	return nil
}

// forgetWindowJob deletes a window job's consumer group (cdcd-window-<job>) and internal
// topics (cdcd-window.<job>.*): names as package window gives them.
func forgetWindowJob(ctx context.Context, brokers []string, job string) error {
	if err := deleteTopics(ctx, brokers, "cdcd-window."+job+"."); err != nil {
		return err
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return err
	}
	defer cl.Close()
	group := "cdcd-window-" + job
	// A brand-new broker has no group coordinator until it created its offsets topic: the
	// lookup and the deletion answer COORDINATOR_NOT_AVAILABLE (or LOADING) for a while, and
	// kgo does not retry those. Retry any retriable error until the deadline.
	for {
		err := deleteGroup(ctx, kadm.NewClient(cl), group)
		if err == nil {
			break
		}
		if !retriable(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (still retrying when the deadline passed: %v)", err, ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
	fmt.Printf("forgot window job %s: its internal topics and consumer group %s\n", job, group)
	return nil
}

// deleteGroup deletes one consumer group; a group that does not exist is already deleted.
func deleteGroup(ctx context.Context, adm *kadm.Client, group string) error {
	resp, err := adm.DeleteGroups(ctx, group)
	if err != nil {
		if errors.Is(err, kerr.GroupIDNotFound) {
			return nil
		}
		return fmt.Errorf("deleting consumer group %s: %w", group, err)
	}
	if r, ok := resp[group]; ok && r.Err != nil && !errors.Is(r.Err, kerr.GroupIDNotFound) {
		if retriable(r.Err) {
			return fmt.Errorf("deleting consumer group %s: %w", group, r.Err)
		}
		return fmt.Errorf("deleting consumer group %s: %w (fix: stop every cdcd running the job first)", group, r.Err)
	}
	return nil
}

// retriable reports whether err holds a Kafka error the broker marks retriable (a coordinator
// not available yet or loading, a leader moving).
func retriable(err error) bool {
	var ke *kerr.Error
	return errors.As(err, &ke) && ke.Retriable
}
