package topics

import (
	"strings"
	"testing"
)

// Window jobs write topics too (output, late, dead letters, and their internal repartition
// and changelog topics): Check counts them as writers, as validate, check and run need.
func TestWindowJobTopicsAreWriters(t *testing.T) {
	base := head + `  - name: shop
    source:
      postgres:
        dsn: postgres://postgres@127.0.0.1:1/shop
        tables: [public.orders, public.customers]
    on_error: dlq
windows:
`
	job := func(name, extra string) string {
		return `  - name: ` + name + `
    input: {topics: [shop.public.orders]}
    group_by: [after.customer_id]
    window: {type: tumbling, size: 5m}
    aggregates: [{name: orders, fn: count}]
    output: {topic: shop.` + name + `}
` + extra
	}
	if err := Check(parse(t, base+job("a", "")+job("b", "")+job("c", "    on_error: dlq\n"))); err != nil {
		t.Fatalf("jobs with topics of their own refused: %v", err)
	}
	cases := []struct {
		name, yaml string
		want       []string
	}{
		{"dead-letter topic of a job and a pipeline", base + job("a", "    on_error: dlq\n    dlq: {topic: shop.dlq}\n"),
			[]string{"topic shop.dlq is written by", "the dead-letter topic of window job a", "the dead-letter topic of pipeline shop"}},
		{"a job's output on a table's topic", base + strings.Replace(job("a", ""), "output: {topic: shop.a}", "output: {topic: shop.public.customers}", 1),
			[]string{"topic shop.public.customers is written by", "the output of window job a", "table public.customers of pipeline shop"}},
	}
	for _, c := range cases {
		err := Check(parse(t, c.yaml))
		if err == nil {
			t.Errorf("%s: accepted", c.name)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: message lacks %q: %v", c.name, w, err)
			}
		}
	}
}
