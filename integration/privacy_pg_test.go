package integration

import (
	"bytes"
	"context"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// topicsWithPrefix lists every topic whose name starts with prefix (data topics, dead
// letters, internal topics).
func topicsWithPrefix(t *testing.T, s stack, prefix string) []string {
	t.Helper()
	adm := kadmClient(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ts, err := adm.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, name := range ts.Names() {
		if strings.HasPrefix(name, prefix) {
			out = append(out, name)
		}
	}
	return out
}

// grepTopics reads every record of every topic whose name starts with prefix (read
// uncommitted: an aborted record is a leak too) and returns, per canary, the topics whose
// keys, values or headers hold it. It also returns the number of records read.
func grepTopics(t *testing.T, s stack, prefix string, canaries ...string) (map[string][]string, int) {
	t.Helper()
	topics := topicsWithPrefix(t, s, prefix)
	hits := map[string][]string{}
	if len(topics) == 0 {
		return hits, 0
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.kafka...), kgo.ConsumeTopics(topics...),
		kgo.FetchIsolationLevel(kgo.ReadUncommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	n := 0
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			n++
			blobs := [][]byte{r.Key, r.Value}
			for _, h := range r.Headers {
				blobs = append(blobs, []byte(h.Key), h.Value)
			}
			for _, c := range canaries {
				for _, b := range blobs {
					if bytes.Contains(b, []byte(c)) {
						hits[c] = append(hits[c], r.Topic)
						break
					}
				}
			}
		})
	}
	return hits, n
}

// TestPrivacyPublicationColumnListAndRowFilter: a publication an operator made with a column
// list (email, and a column of a type cdcd cannot carry, left out) and a row filter (odd ids
// left out) is honoured by the initial snapshot as by the stream: the snapshot runs, no record
// in any topic holds an excluded column's canary or a filtered-out row's canary, and the
// snapshot reads exactly the rows the filter selects.
func TestPrivacyPublicationColumnListAndRowFilter(t *testing.T) {
	name := uniqueName("privpub")
	s, ctx, dsn, db := setup(t, 4*time.Minute, "cdcd_priv_pub", `CREATE TYPE pair AS (a int, b text);
		CREATE TABLE people (id int PRIMARY KEY, email text, name text NOT NULL, extra pair);
		INSERT INTO people SELECT g, 'CANARYMAIL' || g || '@example.com',
			CASE WHEN g % 2 = 0 THEN 'shown' || g ELSE 'CANARYROW' || g END, (g, 'CANARYPAIR')::pair FROM generate_series(1, 200) g;
		CREATE PUBLICATION `+name+` FOR TABLE people (id, name) WHERE (id % 2 = 0) WITH (publish_via_partition_root = true);`)
	d := startQuietDaemon(t, pipelineYAML(s, name, dsn, []string{"public.people"}, "    snapshot: initial\n    on_error: dlq\n"))
	waitFor(t, d, "the snapshot", 2*time.Minute, func() bool { return strings.Contains(d.Logs(), `msg="snapshot finished"`) })
	// The stream too: new rows on both sides of the filter.
	if _, err := db.Exec(ctx, `INSERT INTO people VALUES (1000, 'CANARYMAIL1000@example.com', 'shown1000'), (1001, 'CANARYMAIL1001@example.com', 'CANARYROW1001')`); err != nil {
		t.Fatal(err)
	}
	recs := readSnapTopicRaw(t, s, name+".public.people", 101, time.Minute)
	reads, streamed := 0, 0
	c := newConsumer(t, s)
	for _, r := range recs {
		if r.Value == nil {
			continue
		}
		v := c.decode(t, r.Value)
		after := unwrapAll(asMap(v["after"]))
		if _, ok := after["email"]; ok {
			t.Fatalf("record %v has the unpublished column email", after)
		}
		switch v["op"] {
		case "r":
			reads++
			if id := toInt64(t, after["id"]); id%2 != 0 {
				t.Errorf("the snapshot read row %d, which the publication's row filter leaves out", id)
			}
		case "c":
			streamed++
		}
	}
	if reads != 100 || streamed != 1 {
		t.Errorf("got %d snapshot reads and %d streamed inserts, want 100 and 1", reads, streamed)
	}
	hits, n := grepTopics(t, s, name+".", "CANARYMAIL", "CANARYROW", "CANARYPAIR")
	if len(hits) > 0 {
		t.Fatalf("canaries found in %d records read: %v", n, hits)
	}
	if n < 101 {
		t.Fatalf("read only %d records from the pipeline's topics", n)
	}
}

// startQuietDaemon is startDaemon, stopped with SIGTERM at the end of the test (before the
// harness's SIGKILL), so it leaves no open Kafka transaction in the shared offsets topic that
// would hold back read_committed readers of other tests.
func startQuietDaemon(t *testing.T, yaml string) *daemon {
	t.Helper()
	d := startDaemon(t, yaml)
	t.Cleanup(func() { d.stop(syscall.SIGTERM) })
	return d
}

// readSnapTopicRaw reads a topic (read_committed) until at least n records arrived and then
// for 2 s more.
func readSnapTopicRaw(t *testing.T, s stack, topic string, n int, timeout time.Duration) []*kgo.Record {
	t.Helper()
	c := newConsumer(t, s, topic)
	return c.read(t, n, timeout, 2*time.Second)
}
