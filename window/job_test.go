package window

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math/big"
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/change"
	"github.com/cdcd-dev/cdcd/encode"
	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"
)

// ordersTable is the input table of the job tests.
var ordersTable = &change.Table{Database: "shop", Schema: "public", Name: "orders", Version: 1, KeyColumns: []int{0},
	Columns: []change.Column{
		{Name: "id", Kind: change.KindInt64, Key: true, SourceType: "bigint"},
		{Name: "customer_id", Kind: change.KindInt32, Nullable: true, SourceType: "integer"},
		{Name: "total", Kind: change.KindDecimal, Precision: 10, Scale: 2, Nullable: true, SourceType: "numeric(10,2)"},
	}}

type order struct {
	id, customer int64
	cents        int64
	at           time.Time
}

// produceOrders writes creates of orders into topic as cdcd would (real encoder, fake
// registry), spread over partitions by key.
func produceOrders(t *testing.T, ctx context.Context, cl *kgo.Client, srcl *sr.Client, topic string, orders []order) {
	t.Helper()
	enc, err := encode.New(encode.Config{Pipeline: "shop", Connector: "postgresql", TopicPrefix: "shop",
		TopicOverrides: map[string]string{"public.orders": topic}}, encode.NewSRRegistry(srcl))
	if err != nil {
		t.Fatal(err)
	}
	var rec encode.Record
	for i, o := range orders {
		ev := change.Event{Op: change.OpCreate, Table: ordersTable, Pos: change.Position{Tx: uint64(i + 1)}, CommitTime: o.at, TxID: "1",
			After: []change.Value{{State: change.Present, Int: o.id}, {State: change.Present, Int: o.customer},
				{State: change.Present, Str: big.NewRat(o.cents, 100).FloatString(2)}}}
		if err := enc.Encode(ctx, &ev, &rec); err != nil {
			t.Fatal(err)
		}
		r := &kgo.Record{Topic: topic, Key: bytes.Clone(rec.Key), Value: bytes.Clone(rec.Value)}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
}

type result struct {
	customer   int64
	start, end int64 // ms
	orders     int64
	revenue    string
	events     int64
}

// readResults reads the job's output read_committed until n records arrived or timeout.
func readResults(t *testing.T, ctx context.Context, opts []kgo.Opt, srcl *sr.Client, topic string, n int, timeout time.Duration) []result {
	t.Helper()
	cl, err := kgo.NewClient(append(append([]kgo.Opt{}, opts...), kgo.ConsumeTopics(topic), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	schemas := map[int]avro.Schema{}
	var out []result
	deadline := time.Now().Add(timeout)
	for len(out) < n && time.Now().Before(deadline) {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		fs := cl.PollFetches(pctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) {
			id := int(binary.BigEndian.Uint32(r.Value[1:5]))
			s := schemas[id]
			if s == nil {
				ss, err := srcl.SchemaByID(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				s = avro.MustParse(ss.Schema)
				schemas[id] = s
			}
			var m map[string]any
			if err := avro.Unmarshal(s, r.Value[5:], &m); err != nil {
				t.Fatal(err)
			}
			res := result{start: m["window_start"].(time.Time).UnixMilli(), end: m["window_end"].(time.Time).UnixMilli(),
				orders: m["orders"].(int64), events: m["events"].(int64)}
			if c, ok := m["customer_id"].(int64); ok {
				res.customer = c
			}
			if rv, ok := m["revenue"].(*big.Rat); ok {
				res.revenue = rv.FloatString(2)
			}
			out = append(out, res)
		})
	}
	return out
}

func newJobFakes(t *testing.T) (*kfake.Cluster, *srfake.Registry, []kgo.Opt, *sr.Client) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	reg := srfake.New()
	t.Cleanup(reg.Close)
	srcl, err := sr.NewClient(sr.URLs(reg.URL()))
	if err != nil {
		t.Fatal(err)
	}
	return c, reg, []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}, srcl
}

func ordersJob(input string) *Spec {
	return &Spec{Name: "orders_per_customer", Topics: []string{input}, Ops: "c",
		Time: Path{"source", "ts_ms"}, GroupBy: []Path{{"after", "customer_id"}},
		Window: WindowSpec{Type: Tumbling, Size: time.Minute, Grace: time.Hour},
		Aggs:   []AggSpec{{Name: "orders", Fn: FnCount}, {Name: "revenue", Fn: FnSum, Field: Path{"after", "total"}}},
		Mode:   ModeEvents, Output: "orders_per_customer_1m", IdleTimeout: 2 * time.Second}
}

// A tumbling count+sum job over orders spread across 3 input partitions: every window's
// result, read read_committed, equals a batch aggregation of the same input, exactly once.
func TestJobTumblingMatchesBatch(t *testing.T) {
	_, _, opts, srcl := newJobFakes(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	const input = "shop.public.orders"
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 3, 1, nil, input); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed(t), 11))
	base := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	var orders []order
	for i := 0; i < 600; i++ {
		orders = append(orders, order{id: int64(i), customer: rng.Int64N(5), cents: rng.Int64N(100000),
			at: base.Add(time.Duration(i*1500+rng.IntN(1000)) * time.Millisecond)})
	}
	produceOrders(t, ctx, cl, srcl, input, orders)

	want := map[[2]int64]*result{}
	for _, o := range orders {
		start := o.at.UnixMilli() / 60000 * 60000
		k := [2]int64{o.customer, start}
		r := want[k]
		if r == nil {
			r = &result{customer: o.customer, start: start, end: start + 60000, revenue: "0.00"}
			want[k] = r
		}
		r.orders++
		r.events++
		sum, _ := new(big.Rat).SetString(r.revenue)
		r.revenue = sum.Add(sum, big.NewRat(o.cents, 100)).FloatString(2)
	}

	job, err := New(Config{Spec: ordersJob(input), KafkaOpts: opts, Registry: srcl, InstanceID: "a", Partitions: 4})
	if err != nil {
		t.Fatal(err)
	}
	jctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- job.Run(jctx) }()
	got := readResults(t, ctx, opts, srcl, "orders_per_customer_1m", len(want), time.Minute)
	stop()
	if err := <-done; err != nil {
		t.Fatalf("job: %v", err)
	}
	seen := map[[2]int64]bool{}
	for _, g := range got {
		k := [2]int64{g.customer, g.start}
		if seen[k] {
			t.Errorf("window %v emitted twice", k)
		}
		seen[k] = true
		w := want[k]
		if w == nil {
			t.Errorf("unexpected window %+v", g)
			continue
		}
		if *w != g {
			t.Errorf("window %v: got %+v, want %+v", k, g, *w)
		}
	}
	if len(got) != len(want) {
		keys := make([]string, 0)
		for k := range want {
			if !seen[k] {
				keys = append(keys, fmt.Sprint(k))
			}
		}
		sort.Strings(keys)
		t.Fatalf("got %d results, want %d; missing %v", len(got), len(want), keys)
	}
}
