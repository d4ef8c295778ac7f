// Package offsets is where a pipeline's committed source position lives: one record per
// pipeline (key = pipeline name) in a compacted Kafka topic, written inside the same Kafka
// transaction as the records it accounts for. A read_committed reader therefore sees a
// position exactly when it sees every record up to it.
package offsets

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cdcd-dev/cdcd/change"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// formatVersion of the stored JSON; a newer one is refused rather than misread.
const formatVersion = 1

// Record is a pipeline's committed position.
type Record struct {
	Version int `json:"version"`
	// Pos is the position of the last published item: a transaction's Commit position, or,
	// when a source transaction too large for one Kafka transaction was split, its last
	// published event.
	Pos change.Position `json:"pos"`
	// Complete is true when Pos's whole source transaction is published.
	Complete bool `json:"complete"`
	// AckLSN is what may be acknowledged to the source: the end of the last complete
	// transaction (Postgres commit end LSN).
	AckLSN uint64 `json:"ack_lsn"`
	// CommitTime is the source commit time of the last complete transaction.
	CommitTime time.Time `json:"commit_time"`
	WrittenAt  time.Time `json:"written_at"`
	// DeadKeys remembers the most recent keys that have a dead letter (intended topic + "\x00" +
	// key JSON -> the dead letter's position), so later changes of those keys are marked.
	DeadKeys map[string]string `json:"dead_keys,omitempty"`
}

// MaxDeadKeys bounds Record.DeadKeys.
const MaxDeadKeys = 1000

// Covers reports whether the event or commit at p was already published under r.
// Events are covered up to Pos; a Commit (whose Index counts its events) only when its
// transaction was published whole.
func (r Record) Covers(p change.Position, isCommit bool) bool {
	switch {
	case p.Tx < r.Pos.Tx:
		return true
	case p.Tx > r.Pos.Tx:
		return false
	case r.Complete:
		return true
	case isCommit:
		return false
	}
	return p.Index <= r.Pos.Index
}

// Marshal encodes r as the offsets record's value.
func (r Record) Marshal() []byte {
	r.Version = formatVersion
	b, _ := json.Marshal(r)
	return b
}

// Unmarshal decodes an offsets record value.
func Unmarshal(b []byte) (Record, error) {
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("decoding offsets record: %w", err)
	}
	if r.Version > formatVersion {
		return r, fmt.Errorf("offsets record has format version %d, newer than this cdcd understands (%d): upgrade cdcd", r.Version, formatVersion)
	}
	return r, nil
}

// KafkaRecord is the record to produce for pipeline in topic.
func (r Record) KafkaRecord(topic, pipeline string) *kgo.Record {
	return &kgo.Record{Topic: topic, Key: []byte(pipeline), Value: r.Marshal(), Partition: 0}
}

// EnsureTopic creates the compacted offsets topic if it does not exist.
func EnsureTopic(ctx context.Context, adm *kadm.Client, topic string, replication int16) error {
	resp, err := adm.CreateTopic(ctx, 1, replication, map[string]*string{
		"cleanup.policy": kadm.StringPtr("compact"),
		// Positions must survive: never delete by time.
		"retention.ms": kadm.StringPtr("-1"),
	}, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("creating offsets topic %s: %w", topic, err)
	}
	return nil
}

// Load reads the last committed record of pipeline (read_committed, from the start of the
// compacted topic up to its last stable offset). ok is false when the pipeline has none.
func Load(ctx context.Context, opts []kgo.Opt, topic, pipeline string) (rec Record, ok bool, err error) {
	vals, err := Scan(ctx, opts, topic, func(key string) bool { return key == pipeline })
	if err != nil {
		return rec, false, err
	}
	v, ok := vals[pipeline]
	if !ok {
		return rec, false, nil
	}
	rec, err = Unmarshal(v)
	return rec, err == nil, err
}

// Scan returns the latest committed value of every key match accepts, reading the topic's
// single partition read_committed up to its last stable offset. A key whose latest record is a
// tombstone is absent from the result.
func Scan(ctx context.Context, opts []kgo.Opt, topic string, match func(key string) bool) (map[string][]byte, error) {
	out := map[string][]byte{}
	adm, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, err
	}
	ends, err := kadm.NewClient(adm).ListCommittedOffsets(ctx, topic)
	adm.Close()
	if err == nil {
		err = ends.Error()
	}
	if errors.Is(err, kerr.UnknownTopicOrPartition) {
		return out, nil // no topic yet: nothing committed
	}
	if err != nil {
		return nil, fmt.Errorf("listing end of topic %s: %w", topic, err)
	}
	end, found := ends.Lookup(topic, 0)
	if !found || end.Offset <= 0 {
		return out, nil
	}
	cl, err := kgo.NewClient(append(opts,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// Transaction markers are returned too, so the offset just before the last stable
		// offset is always seen (the newest segment is never compacted).
		kgo.KeepControlRecords())...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	for {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("reading topic %s: %w", topic, err)
		}
		var ferr error
		fs.EachError(func(_ string, _ int32, err error) { ferr = err })
		if ferr != nil {
			return nil, fmt.Errorf("reading topic %s: %w", topic, ferr)
		}
		done := false
		fs.EachRecord(func(r *kgo.Record) {
			if !r.Attrs.IsControl() && match(string(r.Key)) {
				if r.Value == nil {
					delete(out, string(r.Key))
				} else {
					out[string(r.Key)] = r.Value
				}
			}
			if r.Offset+1 >= end.Offset {
				done = true
			}
		})
		if done {
			return out, nil
		}
	}
}
