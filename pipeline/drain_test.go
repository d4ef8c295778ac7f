package pipeline

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// A shutdown that arrives while a batch's records are still buffered in the producer (the
// broker is slow) must still commit the batch within the drain time: the records used to be
// produced under the session's context, so the shutdown failed them (and the commit with
// them), and the whole batch was published again by the next start.
func TestShutdownCommitsBufferedBatch(t *testing.T) {
	c, reg := newFakes(t)
	txs, _ := makeTxsBigAt(2, -1, rand.New(rand.NewPCG(13, 14)))
	gate := make(chan struct{})
	src := &fakeSource{txs: txs, start: 50, gate: map[int]chan struct{}{1: gate}}
	p := newTestPipeline(t, c.ListenAddrs(), reg.URL(), src)

	var hold atomic.Bool
	held, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	c.ControlKey(kmsg.Produce.Int16(), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if hold.Load() {
			once.Do(func() { close(held); <-release }) // the broker stalls (and with it kfake)
		}
		return nil, nil, false
	})

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	waitFor(t, "the first transaction acknowledged", done, func() bool { return src.acked.Load() >= lsnOf(0)+1 })
	hold.Store(true)
	close(gate) // the second transaction's records pile up behind the stalled produce
	<-held
	time.Sleep(50 * time.Millisecond) // let the session produce the rest into the buffer
	cancel()                          // SIGTERM
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := src.acked.Load(); got != lsnOf(1)+1 {
		t.Fatalf("after the drain the source is acknowledged up to %d, want %d (the buffered batch committed)", got, lsnOf(1)+1)
	}
	rec, ok := loadOffsetsT(t, c.ListenAddrs())
	if !ok || rec.Pos.Tx != lsnOf(1) || !rec.Complete {
		t.Fatalf("offsets after the drain: %+v", rec)
	}
}
