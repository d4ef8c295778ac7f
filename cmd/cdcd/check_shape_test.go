package main

import (
	"testing"

	"github.com/cdcd-dev/cdcd/config"
)

func TestDescribeShape(t *testing.T) {
	got := describeShape(config.TableShape{Columns: config.ColumnSelection{Exclude: []string{"email", "ssn"}},
		Mask: map[string]string{"name": "truncate(1)", "card": "hash"}, Key: []string{"code"}, Filter: "region = 'eu'"})
	want := "columns: all but email, ssn; masked: card=hash, name=truncate(1); key: code; rows: region = 'eu'"
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

func TestDescribeOutbox(t *testing.T) {
	p := &config.Pipeline{Outbox: map[string]config.TableOutbox{"public.outbox": {Headers: []string{"type"}}}}
	got := describeOutbox(p.ShapeRules(), "public.outbox")
	want := "inserts are events to outbox.event.${routedByValue} (${routedByValue} = column aggregatetype); key: aggregateid; value: payload; headers: id=id, type; updates ignored with a warning"
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}
