package window

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// idleTicks makes an idle tick for each owned repartition partition that had no record for
// idle_timeout while it holds windows the wall clock would close, once the whole job has
// caught up with its input (see caughtUp).
//
// A tick is a record in the partition itself (Sign 0, T = now), not a change of state made on
// the side: the owner processes it like any record, in a transaction that commits its offset
// (so a previous owner that lost the partition can never commit state for it: the group
// generation fences offset commits, and a transaction that commits no offset would not be
// fenced), and a replay of the partition gives the same results.
func (j *Job) idleTicks(ctx context.Context, now time.Time, fs kgo.Fetches) []*kgo.Record {
	if j.spec.IdleTimeout <= 0 {
		return nil
	}
	active := map[int32]bool{}
	fs.EachPartition(func(p kgo.FetchTopicPartition) {
		if p.Topic == RepartitionTopic(j.spec.Name) && len(p.Records) > 0 {
			active[p.Partition] = true
		}
	})
	var due []int32
	for p, proc := range j.procs {
		if active[p] {
			continue
		}
		last, ok := j.idle[p]
		if !ok || now.Sub(last) < j.spec.IdleTimeout {
			continue
		}
		if next, ok := proc.NextClose(); !ok || next > now.UnixMicro() {
			continue
		}
		j.idle[p] = now // one tick (or check) per idle_timeout
		due = append(due, p)
	}
	if len(due) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, j.spec.IdleTimeout+5*time.Second)
	ok, err := j.caughtUp(ctx)
	cancel()
	if err != nil || !ok {
		if err != nil {
			j.log.Debug("idle check failed; no tick this time", "err", err)
		}
		return nil // input is still on its way: stream time waits for it
	}
	var out []*kgo.Record
	for _, p := range due {
		r := Rec{T: now.UnixMicro()}
		out = append(out, &kgo.Record{Topic: RepartitionTopic(j.spec.Name), Partition: p, Value: marshalRec(nil, &r, Origin{})})
	}
	return out
}
