package integration

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"
)

// transaction_metadata on the real stack: the registry accepts the metadata schemas, and a
// PostgreSQL transaction over two tables gives BEGIN, its events with their orders, and END
// with the counts, the same id everywhere (the xid), exactly once.
func TestTransactionMetadataOnTheStack(t *testing.T) {
	s, ctx, dsn, db := setup(t, 3*time.Minute, "cdcd_txmeta",
		`CREATE TABLE a (id int PRIMARY KEY); CREATE TABLE b (id int PRIMARY KEY)`)
	name := uniqueName("txmeta")
	d := startDaemon(t, pipelineYAML(s, name, dsn, []string{"public.a", "public.b"}, "    transaction_metadata: true\n"))
	d.waitReady(90 * time.Second)
	tx, err := db.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var xid string
	for _, q := range []string{`INSERT INTO a VALUES (1)`, `INSERT INTO b VALUES (1)`, `INSERT INTO a VALUES (2)`, `UPDATE b SET id = 2 WHERE id = 1`} {
		if _, err := tx.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.QueryRow(ctx, `SELECT txid_current()::text`).Scan(&xid); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	c := newConsumer(t, s, name+".transaction")
	meta := c.read(t, 2, time.Minute, 2*time.Second)
	var got []string
	for _, r := range meta {
		v := c.decode(t, r.Value)
		k := c.decode(t, r.Key)
		line := fmt.Sprintf("%v %v key=%v", v["status"], v["id"], k["id"])
		if v["status"] == "END" {
			line += fmt.Sprintf(" count=%v", v["event_count"])
			dcs := v["data_collections"]
			if m, ok := dcs.(map[string]any); ok {
				dcs = m["array"]
			}
			for _, dc := range dcs.([]any) {
				m := dc.(map[string]any)
				line += fmt.Sprintf(" %v=%v", m["data_collection"], m["event_count"])
			}
		}
		got = append(got, line)
	}
	// The primary-key change of b is a delete and a create: 4 statements, 5 events.
	want := []string{fmt.Sprintf("BEGIN %s key=%s", xid, xid), fmt.Sprintf("END %s key=%s count=5 public.a=2 public.b=3", xid, xid)}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("transaction topic:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	data := newConsumer(t, s, name+".public.a", name+".public.b")
	var orders []string
	for _, r := range data.read(t, 6, time.Minute, time.Second) { // 5 events + b's tombstone
		if r.Value == nil {
			continue
		}
		tr := data.decode(t, r.Value)["transaction"].(map[string]any)
		if inner, ok := tr["io.cdcd.Transaction"].(map[string]any); ok {
			tr = inner
		}
		if tr["id"] != xid {
			t.Errorf("event of %s carries transaction id %v, want %s", r.Topic, tr["id"], xid)
		}
		orders = append(orders, fmt.Sprintf("%s:%v/%v", strings.TrimPrefix(r.Topic, name+".public."), tr["total_order"], tr["data_collection_order"]))
	}
	sort.Strings(orders)
	if w := "a:1/1 a:3/2 b:2/1 b:4/2 b:5/3"; strings.Join(orders, " ") != w {
		t.Fatalf("orders %s, want %s", strings.Join(orders, " "), w)
	}
}
