package window

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
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
// reader starting at each From reads each range to its end within wait and finds no data
// record in it. A read_committed consumer never commits past the commit markers and aborted
// records at the end of a transactional topic, so this tells "caught up" from "behind" where
// offsets alone cannot. A read that does not reach every range's end within wait proves
// nothing: false. A read that fails: the error.
func NoCommittedData(ctx context.Context, kopts []kgo.Opt, ranges []Range, wait time.Duration) (bool, error) {
	l := NewGroupLag(kopts, "")
	defer l.Close()
	return l.NoCommittedData(ctx, ranges, wait)
}

// GroupLag measures a consumer group's lag on clients it keeps: one for the offsets, one that
// reads the spans between committed offsets and ends. A job keeps one for its caught-up and
// drained checks; cdcd's lag metrics one per job.
type GroupLag struct {
	kopts []kgo.Opt
	group string

	mu  sync.Mutex // one measurement at a time
	cl  *kgo.Client
	adm *kadm.Client
	rd  *kgo.Client // a direct consumer with no partitions between reads
}

// NewGroupLag returns a GroupLag of group; its clients connect on first use.
func NewGroupLag(kopts []kgo.Opt, group string) *GroupLag {
	return &GroupLag{kopts: kopts, group: group}
}

// Close closes the clients.
func (l *GroupLag) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cl != nil {
		l.cl.Close()
		l.cl, l.adm = nil, nil
	}
	if l.rd != nil {
		l.rd.Close()
		l.rd = nil
	}
}

func (l *GroupLag) admin() (*kadm.Client, error) {
	if l.adm == nil {
		cl, err := kgo.NewClient(l.kopts...)
		if err != nil {
			return nil, err
		}
		l.cl, l.adm = cl, kadm.NewClient(cl)
	}
	return l.adm, nil
}

// Positions returns where the group stands in every partition of topics (GroupPositions).
func (l *GroupLag) Positions(ctx context.Context, topics []string) ([]Position, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	adm, err := l.admin()
	if err != nil {
		return nil, err
	}
	return GroupPositions(ctx, adm, l.group, topics)
}

// NoCommittedData is the package's NoCommittedData on the reader this GroupLag keeps.
func (l *GroupLag) NoCommittedData(ctx context.Context, ranges []Range, wait time.Duration) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.noCommittedData(ctx, ranges, wait)
}

func (l *GroupLag) noCommittedData(ctx context.Context, ranges []Range, wait time.Duration) (bool, error) {
	if len(ranges) == 0 {
		return true, nil
	}
	from := map[string]map[int32]kgo.Offset{}
	unread := map[string]map[int32]Range{} // the ranges not read to their end yet
	for _, r := range ranges {
		if from[r.Topic] == nil {
			from[r.Topic], unread[r.Topic] = map[int32]kgo.Offset{}, map[int32]Range{}
		}
		from[r.Topic][r.Partition] = kgo.NewOffset().At(r.From)
		unread[r.Topic][r.Partition] = r
	}
	if l.rd == nil {
		// Control records are kept: the last offset of each range is a commit or abort
		// marker (or committed data), so seeing it ends the read early; aborted data is
		// never returned.
		rd, err := kgo.NewClient(append(append([]kgo.Opt{}, l.kopts...), kgo.ConsumePartitions(from),
			kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())...)
		if err != nil {
			return false, err
		}
		l.rd = rd
	} else {
		l.rd.AddConsumePartitions(from)
	}
	defer func() { // between reads the reader fetches nothing
		rm := map[string][]int32{}
		for _, r := range ranges {
			rm[r.Topic] = append(rm[r.Topic], r.Partition)
		}
		l.rd.RemoveConsumePartitions(rm)
	}()
	left := len(ranges)
	pctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	for left > 0 {
		fs := l.rd.PollFetches(pctx)
		if err := ctx.Err(); err != nil {
			return false, err
		}
		if pctx.Err() != nil {
			return false, nil // not read to the end in time: not known to be empty
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) {
			if _, ok := from[t][p]; ok && ferr == nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				ferr = fmt.Errorf("reading %s[%d]: %w", t, p, err)
			}
		})
		if ferr != nil {
			return false, ferr
		}
		data := false
		fs.EachRecord(func(r *kgo.Record) {
			rg, ok := unread[r.Topic][r.Partition]
			if !ok || r.Offset < rg.From {
				return // not of this read (fetched before a previous read ended)
			}
			if r.Offset < rg.To && !r.Attrs.IsControl() {
				data = true
			}
			if r.Offset+1 >= rg.To {
				delete(unread[r.Topic], r.Partition)
				left--
			}
		})
		if data {
			return false, nil
		}
	}
	return true, nil
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

// lag is the job's GroupLag (one per job: its clients are reused by every check).
func (j *Job) groupLag() *GroupLag {
	j.lagOnce.Do(func() { j.lag = NewGroupLag(j.cfg.KafkaOpts, GroupID(j.spec.Name)) })
	return j.lag
}

// closeLag closes the job's GroupLag, if it has one.
func (j *Job) closeLag() {
	if j.lag != nil {
		j.lag.Close()
	}
}

// caughtUp reports whether the job's group has consumed everything committed in its input
// and repartition topics (whichever instance owns them): only then may an idle partition's
// stream time follow the wall clock, or a backlog still on its way (after a restart, say)
// would arrive late. A check that cannot tell (a timeout, an error) is not caught up.
func (j *Job) caughtUp(ctx context.Context) (bool, error) {
	l := j.groupLag()
	pos, err := l.Positions(ctx, append(append([]string{}, j.spec.Topics...), RepartitionTopic(j.spec.Name)))
	if err != nil {
		return false, err
	}
	var behind []Range
	for _, p := range pos {
		if p.End > p.Committed {
			behind = append(behind, p.Behind())
		}
	}
	return l.NoCommittedData(ctx, behind, 3*time.Second)
}

// drainedInputs returns which of the input partitions parts hold no committed record the
// job's group has not consumed (an empty partition, or one read to its end). A partition
// whose span could not be read to its end in time is not drained; a failed read is an error.
func (j *Job) drainedInputs(ctx context.Context, parts []Origin) (map[inputPart]bool, error) {
	l := j.groupLag()
	pos, err := l.Positions(ctx, j.spec.Topics)
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
		empty, err := l.NoCommittedData(ctx, []Range{p.Behind()}, time.Second)
		if err != nil {
			return nil, err
		}
		out[k] = empty
	}
	return out, nil
}
