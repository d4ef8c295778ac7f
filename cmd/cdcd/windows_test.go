package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/change"
	"github.com/cdcd-dev/cdcd/checks"
	"github.com/cdcd-dev/cdcd/config"
	"github.com/cdcd-dev/cdcd/encode"
	"github.com/cdcd-dev/cdcd/metrics"
	"github.com/cdcd-dev/cdcd/window"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"
)

// reportLag sets the lag gauges from a measurement of window.LagWatcher.
func TestReportWindowLag(t *testing.T) {
	wm := metrics.NewWindowJobs(prometheus.NewRegistry())
	reportLag(wm, "orders", window.LagReport{Partitions: []window.PartitionLag{{Topic: "shop.public.orders", Partition: 2, Records: 7}}, Behind: 12 * time.Second})
	if got := testutil.ToFloat64(wm.ConsumerLag.WithLabelValues("orders", "shop.public.orders", "2")); got != 7 {
		t.Errorf("lag %v records, want 7", got)
	}
	if got := testutil.ToFloat64(wm.ConsumerLagSeconds.WithLabelValues("orders")); got != 12 {
		t.Errorf("lag %v s, want 12", got)
	}
}

// A window job writing a topic a pipeline writes (or another job's) is refused before anything
// runs, naming both writers: results would mix with change records under one subject.
func TestWindowOutputCollidesWithPipelineTopic(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	yaml := `kafka:
  brokers: ["127.0.0.1:19092"]
schema_registry:
  url: http://127.0.0.1:18081
pipelines:
  - name: shop
    source:
      postgres:
        dsn: postgres://postgres@127.0.0.1:1/shop
        tables: [public.orders, public.customers]
windows:
  - name: per_customer
    input: {topics: [shop.public.orders]}
    window: {type: tumbling, size: 1m}
    aggregates: [{name: n, fn: count}]
    output: {topic: shop.public.customers}
`
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	err := validateCommand(path, io.Discard)
	if err == nil {
		t.Fatal("a window output on a pipeline's topic was accepted")
	}
	for _, want := range []string{"topic shop.public.customers", "table public.customers of pipeline shop", "the output of window job per_customer"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message lacks %q: %v", want, err)
		}
	}
}

// cdcd check covers window jobs: an input topic that exists with a registered schema holding
// the job's fields passes, a field the schema lacks fails naming it and the fields there are,
// an input no pipeline writes that does not exist fails, and the topics a job writes are
// reported creatable.
func TestCheckWindows(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	reg := srfake.New()
	defer reg.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	const input = "shop.public.orders"
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 3, 1, nil, input); err != nil {
		t.Fatal(err)
	}
	// A repartition topic with a time limit (the broker's default retention) can lose records
	// the job has not processed.
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 3, 1, map[string]*string{"retention.ms": kadm.StringPtr("604800000")}, window.RepartitionTopic("good")); err != nil {
		t.Fatal(err)
	}
	srcl, err := sr.NewClient(sr.URLs(reg.URL()))
	if err != nil {
		t.Fatal(err)
	}
	enc, err := encode.New(encode.Config{Pipeline: "shop", Connector: "postgresql", TopicPrefix: "shop"}, encode.NewSRRegistry(srcl))
	if err != nil {
		t.Fatal(err)
	}
	tbl := &change.Table{Database: "shop", Schema: "public", Name: "orders", Version: 1, KeyColumns: []int{0},
		Columns: []change.Column{{Name: "id", Kind: change.KindInt64, Key: true, SourceType: "bigint"},
			{Name: "customer_id", Kind: change.KindInt32, Nullable: true, SourceType: "integer"}}}
	var rec encode.Record
	ev := change.Event{Op: change.OpCreate, Table: tbl, CommitTime: time.Now(), TxID: "1",
		After: []change.Value{{State: change.Present, Int: 1}, {State: change.Present, Int: 2}}}
	if err := enc.Encode(ctx, &ev, &rec); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse("c.yaml", []byte(fmt.Sprintf(`kafka:
  brokers: [%q]
schema_registry:
  url: %q
windows:
  - name: good
    input: {topics: [%s]}
    group_by: [after.customer_id]
    window: {type: tumbling, size: 1m}
    aggregates: [{name: n, fn: count}]
    output: {topic: good_out}
  - name: badfield
    input: {topics: [%s]}
    group_by: [after.nope]
    window: {type: tumbling, size: 1m}
    aggregates: [{name: n, fn: count}]
    output: {topic: bad_out}
  - name: noinput
    input: {topics: [shop.public.missing]}
    window: {type: tumbling, size: 1m}
    aggregates: [{name: n, fn: count}]
    output: {topic: none_out}
`, c.ListenAddrs()[0], reg.URL(), input, input)), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	var rep checks.Report
	checkWindows(ctx, cfg, newSourceTables(cfg), &rep)
	var out strings.Builder
	rep.Print(&out)
	t.Logf("\n%s", out.String())
	status := map[string]checks.Result{}
	for _, r := range rep.Results {
		status[r.Scope+" / "+r.Name] = r
	}
	for _, w := range []struct {
		key    string
		status checks.Status
		detail string
	}{
		{"window job good / input shop.public.orders", checks.OK, "3 partitions"},
		{"window job good / fields in shop.public.orders-value", checks.OK, "every field"},
		{"window job good / topic good_out", checks.OK, "can create"},
		{"window job good / schema good_out-value", checks.OK, "not registered yet"},
		{"window job good / topic cdcd-window.good.changelog", checks.OK, "can create"},
		{"window job good / topic cdcd-window.good.repartition", checks.Warn, "retention.ms=-1"},
		{"window job badfield / fields in shop.public.orders-value", checks.Fail, "customer_id"},
		{"window job noinput / input shop.public.missing", checks.Fail, "does not exist"},
	} {
		r, ok := status[w.key]
		if !ok {
			t.Errorf("no check %q", w.key)
			continue
		}
		if r.Status != w.status || !strings.Contains(r.Detail, w.detail) {
			t.Errorf("%s: %s %q, want %s containing %q", w.key, r.Status, r.Detail, w.status, w.detail)
		}
	}
	if r := status["window job badfield / fields in shop.public.orders-value"]; !strings.Contains(r.Detail, "after.nope") {
		t.Errorf("the failure does not name the missing field: %q", r.Detail)
	}
}
