package metrics

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestLintClean(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := New(reg, "test")
	m.EventsPublished.WithLabelValues("shop", "public.orders", "create").Add(3)
	m.SetWALStatus("shop", "cdcd_shop", "reserved")
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

func TestWALStatusOneHot(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg, "test")
	m.SetWALStatus("shop", "s", "reserved")
	m.SetWALStatus("shop", "s", "lost")
	want := `
# HELP cdcd_postgres_slot_wal_status 1 for the slot's current wal_status (reserved, extended, unreserved, lost).
# TYPE cdcd_postgres_slot_wal_status gauge
cdcd_postgres_slot_wal_status{pipeline="shop",slot="s",status="extended"} 0
cdcd_postgres_slot_wal_status{pipeline="shop",slot="s",status="lost"} 1
cdcd_postgres_slot_wal_status{pipeline="shop",slot="s",status="reserved"} 0
cdcd_postgres_slot_wal_status{pipeline="shop",slot="s",status="unreserved"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "cdcd_postgres_slot_wal_status"); err != nil {
		t.Fatal(err)
	}
}
