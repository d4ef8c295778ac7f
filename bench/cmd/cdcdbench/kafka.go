package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
)

// keyID decodes the id of a Confluent-framed Avro key {id: long}.
func keyID(b []byte) (int64, error) {
	if len(b) < 6 || b[0] != 0 {
		return 0, fmt.Errorf("key is not Confluent-framed Avro: % x", b[:min(len(b), 8)])
	}
	id, n := binary.Varint(b[5:]) // Avro longs are zig-zag varints, like Go's Varint
	if n <= 0 {
		return 0, fmt.Errorf("key: bad Avro long: % x", b)
	}
	return id, nil
}

// compositeKeyID is the row id of a Confluent-framed Avro key {a: int, b: string} of scenario
// 7's composite-key table, where b is "row-<seq>-<md5>" and the row's id is seq + backlogFirstID.
func compositeKeyID(b []byte) (int64, error) {
	if len(b) < 6 || b[0] != 0 {
		return 0, fmt.Errorf("key is not Confluent-framed Avro: % x", b[:min(len(b), 8)])
	}
	p := b[5:]
	_, n := binary.Varint(p)
	if n <= 0 {
		return 0, fmt.Errorf("key: bad Avro int a: % x", b)
	}
	p = p[n:]
	l, n := binary.Varint(p)
	if n <= 0 || l < 0 || int64(len(p)-n) < l {
		return 0, fmt.Errorf("key: bad Avro string b: % x", b)
	}
	s := string(p[n : n+int(l)])
	rest, ok := strings.CutPrefix(s, "row-")
	seq, _, ok2 := strings.Cut(rest, "-")
	v, err := strconv.ParseInt(seq, 10, 64)
	if !ok || !ok2 || err != nil {
		return 0, fmt.Errorf("key: b is %q, not row-<seq>-<md5>", s)
	}
	return v + backlogFirstID, nil
}

// countResult is a read_committed count of the backlog's records.
type countResult struct {
	records    int
	unique     int
	duplicates int
	outside    int // ids outside the backlog's range
	tombstones int
	took       time.Duration
}

// countTopic reads topic from the start with read_committed until want distinct ids of
// [firstID, firstID+want) arrived (or timeout), then lingers to catch duplicates.
func countTopic(ctx context.Context, broker, topic string, firstID int64, want int, timeout, linger time.Duration) (countResult, error) {
	var res countResult
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.ConsumeTopics(topic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxBytes(64<<20))
	if err != nil {
		return res, err
	}
	defer cl.Close()
	seen := make([]bool, want)
	t0 := time.Now()
	deadline := t0.Add(timeout)
	var ferr error
	poll := func(pctx context.Context) {
		fs := cl.PollFetches(pctx)
		fs.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) && ferr == nil {
				ferr = fmt.Errorf("fetching %s[%d]: %w", t, p, err)
			}
		})
		fs.EachRecord(func(r *kgo.Record) {
			res.records++
			if r.Value == nil {
				res.tombstones++
				return
			}
			id, err := keyID(r.Key)
			if err != nil {
				if ferr == nil {
					ferr = err
				}
				return
			}
			i := id - firstID
			if i < 0 || i >= int64(want) {
				res.outside++
				return
			}
			if seen[i] {
				res.duplicates++
				return
			}
			seen[i] = true
			res.unique++
		})
	}
	for res.unique < want && time.Now().Before(deadline) && ferr == nil {
		pctx, cancel := context.WithDeadline(ctx, deadline)
		poll(pctx)
		cancel()
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
	}
	res.took = time.Since(t0)
	if ferr != nil {
		return res, ferr
	}
	lctx, cancel := context.WithTimeout(ctx, linger)
	for lctx.Err() == nil {
		poll(lctx)
	}
	cancel()
	if res.unique < want {
		return res, fmt.Errorf("topic %s: only %d of %d records arrived read_committed within %s", topic, res.unique, want, timeout)
	}
	return res, nil
}

// latencyConsumer stamps every record of the latency rows on receipt.
type latencyConsumer struct {
	cl      *kgo.Client
	reg     *sr.Client
	firstID int64
	n       int
	format  recordFormat

	mu       sync.Mutex
	recv     []int64 // receipt, ns since epoch, per row
	srcTime  []int64 // column c (clock_timestamp() at insert), ns since epoch
	got      int
	dups     int
	decodeEr error
	schemas  map[int]avro.Schema
}

// newLatencyConsumer starts reading topic at its current end, read_committed.
func newLatencyConsumer(ctx context.Context, broker, registry, topic string, firstID int64, n int, format recordFormat) (*latencyConsumer, error) {
	admCl, err := kgo.NewClient(kgo.SeedBrokers(broker))
	if err != nil {
		return nil, err
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	lctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	ends, err := adm.ListEndOffsets(lctx, topic)
	if err != nil {
		return nil, fmt.Errorf("listing end offsets of %s: %w", topic, err)
	}
	if err := ends.Error(); err != nil {
		return nil, fmt.Errorf("listing end offsets of %s: %w", topic, err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.ConsumePartitions(ends.KOffsets()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		return nil, err
	}
	reg, err := sr.NewClient(sr.URLs(registry))
	if err != nil {
		cl.Close()
		return nil, err
	}
	return &latencyConsumer{cl: cl, reg: reg, firstID: firstID, n: n, format: format, recv: make([]int64, n), srcTime: make([]int64, n), schemas: map[int]avro.Schema{}}, nil
}

// run consumes until every row arrived or ctx ends.
func (c *latencyConsumer) run(ctx context.Context) error {
	defer c.cl.Close()
	for {
		c.mu.Lock()
		done := c.got >= c.n
		c.mu.Unlock()
		if done || ctx.Err() != nil {
			return nil
		}
		fs := c.cl.PollFetches(ctx)
		now := time.Now().UnixNano()
		var ferr error
		fs.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) && ferr == nil {
				ferr = fmt.Errorf("fetching %s[%d]: %w", t, p, err)
			}
		})
		if ferr != nil {
			return ferr
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Value == nil {
				return
			}
			id, err := recordID(c.format, r.Key)
			if err != nil {
				c.noteErr(err)
				return
			}
			i := id - c.firstID
			if i < 0 || i >= int64(c.n) {
				return
			}
			ts, err := c.sourceTime(ctx, r.Value)
			if err != nil {
				c.noteErr(fmt.Errorf("id %d: %w", id, err))
			}
			c.mu.Lock()
			if c.recv[i] != 0 {
				c.dups++
			} else {
				c.recv[i], c.srcTime[i] = now, ts
				c.got++
			}
			c.mu.Unlock()
		})
	}
}

func (c *latencyConsumer) noteErr(err error) {
	c.mu.Lock()
	if c.decodeEr == nil {
		c.decodeEr = err
	}
	c.mu.Unlock()
}

func (c *latencyConsumer) received() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.got
}

// sourceTime decodes after.c of a Debezium-style envelope.
func (c *latencyConsumer) sourceTime(ctx context.Context, v []byte) (int64, error) {
	if c.format == formatJSON {
		return jsonSourceTime(v)
	}
	if len(v) < 5 || v[0] != 0 {
		return 0, errors.New("value is not Confluent-framed Avro")
	}
	id := int(binary.BigEndian.Uint32(v[1:5]))
	sch, ok := c.schemas[id]
	if !ok {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		s, err := c.reg.SchemaByID(sctx, id)
		cancel()
		if err != nil {
			return 0, fmt.Errorf("schema %d: %w", id, err)
		}
		if sch, err = avro.Parse(s.Schema); err != nil {
			return 0, fmt.Errorf("schema %d: %w", id, err)
		}
		c.schemas[id] = sch
	}
	// Only after.c is decoded; the rest of the envelope is skipped. A generic decode of the
	// whole envelope into maps cost this consumer several times the CPU per record that the
	// other tools' records cost it, on the cores the phase shares.
	var env avroAfterC
	if err := avro.Unmarshal(sch, v[5:], &env); err != nil {
		return 0, fmt.Errorf("decoding value: %w", err)
	}
	if env.After == nil {
		return 0, errors.New("value has no after record")
	}
	switch t := unwrapUnion(env.After.C).(type) {
	case time.Time:
		return t.UnixNano(), nil
	case int64: // timestamp-micros without logical type decoding
		return t * 1000, nil
	default:
		return 0, fmt.Errorf("after.c has unexpected type %T", t)
	}
}

// avroAfterC is the part of cdcd's Avro envelope the latency consumer reads.
type avroAfterC struct {
	After *struct {
		C any `avro:"c"`
	} `avro:"after"`
}

// unwrapUnion returns the branch value of a generically decoded Avro union ({"type": v}).
func unwrapUnion(v any) any {
	m, ok := v.(map[string]any)
	if !ok || len(m) != 1 {
		return v
	}
	for _, inner := range m {
		return inner
	}
	return v
}

// deleteTopicsAndSubjects removes what a round created in Kafka and the registry.
func deleteTopicsAndSubjects(ctx context.Context, broker, registry string, topics []string) error {
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var errs []error
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker))
	if err != nil {
		return err
	}
	defer cl.Close()
	resp, err := kadm.NewClient(cl).DeleteTopics(cctx, topics...)
	if err != nil {
		errs = append(errs, fmt.Errorf("deleting topics: %w", err))
	}
	for _, r := range resp {
		if r.Err != nil && !errors.Is(r.Err, kerr.UnknownTopicOrPartition) {
			errs = append(errs, fmt.Errorf("deleting topic %s: %w", r.Topic, r.Err))
		}
	}
	reg, err := sr.NewClient(sr.URLs(registry))
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	for _, t := range topics {
		for _, subj := range []string{t + "-key", t + "-value"} {
			for _, how := range []sr.DeleteHow{sr.SoftDelete, sr.HardDelete} {
				var err error
				for attempt := 0; attempt < 3; attempt++ { // the shared registry is sometimes slow
					if _, err = reg.DeleteSubject(cctx, subj, how); err == nil || notFound(err) {
						break
					}
					time.Sleep(500 * time.Millisecond)
				}
				if notFound(err) {
					break // never registered (or already gone)
				}
				if err != nil {
					errs = append(errs, fmt.Errorf("deleting subject %s: %w", subj, err))
					break
				}
			}
		}
	}
	return errors.Join(errs...)
}

func notFound(err error) bool {
	var re *sr.ResponseError
	return errors.As(err, &re) && (re.StatusCode == 404 || re.ErrorCode == 40401)
}
