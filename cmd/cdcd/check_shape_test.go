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
