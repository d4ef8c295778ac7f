package integration

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"
)

const outboxDDL = `CREATE TABLE outbox (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), aggregatetype text NOT NULL,
	aggregateid text NOT NULL, type text NOT NULL, payload jsonb, secret text)`

// outboxEvent is one event the writer committed: aggregate key k of type typ got value v.
type outboxEvent struct {
	typ string
	k   int
	v   int64
}

// outboxWriter inserts outbox rows in transactions of random size, paced to about rate rows
// per second; some transactions delete their rows again before committing (the usual way an
// application keeps its outbox empty), some update one (not an event).
type outboxWriter struct {
	mu     sync.Mutex
	events []outboxEvent
}

func (w *outboxWriter) written() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.events)
}

func (w *outboxWriter) run(ctx context.Context, db *pgx.Conn, total, maxTx, rate, keys int, seed uint64) error {
	rng := rand.New(rand.NewPCG(seed, 11))
	start := time.Now()
	var v int64
	for w.written() < total {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		size := min(1+rng.IntN(maxTx), total-w.written())
		batch := &pgx.Batch{}
		var txEvents []outboxEvent
		for range size {
			v++
			e := outboxEvent{typ: []string{"order", "customer"}[rng.IntN(2)], k: rng.IntN(keys), v: v}
			batch.Queue(`INSERT INTO outbox (aggregatetype, aggregateid, type, payload, secret) VALUES ($1, $2, 'Changed', $3, 'CANARY')`,
				e.typ, fmt.Sprint(e.k), fmt.Sprintf(`{"k": %d, "v": %d}`, e.k, e.v))
			txEvents = append(txEvents, e)
		}
		switch rng.IntN(4) {
		case 0:
			batch.Queue(`DELETE FROM outbox`)
		case 1:
			batch.Queue(`UPDATE outbox SET type = 'Updated' WHERE id = (SELECT id FROM outbox LIMIT 1)`)
		}
		tx, err := db.Begin(ctx)
		if err != nil {
			return err
		}
		if err := tx.SendBatch(ctx, batch).Close(); err != nil {
			_ = tx.Rollback(ctx)
			return err
		}
		if err := tx.Commit(ctx); err != nil {
			return err
		}
		w.mu.Lock()
		w.events = append(w.events, txEvents...)
		w.mu.Unlock()
		if ahead := time.Duration(float64(w.written())/float64(rate)*float64(time.Second)) - time.Since(start); ahead > 0 {
			time.Sleep(ahead)
		}
	}
	return nil
}

// decodeAny decodes a Confluent-framed Avro payload of any schema (a primitive one too).
func (c *consumer) decodeAny(t *testing.T, b []byte) (any, string) {
	t.Helper()
	if len(b) < 5 || b[0] != 0 {
		t.Fatalf("not Confluent framing: % x", b[:min(len(b), 8)])
	}
	id := int(binary.BigEndian.Uint32(b[1:5]))
	text, err := c.reg.SchemaByID(context.Background(), id)
	if err != nil {
		t.Fatalf("schema %d: %v", id, err)
	}
	sch, err := avro.ParseWithCache(text.Schema, "", &avro.SchemaCache{})
	if err != nil {
		t.Fatalf("schema %d does not parse: %v", id, err)
	}
	var v any
	if err := avro.Unmarshal(sch, b[5:], &v); err != nil {
		t.Fatalf("decoding with schema %d: %v", id, err)
	}
	return v, text.Schema
}

// verifyOutbox checks the records of the outbox topics against what the writer committed:
// every event exactly once, in insert order per key, with its key, topic and headers.
func verifyOutbox(t *testing.T, c *consumer, prefix string, recs []*kgo.Record, want []outboxEvent) {
	t.Helper()
	got := map[int64]int{}
	last := map[string]int64{}
	ids := map[string]bool{}
	data := 0
	schemas := map[string]bool{}
	for _, r := range recs {
		if r.Attrs.IsControl() {
			continue
		}
		data++
		if strings.Contains(string(r.Value), "CANARY") {
			t.Fatalf("a column of the outbox row other than the payload reached Kafka: %q", r.Value)
		}
		key, _ := c.decodeAny(t, r.Key)
		val, vs := c.decodeAny(t, r.Value)
		schemas[vs] = true
		var p struct {
			K int   `json:"k"`
			V int64 `json:"v"`
		}
		if err := json.Unmarshal([]byte(val.(string)), &p); err != nil {
			t.Fatalf("value %v: %v", val, err)
		}
		typ := strings.TrimPrefix(r.Topic, prefix+".")
		if key != fmt.Sprint(p.K) || (typ != "order" && typ != "customer") {
			t.Fatalf("record on %s keyed %v carries %+v", r.Topic, key, p)
		}
		hdr := map[string]string{}
		for _, h := range r.Headers {
			hdr[h.Key] = string(h.Value)
		}
		if len(hdr["id"]) != 36 || hdr["type"] != "Changed" || ids[hdr["id"]] {
			t.Errorf("headers %v (an id header of a uuid, seen once, and type Changed expected)", hdr)
		}
		ids[hdr["id"]] = true
		got[p.V]++
		k := typ + "/" + fmt.Sprint(p.K)
		if p.V <= last[k] {
			t.Errorf("aggregate %s: event %d after %d: out of insert order or duplicated", k, p.V, last[k])
		}
		last[k] = p.V
	}
	missing, dup := 0, 0
	for _, w := range want {
		switch got[w.v] {
		case 0:
			missing++
		case 1:
		default:
			dup++
		}
		delete(got, w.v)
	}
	if missing > 0 || dup > 0 || len(got) > 0 || data != len(want) {
		t.Fatalf("exactly once violated: %d records for %d events; %d missing, %d duplicated, %d unknown", data, len(want), missing, dup, len(got))
	}
	for vs := range schemas {
		if len(schemas) != 1 || !strings.Contains(vs, "string") || strings.Contains(vs, "record") {
			t.Errorf("value schemas %v, want the payload alone as an Avro string", schemas)
		}
	}
}

// readOutbox reads the two outbox topics until n data records arrived (or timeout), then 3 s
// more to catch duplicates.
func readOutbox(t *testing.T, s stack, prefix string, n int, timeout time.Duration) (*consumer, []*kgo.Record) {
	t.Helper()
	c := newConsumer(t, s, prefix+".order", prefix+".customer")
	return c, c.read(t, n, timeout, 3*time.Second)
}

// TestOutboxExactlyOnceUnderSIGKILL: an application inserts outbox events (deleting some again
// in the same transaction, updating some) while the daemon is killed with SIGKILL and
// restarted: every event is published exactly once to the topic its row names, in insert
// order per aggregate, and deletes and updates publish nothing.
func TestOutboxExactlyOnceUnderSIGKILL(t *testing.T) {
	s, ctx, dsn, db := setup(t, 4*time.Minute, "cdcd_outbox", outboxDDL)
	name := uniqueName("outbox")
	extra := "    shape:\n      public.outbox:\n        columns: {exclude: [secret]}\n" +
		"    outbox:\n      public.outbox:\n        topic: \"" + name + ".$${routedByValue}\"\n        headers: [type]\n"
	yaml := strings.Replace(pipelineYAML(s, name, dsn, []string{"public.outbox"}, extra), "topic_partitions: 3", "topic_partitions: 1", 1)
	d := startQuietDaemon(t, yaml)
	d.waitReady(90 * time.Second)

	const total = 4000
	w := &outboxWriter{}
	werr := make(chan error, 1)
	wctx, stopWriter := context.WithCancel(ctx)
	defer stopWriter()
	seed := loggedSeed(t, "outbox writer and kill schedule")
	go func() { werr <- w.run(wctx, db, total, 50, 800, 20, seed) }()
	rng := rand.New(rand.NewPCG(seed, 5))
	for kill := 1; kill <= 3; kill++ {
		d.waitReady(90 * time.Second)
		time.Sleep(time.Duration(200+rng.IntN(1000)) * time.Millisecond)
		d.stop(syscall.SIGKILL)
		t.Logf("SIGKILL %d at %d events written", kill, w.written())
		d.restart()
	}
	if err := <-werr; err != nil {
		t.Fatalf("writer: %v", err)
	}
	d.waitReady(2 * time.Minute)
	c, recs := readOutbox(t, s, name, total, 2*time.Minute)
	verifyOutbox(t, c, name, recs, w.events)
	if !strings.Contains(d.Logs(), "outbox table updated") {
		t.Error("no warning about the ignored updates of the outbox table")
	}
	t.Logf("%d events verified", len(w.events))
}
