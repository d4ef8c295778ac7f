package window

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Which repartition partitions this instance owns.
//
// The group's callbacks say it (OnPartitionsAssigned, OnPartitionsRevoked), but franz-go's
// transact session calls the revoke callback only for the first revocation after a
// transaction ended: while one is pending it skips the next, and only End clears it. An
// instance that is idle ends no transaction, so it would miss every revocation after the
// first, keep the state of partitions it lost and write idle ticks into their new owner's
// partitions (ticks commit no offset, so the group does not fence them). Hence:
//   - after a revocation the loop ends an empty transaction when it has nothing else to do
//     (endIdle), so the next revocation reaches the callback;
//   - before writing ticks, and every ownerCheckEvery, the instance asks the group
//     coordinator which partitions it has assigned this member (confirmOwned): it writes ticks
//     only there, and drops the state of partitions the group assigned to others.

// ownerCheckEvery bounds how long state for a partition whose revocation was missed is kept.
const ownerCheckEvery = 30 * time.Second

// revocation notes a revocation reported to the job (see endIdle).
func (j *Job) revocation() {
	j.revokePending.Store(true)
}

// endIdle ends an empty transaction if a revocation was reported since the last one ended,
// so that franz-go delivers the next revocation.
func (j *Job) endIdle(ctx context.Context, sess *kgo.GroupTransactSession) error {
	if !j.revokePending.Swap(false) {
		return nil
	}
	if err := sess.Begin(); err != nil {
		return fmt.Errorf("kafka: beginning a transaction: %w", err)
	}
	// Nothing was consumed since the last transaction ended (or the consumer was rewound with
	// the state): the abort changes neither the offsets nor the state.
	if _, err := sess.End(ctx, kgo.TryAbort); err != nil {
		return fmt.Errorf("kafka: ending an empty transaction: %w", err)
	}
	return nil
}

// groupAssigned returns the repartition partitions the group coordinator has assigned this
// member; an error while the group is not stable or does not list the member.
func (j *Job) groupAssigned(ctx context.Context, cl *kgo.Client) (map[int32]bool, error) {
	member, _ := cl.GroupMetadata()
	group := GroupID(j.spec.Name)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	described, err := kadm.NewClient(cl).DescribeGroups(ctx, group)
	if err != nil {
		return nil, err
	}
	g, ok := described[group]
	if !ok {
		return nil, fmt.Errorf("group %s not described", group)
	}
	if g.Err != nil {
		return nil, g.Err
	}
	if g.State != "Stable" {
		return nil, fmt.Errorf("group %s is %s", group, g.State)
	}
	for _, m := range g.Members {
		if m.MemberID != member {
			continue
		}
		a, ok := m.Assigned.AsConsumer()
		if !ok {
			return nil, fmt.Errorf("group %s: the assignment of member %s is not a consumer's", group, member)
		}
		out := map[int32]bool{}
		for _, t := range a.Topics {
			if t.Topic == RepartitionTopic(j.spec.Name) {
				for _, p := range t.Partitions {
					out[p] = true
				}
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("group %s does not list member %s", group, member)
}

// confirmOwned returns the ticks for partitions the group has assigned this member (none if
// that cannot be told now), and marks partitions whose state the instance holds but the group
// assigned elsewhere as revoked (applyAssignment drops them).
func (j *Job) confirmOwned(ctx context.Context, cl *kgo.Client, ticks []*kgo.Record) []*kgo.Record {
	assigned, err := j.groupAssigned(ctx, cl)
	if err != nil {
		j.log.Debug("the group's assignment could not be read; no ticks this time", "err", err)
		return nil
	}
	j.mu.Lock()
	var dropped []int32
	for p := range j.procs {
		if !assigned[p] && !j.revoked[p] {
			j.revoked[p] = true
			delete(j.toRestore, p)
			dropped = append(dropped, p)
		}
	}
	j.mu.Unlock()
	if len(dropped) > 0 {
		j.log.Info("dropping the state of partitions the group assigned to another member (their revocation was not reported)", "partitions", dropped)
	}
	out := ticks[:0]
	for _, r := range ticks {
		if assigned[r.Partition] {
			out = append(out, r)
		}
	}
	return out
}
