package window

import (
	"context"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// commitThenAnswerUnknown makes the broker commit the next transaction txnID ends with a
// commit, and answer that EndTxn with UNKNOWN_SERVER_ERROR: the commit landed, but the client
// cannot know it (franz-go then reports the transaction as not committed and rewinds its
// consumer to the offsets it last saw committed). It returns a count of the answers faked.
func commitThenAnswerUnknown(t *testing.T, c *kfake.Cluster, opts []kgo.Opt, txnID string, times int) *atomic.Int32 {
	t.Helper()
	side, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(side.Close)
	var faked atomic.Int32
	var forwarding atomic.Bool
	c.ControlKey(int16(kmsg.EndTxn), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		req := kreq.(*kmsg.EndTxnRequest)
		if forwarding.Load() || !req.Commit || req.TransactionalID != txnID || int(faked.Load()) >= times {
			return nil, nil, false // handled as usual
		}
		// Commit through a second connection (this one waits), then answer the
		// job's request as if the outcome were unknown.
		fwd := *req
		var ferr error
		var fresp *kmsg.EndTxnResponse
		forwarding.Store(true)
		c.SleepControl(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			fresp, ferr = fwd.RequestWith(ctx, side)
		})
		forwarding.Store(false)
		if ferr != nil || fresp.ErrorCode != 0 {
			t.Errorf("committing the transaction on the side: %v %v", ferr, fresp)
			return nil, nil, false
		}
		faked.Add(1)
		resp := req.ResponseKind().(*kmsg.EndTxnResponse)
		resp.ErrorCode = kerr.UnknownServerError.Code
		resp.ProducerID, resp.ProducerEpoch = -1, -1
		return resp, nil, true
	})
	return &faked
}

// An ambiguous commit: EndTxn commits on the broker but is answered with an unknown error,
// which franz-go retries as an abort and reports as not committed, rewinding the consumer to
// the offsets before the transaction. Continuing from there reprocesses input whose
// repartition records and window state are already committed (every window of it counted
// twice). The job must restart its session from what is committed: every window equals the
// batch aggregation, once.
func TestJobAmbiguousCommitRestartsFromCommittedState(t *testing.T) {
	const input = "shop.public.orders"
	c, _, opts, srcl := newJobFakes(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 2, 1, nil, input); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed(t), 21))
	base := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	var orders []order
	for i := 0; i < 300; i++ {
		orders = append(orders, order{id: int64(i), customer: rng.Int64N(5), cents: rng.Int64N(100000),
			at: base.Add(time.Duration(i*1500) * time.Millisecond)})
	}
	produceOrders(t, ctx, cl, srcl, input, orders)
	want := batchPerCustomerMinute(orders)

	spec := ordersJob(input)
	job, err := New(Config{Spec: spec, KafkaOpts: opts, Registry: srcl, InstanceID: "a", Partitions: 2, Log: testLog(t, "a")})
	if err != nil {
		t.Fatal(err)
	}
	faked := commitThenAnswerUnknown(t, c, opts, job.transactionalID(), 3)
	jctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- job.Run(jctx) }()
	readResults(t, ctx, opts, srcl, spec.Output, len(want), time.Minute)
	// Windows emitted twice come after the expected count: read everything again.
	got := readResults(t, ctx, opts, srcl, spec.Output, 1<<30, 3*time.Second)
	stop()
	if err := <-done; err != nil {
		t.Fatalf("job: %v", err)
	}
	if faked.Load() == 0 {
		t.Fatal("no commit was answered ambiguously: the test proves nothing")
	}
	t.Logf("%d commits answered with UNKNOWN_SERVER_ERROR after they committed", faked.Load())
	compareWindows(t, got, want)
}
