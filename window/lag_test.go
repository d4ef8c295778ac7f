package window

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// lagFixture: an input topic of two partitions, each holding one committed record (written in
// a transaction, so a commit marker follows it). The job's group has consumed partition 0's
// record (offset 1 committed: only the marker lies beyond) and nothing of partition 1.
func lagFixture(t *testing.T) (*kfake.Cluster, context.Context, *Job) {
	t.Helper()
	const input = "in"
	c, _, opts, _ := newJobFakes(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	cl, err := kgo.NewClient(append(append([]kgo.Opt{}, opts...), kgo.TransactionalID("writer"), kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, 2, 1, nil, input); err != nil {
		t.Fatal(err)
	}
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for p := int32(0); p < 2; p++ {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: input, Partition: p, Value: []byte("x")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	spec := ordersJob(input)
	var offs kadm.Offsets
	offs.Add(kadm.Offset{Topic: input, Partition: 0, At: 1})
	if _, err := adm.CommitOffsets(ctx, GroupID(spec.Name), offs); err != nil {
		t.Fatal(err)
	}
	j, err := New(Config{Spec: spec, KafkaOpts: opts, InstanceID: "a"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(j.closeLag)
	return c, ctx, j
}

var lagInputs = []Origin{{Topic: "in", Partition: 0}, {Topic: "in", Partition: 1}}

// The drained check tells a partition read to its end (only a commit marker beyond the
// group's offset) from one with a record the group has not consumed.
func TestDrainedInputs(t *testing.T) {
	_, ctx, j := lagFixture(t)
	for i := 0; i < 3; i++ { // the same answer every time, on the job's one client
		drained, err := j.drainedInputs(ctx, lagInputs)
		if err != nil {
			t.Fatal(err)
		}
		if !drained[inputPart{"in", 0}] || drained[inputPart{"in", 1}] {
			t.Fatalf("drained %v: want in[0] only", drained)
		}
	}
}

// A read that does not finish in time says nothing: an input partition whose records could
// not be read is not drained (it was counted drained, and its records then went late).
func TestDrainedInputsTimeoutIsNotDrained(t *testing.T) {
	c, ctx, j := lagFixture(t)
	c.ControlKey(int16(kmsg.Fetch), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		return nil, nil, true // never answered
	})
	drained, err := j.drainedInputs(ctx, lagInputs)
	if err == nil && drained[inputPart{"in", 1}] {
		t.Fatalf("in[1] holds a record the group has not consumed, yet it was found drained when its read timed out (%v)", drained)
	}
	ok, err := NoCommittedData(ctx, j.cfg.KafkaOpts, []Range{{Topic: "in", Partition: 1, From: 0, To: 2}}, 500*time.Millisecond)
	if err == nil && ok {
		t.Fatal("NoCommittedData: a read that timed out reported the range empty")
	}
}

// A read that fails is an error, not "drained".
func TestDrainedInputsFetchErrorIsNotDrained(t *testing.T) {
	c, ctx, j := lagFixture(t)
	c.ControlKey(int16(kmsg.Fetch), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		req := kreq.(*kmsg.FetchRequest)
		resp := req.ResponseKind().(*kmsg.FetchResponse)
		for _, rt := range req.Topics {
			st := kmsg.NewFetchResponseTopic()
			st.Topic, st.TopicID = rt.Topic, rt.TopicID
			for _, rp := range rt.Partitions {
				sp := kmsg.NewFetchResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.ErrorCode = 29 // TOPIC_AUTHORIZATION_FAILED
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
	drained, err := j.drainedInputs(ctx, lagInputs)
	if err == nil && drained[inputPart{"in", 1}] {
		t.Fatalf("in[1] was found drained although reading it failed (%v)", drained)
	}
}
