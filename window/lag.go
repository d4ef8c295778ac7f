package window

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Range is a span [From, To) of one partition.
type Range struct {
	Topic     string
	Partition int32
	From, To  int64
}

// NoCommittedData reports whether the ranges hold no committed data record: a read_committed
// reader starting at each From returns nothing below its To within wait. A read_committed
// consumer never commits past the commit markers and aborted records at the end of a
// transactional topic, so this tells "caught up" from "behind" where offsets alone cannot.
func NoCommittedData(ctx context.Context, kopts []kgo.Opt, ranges []Range, wait time.Duration) (bool, error) {
	if len(ranges) == 0 {
		return true, nil
	}
	from := map[string]map[int32]kgo.Offset{}
	to := map[string]map[int32]int64{}
	for _, r := range ranges {
		if from[r.Topic] == nil {
			from[r.Topic], to[r.Topic] = map[int32]kgo.Offset{}, map[int32]int64{}
		}
		from[r.Topic][r.Partition] = kgo.NewOffset().At(r.From)
		to[r.Topic][r.Partition] = r.To
	}
	// Control records are kept: the last offset of each range is a commit or abort marker
	// (or committed data), so seeing it ends the read early; aborted data is never returned.
	cl, err := kgo.NewClient(append(append([]kgo.Opt{}, kopts...), kgo.ConsumePartitions(from),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())...)
	if err != nil {
		return false, err
	}
	defer cl.Close()
	left := len(ranges)
	pctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	for pctx.Err() == nil && left > 0 {
		data := false
		cl.PollFetches(pctx).EachRecord(func(r *kgo.Record) {
			end, ok := to[r.Topic][r.Partition]
			if !ok {
				return
			}
			if r.Offset < end && !r.Attrs.IsControl() {
				data = true
			}
			if r.Offset+1 >= end {
				delete(to[r.Topic], r.Partition)
				left--
			}
		})
		if data {
			return false, nil
		}
	}
	return ctx.Err() == nil, ctx.Err()
}

// Position is where a consumer group stands in one partition: its committed offset (the
// partition's log start if it never committed there) and the partition's last stable offset.
// End - Committed counts commit markers and aborted records too: NoCommittedData tells them
// from data.
type Position struct {
	Topic     string
	Partition int32
	Committed int64
	End       int64
}

// Behind is the span the group has not consumed (empty when caught up by offsets).
func (p Position) Behind() Range { return Range{p.Topic, p.Partition, min(p.Committed, p.End), p.End} }

// GroupPositions returns where group stands in every partition of topics, sorted by topic and
// partition: the one group-lag computation of the job's caught-up check, its idle and release
// checks, and cdcd's lag metrics.
func GroupPositions(ctx context.Context, adm *kadm.Client, group string, topics []string) ([]Position, error) {
	offs, err := adm.FetchOffsetsForTopics(ctx, group, topics...)
	if err == nil {
		err = offs.Error()
	}
	if errors.Is(err, kerr.GroupIDNotFound) {
		offs, err = nil, nil // the group never committed: everything is still to read
	}
	if err != nil {
		return nil, fmt.Errorf("fetching the committed offsets of group %s: %w", group, err)
	}
	ends, err := adm.ListCommittedOffsets(ctx, topics...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("listing the end offsets of %v: %w", topics, err)
	}
	starts, err := adm.ListStartOffsets(ctx, topics...)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("listing the start offsets of %v: %w", topics, err)
	}
	var out []Position
	ends.Each(func(e kadm.ListedOffset) {
		committed := int64(-1)
		if o, ok := offs.Lookup(e.Topic, e.Partition); ok {
			committed = o.At
		}
		if committed < 0 { // nothing committed yet: everything there is to read
			committed = 0
			if s, ok := starts.Lookup(e.Topic, e.Partition); ok {
				committed = s.Offset
			}
		}
		out = append(out, Position{Topic: e.Topic, Partition: e.Partition, Committed: committed, End: e.Offset})
	})
	sort.Slice(out, func(i, j int) bool {
		if out[i].Topic != out[j].Topic {
			return out[i].Topic < out[j].Topic
		}
		return out[i].Partition < out[j].Partition
	})
	return out, nil
}

// caughtUp reports whether the job's group has consumed everything committed in its input
// and repartition topics (whichever instance owns them): only then may an idle partition's
// stream time follow the wall clock, or a backlog still on its way (after a restart, say)
// would arrive late.
func (j *Job) caughtUp(ctx context.Context) (bool, error) {
	cl, err := kgo.NewClient(j.cfg.KafkaOpts...)
	if err != nil {
		return false, err
	}
	defer cl.Close()
	pos, err := GroupPositions(ctx, kadm.NewClient(cl), GroupID(j.spec.Name), append(append([]string{}, j.spec.Topics...), RepartitionTopic(j.spec.Name)))
	if err != nil {
		return false, err
	}
	var behind []Range
	for _, p := range pos {
		if p.End > p.Committed {
			behind = append(behind, p.Behind())
		}
	}
	return NoCommittedData(ctx, j.cfg.KafkaOpts, behind, 3*time.Second)
}

// drainedInputs returns which of the input partitions parts hold no committed record the
// job's group has not consumed (an empty partition, or one read to its end).
func (j *Job) drainedInputs(ctx context.Context, parts []Origin) (map[inputPart]bool, error) {
	cl, err := kgo.NewClient(j.cfg.KafkaOpts...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	pos, err := GroupPositions(ctx, kadm.NewClient(cl), GroupID(j.spec.Name), j.spec.Topics)
	if err != nil {
		return nil, err
	}
	want := map[inputPart]bool{}
	for _, o := range parts {
		want[inputPart{o.Topic, o.Partition}] = true
	}
	out := map[inputPart]bool{}
	for _, p := range pos {
		k := inputPart{p.Topic, p.Partition}
		if !want[k] {
			continue
		}
		if p.End <= p.Committed {
			out[k] = true
			continue
		}
		// Commit markers at a transactional topic's end are not data: read the span.
		if empty, err := NoCommittedData(ctx, j.cfg.KafkaOpts, []Range{p.Behind()}, time.Second); err == nil && empty {
			out[k] = true
		}
	}
	return out, nil
}
