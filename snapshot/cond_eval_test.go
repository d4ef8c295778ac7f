package snapshot

import (
	"testing"

	"github.com/cdcd-dev/cdcd/change"
)

func TestCondEval(t *testing.T) {
	row := map[string]struct {
		k change.Kind
		v change.Value
	}{
		"id":     {change.KindInt32, change.Value{Int: 7}},
		"region": {change.KindString, change.Value{Str: "eu-west"}},
		"amount": {change.KindDecimal, change.Value{Str: "12.50"}},
		"ok":     {change.KindBool, change.Value{Int: 1}},
		"day":    {change.KindDate, change.Value{Int: 19723}}, // 2024-01-01
		"gone":   {change.KindString, change.NullValue},
		"ratio":  {change.KindFloat64, change.Value{Float: 0.25}},
	}
	get := func(n string) (change.Kind, change.Value, bool) {
		r, ok := row[n]
		return r.k, r.v, ok
	}
	for expr, want := range map[string]bool{
		"id = 7":                           true,
		"id > 7.5":                         false,
		"id BETWEEN 1 AND 7":               true,
		"id NOT IN (1, 2, 7)":              false,
		"region LIKE 'eu%'":                true,
		"region LIKE 'eu'":                 false,
		"region = 'eu-west' AND ok = TRUE": true,
		"amount >= 12.5":                   true,
		"amount < 1e1":                     false,
		"day >= '2024-01-01'":              true,
		"day > '2024-01-01'":               false,
		"gone = 'x'":                       false,
		"NOT (gone = 'x')":                 false, // unknown stays unknown
		"gone IS NULL":                     true,
		"gone = 'x' OR id = 7":             true,
		"ratio < 0.5":                      true,
	} {
		c, err := ParseCondition(expr)
		if err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
		got, err := c.Eval(get)
		if err != nil || got != want {
			t.Errorf("%s: got %v, %v; want %v", expr, got, err, want)
		}
	}
	for _, expr := range []string{"id = 'x'", "region > 3", "nope = 1", "day > 'soon'"} {
		c, _ := ParseCondition(expr)
		if _, err := c.Eval(get); err == nil {
			t.Errorf("%s: no error", expr)
		}
	}
}
