package window

import (
	"context"
	"errors"
	"fmt"
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
	adm := kadm.NewClient(cl)
	topics := append(append([]string{}, j.spec.Topics...), RepartitionTopic(j.spec.Name))
	offs, err := adm.FetchOffsetsForTopics(ctx, GroupID(j.spec.Name), topics...)
	if err == nil {
		err = offs.Error()
	}
	if err != nil && !errors.Is(err, kerr.GroupIDNotFound) {
		return false, fmt.Errorf("fetching the group's offsets: %w", err)
	}
	ends, err := adm.ListCommittedOffsets(ctx, topics...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return false, fmt.Errorf("listing end offsets: %w", err)
	}
	return NoCommittedData(ctx, j.cfg.KafkaOpts, behindRanges(offs, ends), 3*time.Second)
}

// behindRanges are the spans between a group's committed offsets and the partitions' ends.
func behindRanges(offs kadm.OffsetResponses, ends kadm.ListedOffsets) []Range {
	var behind []Range
	ends.Each(func(e kadm.ListedOffset) {
		committed := int64(0)
		if o, ok := offs.Lookup(e.Topic, e.Partition); ok && o.At >= 0 {
			committed = o.At
		}
		if e.Offset > committed {
			behind = append(behind, Range{e.Topic, e.Partition, committed, e.Offset})
		}
	})
	return behind
}

// drainedInputs returns which of the input partitions parts hold no committed record the
// job's group has not consumed (an empty partition, or one read to its end).
func (j *Job) drainedInputs(ctx context.Context, parts []Origin) (map[inputPart]bool, error) {
	cl, err := kgo.NewClient(j.cfg.KafkaOpts...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	offs, err := adm.FetchOffsetsForTopics(ctx, GroupID(j.spec.Name), j.spec.Topics...)
	if err == nil {
		err = offs.Error()
	}
	if err != nil && !errors.Is(err, kerr.GroupIDNotFound) {
		return nil, fmt.Errorf("fetching the group's offsets: %w", err)
	}
	ends, err := adm.ListCommittedOffsets(ctx, j.spec.Topics...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("listing end offsets: %w", err)
	}
	want := map[inputPart]bool{}
	for _, o := range parts {
		want[inputPart{o.Topic, o.Partition}] = true
	}
	out := map[inputPart]bool{}
	behind := map[inputPart]Range{}
	for _, r := range behindRanges(offs, ends) {
		behind[inputPart{r.Topic, r.Partition}] = r
	}
	ends.Each(func(e kadm.ListedOffset) {
		k := inputPart{e.Topic, e.Partition}
		if !want[k] {
			return
		}
		r, ok := behind[k]
		if !ok {
			out[k] = true
			return
		}
		// Commit markers at a transactional topic's end are not data: read the span.
		if empty, err := NoCommittedData(ctx, j.cfg.KafkaOpts, []Range{r}, time.Second); err == nil && empty {
			out[k] = true
		}
	})
	return out, nil
}
