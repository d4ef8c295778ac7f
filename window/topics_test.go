package window

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// The repartition topic keeps its records until the job has processed them: the job gives it
// infinite retention (also when it exists with a time limit, as the broker's default gives)
// and deletes the records its committed offsets have passed.
func TestRepartitionTopicKeepsWhatIsNotProcessed(t *testing.T) {
	const input = "shop.public.orders"
	ctx, opts, cl, srcl := newOrdersInput(t, time.Minute, input, 2)
	spec := ordersJob(input)
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, 2, 1, map[string]*string{"retention.ms": kadm.StringPtr("60000")}, RepartitionTopic(spec.Name)); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	var orders []order
	for i := 0; i < 50; i++ {
		orders = append(orders, order{id: int64(i), customer: int64(i % 5), cents: 100, at: at})
	}
	produceOrders(t, ctx, cl, srcl, input, orders)
	job, err := New(Config{Spec: spec, KafkaOpts: opts, Registry: srcl, InstanceID: "a", Partitions: 2, Log: testLog(t, "a")})
	if err != nil {
		t.Fatal(err)
	}
	job.purgeEvery = 200 * time.Millisecond
	jctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- job.Run(jctx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		rc, err := adm.DescribeTopicConfigs(ctx, RepartitionTopic(spec.Name))
		retention := ""
		if err == nil {
			if c, err := rc.On(RepartitionTopic(spec.Name), nil); err == nil {
				for _, kv := range c.Configs {
					if kv.Key == "retention.ms" && kv.Value != nil {
						retention = *kv.Value
					}
				}
			}
		}
		starts, err := adm.ListStartOffsets(ctx, RepartitionTopic(spec.Name))
		deleted := int64(0)
		if err == nil {
			starts.Each(func(o kadm.ListedOffset) { deleted += o.Offset })
		}
		if retention == "-1" && deleted > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("repartition topic: retention.ms %q (want -1), %d processed records deleted (want some)", retention, deleted)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// A topic just created that a broker does not describe yet is asked again after 50 ms, not
// after a failed attempt; other errors and a topic that never appears end the wait.
func TestUntilVisible(t *testing.T) {
	calls := 0
	err := untilVisible(context.Background(), func() error {
		if calls++; calls < 3 {
			return fmt.Errorf("describing: %w", kerr.UnknownTopicOrPartition)
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Fatalf("err %v after %d calls, want nil after 3", err, calls)
	}
	calls = 0
	other := errors.New("authorization failed")
	if err := untilVisible(context.Background(), func() error { calls++; return other }); err != other || calls != 1 {
		t.Fatalf("err %v after %d calls, want the error at once", err, calls)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := untilVisible(ctx, func() error { return errNotVisible }); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want the context's end", err)
	}
}
