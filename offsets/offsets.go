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
	"strconv"
	"time"

	"github.com/cdcd-dev/cdcd/change"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// formatVersion of the stored JSON; a newer one is refused rather than misread.
//
// Version 2: a Postgres position's in-transaction index counts every row change the server
// sends (captured or not, two indexes each), where version 1 counted captured events only. A
// complete position means the same in both; a partial one does not (see Unmarshal).
const formatVersion = 2

// Record is a pipeline's committed position.
type Record struct {
	Version int `json:"version"`
	// Pos is the position of the last published item: a transaction's Commit position, or,
	// when a source transaction too large for one Kafka transaction was split, its last
	// published event.
	Pos change.Position `json:"pos"`
	// Complete is true when Pos's whole source transaction is published.
	Complete bool `json:"complete"`
	// AckPosition is what may be acknowledged to the source: the Commit.AckPosition of the
	// last complete transaction (PostgreSQL: its commit's end LSN). The JSON name is the one
	// records have always had.
	AckPosition uint64 `json:"ack_lsn"`
	// CommitTime is the source commit time of the last complete transaction.
	CommitTime time.Time `json:"commit_time"`
	WrittenAt  time.Time `json:"written_at"`
	// DeadKeys remembers the most recent keys that have a dead letter (intended topic + "\x00" +
	// key JSON -> the dead letter's position), so later changes of those keys are marked.
	DeadKeys map[string]string `json:"dead_keys,omitempty"`
	// Snapshot is the source's progress (change.Commit.State) as of Pos: the snapshot engine's
	// state, committed in the same transaction as the rows it accounts for.
	Snapshot json.RawMessage `json:"snapshot,omitempty"`
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
	if r.Version < 2 && !r.Complete && r.Pos.Resume == "" {
		// Resuming would skip or repeat events: the index of a version 1 record counts
		// differently. Refuse rather than guess.
		return r, fmt.Errorf("the committed position %s was recorded in the middle of a source transaction by an older cdcd, whose in-transaction index this version counts differently; "+
			"fix: run the older cdcd until it commits the end of that transaction (its log says \"complete\": true), stop it with SIGTERM, then start this version", r.Pos)
	}
	return r, nil
}

// KafkaRecord is the record to produce for pipeline in topic.
func (r Record) KafkaRecord(topic, pipeline string) *kgo.Record {
	return &kgo.Record{Topic: topic, Key: []byte(pipeline), Value: r.Marshal(), Partition: 0}
}

// TopicConfigs are the offsets topic's settings. Compaction keeps only each pipeline's latest
// record, but it never cleans the active segment: with Kafka's defaults (1 GiB segments, 7
// days) a pipeline committing 50 times a second piles up hundreds of megabytes that every
// start reads. Small, time-bounded segments let the cleaner run; retention never deletes by
// time or size, because a position must survive however long a pipeline is stopped.
//
// Every commit also leaves a transaction marker in the topic, which the cleaner keeps for
// delete.retention.ms after the transaction's record is gone (Kafka's default: a day). The
// readers read the markers too (ReaderOpts), so with the default every start of every
// pipeline reads a day of every pipeline's commits: about 80 bytes each (a batch of its
// own), 350 MB for one pipeline committing 50 times a second. No reader of this topic takes
// long (each reads to the end at start, and then only what is new), so markers and tombstones
// need not outlive a segment: DeleteRetention.
func TopicConfigs() map[string]*string {
	return map[string]*string{
		"cleanup.policy":            kadm.StringPtr("compact"),
		"retention.ms":              kadm.StringPtr("-1"),
		"retention.bytes":           kadm.StringPtr("-1"),
		"segment.bytes":             kadm.StringPtr(fmt.Sprint(16 << 20)),
		"segment.ms":                kadm.StringPtr(fmt.Sprint((15 * time.Minute).Milliseconds())),
		"min.cleanable.dirty.ratio": kadm.StringPtr("0.1"),
		"max.compaction.lag.ms":     kadm.StringPtr(fmt.Sprint(time.Hour.Milliseconds())),
		"delete.retention.ms":       kadm.StringPtr(fmt.Sprint(DeleteRetention.Milliseconds())),
	}
}

// DeleteRetention is the offsets topic's delete.retention.ms (see TopicConfigs).
const DeleteRetention = 15 * time.Minute

// Problem is a setting of an existing offsets topic that loses positions (Fatal) or slows every
// start, with the command that fixes it.
type Problem struct {
	Fatal       bool
	Detail, Fix string
}

// TopicProblems judges an existing offsets topic's settings (its configs as
// DescribeTopicConfigs gives them).
func TopicProblems(topic string, configs map[string]string) []Problem {
	alter := func(kv string) string {
		return fmt.Sprintf("kafka-configs.sh --bootstrap-server BROKER --alter --entity-type topics --entity-name %s --add-config %s", topic, kv)
	}
	var out []Problem
	if p := configs["cleanup.policy"]; p != "compact" {
		out = append(out, Problem{Fatal: true,
			Detail: fmt.Sprintf("%s has cleanup.policy %q: a stopped pipeline's position is deleted with its segment, and the pipeline then starts again from its slot's position as a new one", topic, p),
			Fix:    alter("cleanup.policy=compact")})
	}
	if v, err := strconv.ParseInt(configs["delete.retention.ms"], 10, 64); err == nil && time.Duration(v)*time.Millisecond > time.Hour {
		out = append(out, Problem{
			Detail: fmt.Sprintf("%s has delete.retention.ms %s: it keeps every commit's transaction marker that long, and every start of every pipeline reads them all", topic, time.Duration(v)*time.Millisecond),
			Fix:    alter(fmt.Sprintf("delete.retention.ms=%d", DeleteRetention.Milliseconds()))})
	}
	return out
}

// EnsureTopic creates the compacted offsets topic (TopicConfigs) if it does not exist. An
// existing topic is left as it is: its settings belong to whoever created it.
func EnsureTopic(ctx context.Context, adm *kadm.Client, topic string, replication int16) error {
	resp, err := adm.CreateTopic(ctx, 1, replication, TopicConfigs(), topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("creating offsets topic %s: %w", topic, err)
	}
	return nil
}

// ReaderOpts are the client options a Reader's client needs: every record up to the high
// watermark, and the transaction markers, so that the reader itself decides which records are
// committed (see scanRange).
func ReaderOpts() []kgo.Opt {
	return []kgo.Opt{kgo.FetchIsolationLevel(kgo.ReadUncommitted()), kgo.KeepControlRecords()}
}

// Reader reads one pipeline's committed record with a client it borrows (created with
// ReaderOpts; it may serve as an admin client too). It remembers the offset it read up to and
// the records of transactions still open there: a later Read lists the end again and reads
// only what was written since, nothing at all when the end did not move.
//
// It reads to the high watermark, not the last stable offset: the topic is shared by every
// pipeline, and another pipeline's open transaction (its instance was killed and nobody has
// fenced it yet) holds the last stable offset back for up to the transaction timeout. A
// read_committed reader would not see this pipeline's commits behind it, and the pipeline
// would resume from an older position and publish its last batches twice.
type Reader struct {
	cl       *kgo.Client
	topic    string
	pipeline string

	next int64 // the offset the previous Read reached
	rec  Record
	ok   bool
	open openTxns
}

// NewReader returns a reader of pipeline's record in topic through cl.
func NewReader(cl *kgo.Client, topic, pipeline string) *Reader {
	return &Reader{cl: cl, topic: topic, pipeline: pipeline, open: openTxns{}}
}

// Read returns the pipeline's last committed record; ok is false when it has none (or its
// latest record is a tombstone). Each record of the topic is read at most once per Reader.
func (r *Reader) Read(ctx context.Context) (rec Record, ok bool, err error) {
	end, err := highWatermark(ctx, r.cl, r.topic)
	if err != nil || end <= r.next {
		return r.rec, r.ok, err
	}
	vals := map[string][]byte{}
	if err := scanRange(ctx, r.cl, r.topic, r.next, end, func(key string) bool { return key == r.pipeline }, vals, r.open); err != nil {
		return r.rec, r.ok, err
	}
	r.next = end
	v, found := vals[r.pipeline]
	switch {
	case !found: // nothing new for this pipeline
	case v == nil:
		r.rec, r.ok = Record{}, false
	default:
		if r.rec, err = Unmarshal(v); err != nil {
			r.rec, r.ok = Record{}, false
			return r.rec, false, err
		}
		r.ok = true
	}
	return r.rec, r.ok, nil
}

// Load reads the last committed record of pipeline (read_committed, from the start of the
// compacted topic up to its last stable offset). ok is false when the pipeline has none.
func Load(ctx context.Context, opts []kgo.Opt, topic, pipeline string) (rec Record, ok bool, err error) {
	cl, err := kgo.NewClient(append(append([]kgo.Opt{}, opts...), ReaderOpts()...)...)
	if err != nil {
		return rec, false, fmt.Errorf("creating kafka client: %w", err)
	}
	defer cl.Close()
	return NewReader(cl, topic, pipeline).Read(ctx)
}

// Scan returns the latest committed value of every key match accepts, reading the topic's
// single partition up to its high watermark (committed records only, see Reader). A key whose
// latest record is a tombstone is absent from the result.
func Scan(ctx context.Context, opts []kgo.Opt, topic string, match func(key string) bool) (map[string][]byte, error) {
	cl, err := kgo.NewClient(append(append([]kgo.Opt{}, opts...), ReaderOpts()...)...)
	if err != nil {
		return nil, fmt.Errorf("creating kafka client: %w", err)
	}
	defer cl.Close()
	end, err := highWatermark(ctx, cl, topic)
	if err != nil || end == 0 {
		return map[string][]byte{}, err
	}
	vals := map[string][]byte{}
	if err := scanRange(ctx, cl, topic, 0, end, match, vals, openTxns{}); err != nil {
		return nil, err
	}
	for k, v := range vals {
		if v == nil {
			delete(vals, k)
		}
	}
	return vals, nil
}

// highWatermark is the end of the topic's partition 0 (0 when the topic does not exist:
// nothing committed).
func highWatermark(ctx context.Context, cl *kgo.Client, topic string) (int64, error) {
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if errors.Is(err, kerr.UnknownTopicOrPartition) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("listing end of topic %s: %w", topic, err)
	}
	end, found := ends.Lookup(topic, 0)
	if !found || end.Offset <= 0 {
		return 0, nil
	}
	return end.Offset, nil
}

// openTxns are the matching records of transactions whose marker has not been read yet, by
// producer id, in offset order.
type openTxns map[int64][]*kgo.Record

// scanRange reads partition 0 of topic from offset from up to end (a high watermark) and
// sets in vals the latest committed value of each key match accepts (a tombstone is a nil
// value). A transactional record counts once its producer's commit marker is read, and never
// when an abort marker follows it; records whose marker is beyond end stay in open for the
// next read.
func scanRange(ctx context.Context, cl *kgo.Client, topic string, from, end int64, match func(key string) bool,
	vals map[string][]byte, open openTxns) error {
	cl.AddConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().At(from)}})
	defer cl.RemoveConsumePartitions(map[string][]int32{topic: {0}})
	for {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("reading topic %s: %w", topic, err)
		}
		var ferr error
		fs.EachError(func(_ string, _ int32, err error) { ferr = err })
		if ferr != nil {
			return fmt.Errorf("reading topic %s: %w", topic, ferr)
		}
		done := false
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset >= end {
				return // written after the end this read is for: the next Read takes it
			}
			switch {
			case r.Attrs.IsControl():
				var k kmsg.ControlRecordKey
				if err := k.ReadFrom(r.Key); err == nil && k.Type == kmsg.ControlRecordKeyTypeCommit {
					for _, p := range open[r.ProducerID] {
						vals[string(p.Key)] = p.Value
					}
				}
				delete(open, r.ProducerID)
			case !match(string(r.Key)):
			case r.Attrs.IsTransactional():
				open[r.ProducerID] = append(open[r.ProducerID], r)
			default:
				vals[string(r.Key)] = r.Value
			}
			if r.Offset+1 >= end {
				done = true
			}
		})
		if done {
			return nil
		}
	}
}
