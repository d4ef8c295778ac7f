package window

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// An event time far in the future (a typo year 9999) would move stream time to the end of
// time and close every window: it is a dead letter with the reason, and the orders around it
// count in their windows, none late.
func TestJobDeadLettersOutOfRangeEventTime(t *testing.T) {
	const input = "shop.public.orders"
	ctx, opts, cl, srcl := newOrdersInput(t, time.Minute, input, 1)
	at := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	produceOrders(t, ctx, cl, srcl, input, []order{{id: 1, customer: 1, cents: 100, at: at},
		{id: 2, customer: 1, cents: 100, at: time.Date(9999, 11, 1, 10, 0, 0, 0, time.UTC)},
		{id: 3, customer: 1, cents: 250, at: at.Add(time.Second)}})
	spec := ordersJob(input)
	spec.Window.Grace = time.Second
	spec.DeadLetter = spec.Output + ".dlq"
	job, err := New(Config{Spec: spec, KafkaOpts: opts, Registry: srcl, InstanceID: "a", Partitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	jctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- job.Run(jctx) }()
	got := readResults(t, ctx, opts, srcl, spec.Output, 1, 30*time.Second)
	late := readLate(t, ctx, opts, spec.Output+".late")
	letters := readLate(t, ctx, opts, spec.DeadLetter)
	stop()
	if err := <-done; err != nil {
		t.Fatalf("the job stopped: %v", err)
	}
	if len(got) != 1 || got[0].orders != 2 || got[0].revenue != "3.50" {
		t.Errorf("want one window of orders 1 and 3 (2 orders, 3.50), got %+v", got)
	}
	if len(late) != 0 {
		t.Errorf("late records: %q", late)
	}
	if len(letters) != 1 || !strings.Contains(letters[0], "cdcd.error.class=event_time_out_of_range") || !strings.Contains(letters[0], "9999") {
		t.Errorf("want one dead letter of class event_time_out_of_range naming the time, got %q", letters)
	}
}

// With a time zone, a daily window starts at local midnight, and on the day the clocks move
// forward it is 23 hours long.
func TestDailyWindowsAlignToTheTimeZone(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	s := spec(WindowSpec{Type: Tumbling, Size: 24 * time.Hour})
	s.Aggs = []AggSpec{{Name: "n", Fn: FnCount}}
	s.TimeZone = ny
	p := NewProcessor(s)
	for _, at := range []time.Time{
		time.Date(2026, 3, 7, 23, 30, 0, 0, ny), // Saturday
		time.Date(2026, 3, 8, 0, 30, 0, 0, ny),  // Sunday: clocks move forward at 2:00
		time.Date(2026, 3, 8, 23, 30, 0, 0, ny),
	} {
		if err := p.Add(Rec{Group: []Value{Long(1)}, T: at.UnixMicro(), Sign: 1, Vals: []Value{Null}}); err != nil {
			t.Fatal(err)
		}
	}
	p.AdvanceTo(time.Date(2026, 3, 20, 0, 0, 0, 0, ny).UnixMicro())
	res, _ := p.TakeResults()
	var got []string
	for _, r := range res {
		got = append(got, time.UnixMicro(r.Start).In(ny).Format("01-02 15:04")+" +"+time.Duration((r.End-r.Start)*1000).String()+" n="+r.Aggs[0].Text())
	}
	want := []string{"03-07 00:00 +24h0m0s n=1", "03-08 00:00 +23h0m0s n=2"}
	if strings.Join(got, "; ") != strings.Join(want, "; ") {
		t.Errorf("windows %q, want %q", got, want)
	}
}

// A timestamp without time zone is read as the wall-clock time in the job's zone.
func TestLocalTimestampReadInTheTimeZone(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	local := time.Date(2026, 7, 1, 9, 0, 0, 0, time.UTC).UnixMicro() // 09:00 on the wall clock
	p := &plan{local: true, zone: ny}
	if got, want := p.eventTime(Value{Kind: KindTime, I: local}), time.Date(2026, 7, 1, 9, 0, 0, 0, ny).UnixMicro(); got != want {
		t.Errorf("09:00 local in New York: got %s, want %s", time.UnixMicro(got).UTC(), time.UnixMicro(want).UTC())
	}
	if got := p.eventTime(Value{Kind: KindTime, I: 1<<63 - 1}); got != badTime {
		t.Errorf("infinity: got %d, want badTime", got)
	}
}

// A fenced producer is explained: two instances with one instance_id fence each other.
func TestFencedProducerNamesInstanceID(t *testing.T) {
	j, err := New(Config{Spec: ordersJob("in"), InstanceID: "host-1"})
	if err != nil {
		t.Fatal(err)
	}
	got := j.explain(fmt.Errorf("kafka: ending the transaction: %w", kerr.ProducerFenced)).Error()
	if !strings.Contains(got, "instance_id") || !strings.Contains(got, "cdcd-window-orders_per_customer-host-1") {
		t.Errorf("no hint at the shared instance_id: %s", got)
	}
	if !errors.Is(j.explain(kerr.ProducerFenced), kerr.ProducerFenced) {
		t.Error("the explained error no longer wraps the cause")
	}
}
