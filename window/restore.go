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

// applyAssignment drops revoked partitions' state and restores newly assigned ones from the
// changelog before any of their records is processed.
func (j *Job) applyAssignment(ctx context.Context) error {
	j.mu.Lock()
	for p := range j.revoked {
		delete(j.procs, p)
		delete(j.idle, p)
		delete(j.toRestore, p)
	}
	clear(j.revoked)
	var restore []int32
	gens := map[int32]uint64{}
	for p := range j.toRestore {
		restore = append(restore, p)
		gens[p] = j.assigned[p]
		delete(j.procs, p) // whatever it held predates this assignment
	}
	j.mu.Unlock()
	if len(restore) == 0 {
		return nil
	}
	sort.Slice(restore, func(a, b int) bool { return restore[a] < restore[b] })
	j.setPhase("restoring", fmt.Sprintf("restoring the state of partitions %v from %s", restore, ChangelogTopic(j.spec.Name)))
	t0 := time.Now()
	j.restoring(len(restore), 0)
	procs, keys, err := j.restore(ctx, restore)
	j.restoring(0, 0)
	if err != nil {
		return err
	}
	j.mu.Lock()
	for p, proc := range procs {
		if j.toRestore[p] && j.assigned[p] == gens[p] { // still ours, and the same assignment
			proc.Expect(j.expect)
			j.procs[p] = proc
			j.idle[p] = time.Now()
			delete(j.toRestore, p)
		}
	}
	j.mu.Unlock()
	j.log.Info("window state restored", "partitions", restore, "keys", keys, "took", time.Since(t0).Round(time.Millisecond).String())
	if err := j.checkStateLimit(); err != nil {
		return err // the restored state alone is over the limit
	}
	return nil
}

// owned lists the repartition partitions whose state this instance holds.
func (j *Job) owned() []int32 {
	out := make([]int32, 0, len(j.procs))
	for p := range j.procs {
		out = append(out, p)
	}
	sort.Slice(out, func(a, b int) bool { return out[a] < out[b] })
	return out
}

// stale reports whether partition p was assigned (again) since its state was restored.
func (j *Job) stale(p int32) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.toRestore[p]
}

// resetState forgets all in-memory state after an aborted transaction: every owned partition
// is restored from the changelog again.
func (j *Job) resetState() {
	j.mu.Lock()
	defer j.mu.Unlock()
	for p := range j.procs {
		if !j.revoked[p] {
			j.toRestore[p] = true
		}
	}
	clear(j.procs)
}

// restore reads the changelog partitions read_committed up to their last stable offset.
//
// Why this cannot miss state: the previous owner of a partition writes its changelog records in
// the same transaction as its offset commit for the partition's input. So first wait until the
// group has no pending transactional offset commit (an OffsetFetch with RequireStable, KIP-447):
// every transaction of a previous owner has then committed or aborted, and none can commit
// later (the group generation fences it). The changelog's last stable offset then covers every
// committed update, and records past it belong to transactions that will abort.
func (j *Job) restore(ctx context.Context, parts []int32) (map[int32]*Processor, int, error) {
	topic := ChangelogTopic(j.spec.Name)
	ends, err := j.stableEnds(ctx, parts)
	if err != nil {
		return nil, 0, err
	}
	procs := map[int32]*Processor{}
	offs := map[int32]kgo.Offset{}
	want := map[int32]int64{}
	for _, p := range parts {
		procs[p] = NewProcessor(j.spec)
		procs[p].partitions = j.parts
		if o, ok := ends.Lookup(topic, p); ok && o.Offset > 0 {
			offs[p] = kgo.NewOffset().AtStart()
			want[p] = o.Offset
		}
	}
	if len(offs) == 0 {
		return procs, 0, nil
	}
	latest, err := j.readChangelog(ctx, len(parts), offs, want)
	if err != nil {
		return nil, 0, err
	}
	keys := 0
	for p, kvs := range latest {
		// Restore accepts any order, but the spec's fingerprint goes first, once: a changed
		// spec is reported as such, not as a window that does not fit.
		spec := string([]byte{keySpec})
		if v, ok := kvs[spec]; ok && v != nil {
			if err := procs[p].Restore([]byte(spec), v); err != nil {
				return nil, 0, &FatalError{Err: fmt.Errorf("restoring %s[%d]: %w", topic, p, err)}
			}
			keys++
		}
		for k, v := range kvs {
			if v == nil || k == spec {
				continue
			}
			if err := procs[p].Restore([]byte(k), v); err != nil {
				return nil, 0, &FatalError{Err: fmt.Errorf("restoring %s[%d]: %w", topic, p, err)}
			}
			keys++
		}
	}
	return procs, keys, nil
}

// stableEnds waits until the group has no pending transactional offset commit and no
// transaction is open on the changelog partitions parts, and returns their ends.
func (j *Job) stableEnds(ctx context.Context, parts []int32) (kadm.ListedOffsets, error) {
	cl, err := kgo.NewClient(j.cfg.KafkaOpts...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	for {
		offs, err := adm.FetchOffsetsForTopics(kadm.RequireStable(ctx), GroupID(j.spec.Name), RepartitionTopic(j.spec.Name))
		if err == nil {
			err = offs.Error()
		}
		if err == nil || errors.Is(err, kerr.GroupIDNotFound) { // a group that never committed has nothing pending
			break
		}
		if !errors.Is(err, kerr.UnstableOffsetCommit) && !kerr.IsRetriable(err) {
			return nil, fmt.Errorf("kafka: waiting for the group's pending transactions: %w", err)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return j.settledEnds(ctx, adm, ChangelogTopic(j.spec.Name), parts)
}

// readChangelog reads the changelog partitions from offs up to want (read_committed) and
// returns the latest value of each key per partition.
func (j *Job) readChangelog(ctx context.Context, nparts int, offs map[int32]kgo.Offset, want map[int32]int64) (map[int32]map[string][]byte, error) {
	topic := ChangelogTopic(j.spec.Name)
	rc, err := kgo.NewClient(append(append([]kgo.Opt{}, j.cfg.KafkaOpts...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offs}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
		// A restore reads whole partitions as fast as it can: larger fetches than a
		// consumer's default 1 MiB per partition cut the round trips.
		kgo.FetchMaxPartitionBytes(restoreFetchBytes), kgo.FetchMaxBytes(restoreFetchBytes),
		kgo.BrokerMaxReadBytes(2*restoreFetchBytes))...)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	latest := map[int32]map[string][]byte{}
	read := map[int32]int64{} // next offset per partition
	left := func() int64 {
		var n int64
		for p, end := range want {
			n += end - read[p]
		}
		return n
	}
	for p := range want {
		latest[p] = map[string][]byte{}
	}
	j.restoring(nparts, left())
	for len(want) > 0 {
		fs := rc.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var ferr error
		fs.EachError(func(_ string, _ int32, err error) { ferr = err })
		if ferr != nil {
			return nil, fmt.Errorf("kafka: reading %s: %w", topic, ferr)
		}
		var n, bytes uint64
		fs.EachRecord(func(r *kgo.Record) {
			if !r.Attrs.IsControl() {
				latest[r.Partition][string(r.Key)] = r.Value
				n++
				bytes += uint64(len(r.Key) + len(r.Value))
			}
			read[r.Partition] = r.Offset + 1
			if end, ok := want[r.Partition]; ok && r.Offset+1 >= end {
				delete(want, r.Partition)
			}
		})
		j.restored(n, bytes, left())
	}
	return latest, nil
}

// settledEnds waits until no transaction is open on the changelog partitions parts (their
// last stable offset equals their high watermark) and returns their last stable offsets.
//
// RequireStable alone is not enough: the coordinator writes a commit's markers to each
// partition of the transaction independently, so the group's offsets can be stable while the
// changelog's marker has not landed yet, and reading up to that last stable offset would miss
// the state of the very transaction whose offsets the group now holds. Once the last stable
// offset reaches the high watermark, every transaction that wrote the partition has ended;
// one a previous owner still has open ends by abort (the group fences its offset commit)
// within the transaction timeout, and the same open transaction holds back the repartition
// records this instance would process anyway.
func (j *Job) settledEnds(ctx context.Context, adm *kadm.Client, topic string, parts []int32) (kadm.ListedOffsets, error) {
	start := time.Now()
	logged := false
	for {
		lso, err := adm.ListCommittedOffsets(ctx, topic)
		if err == nil {
			err = lso.Error()
		}
		var hw kadm.ListedOffsets
		if err == nil {
			hw, err = adm.ListEndOffsets(ctx, topic)
		}
		if err == nil {
			err = hw.Error()
		}
		if err != nil {
			return nil, fmt.Errorf("kafka: reading the end of %s: %w", topic, err)
		}
		var open []int32
		for _, p := range parts {
			l, _ := lso.Lookup(topic, p)
			h, _ := hw.Lookup(topic, p)
			if h.Offset > l.Offset {
				open = append(open, p)
			}
		}
		if len(open) == 0 {
			return lso, nil
		}
		if !logged && time.Since(start) > 5*time.Second {
			logged = true
			j.log.Info("restore waits for a transaction still open on the changelog (a previous owner's: it ends within the transaction timeout)",
				"topic", topic, "partitions", open)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// restoreFetchBytes bounds one fetch of a restore (and one partition's share of it).
const restoreFetchBytes = 32 << 20
