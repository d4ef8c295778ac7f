package main

import (
	"context"
	"strings"
	"testing"

	"github.com/cdcd-dev/cdcd/config"
	"github.com/cdcd-dev/cdcd/verify"
)

// Bad verify invocations fail before connecting, naming the problem and the fix.
func TestVerifyUsageErrors(t *testing.T) {
	cfg := "../../config.example.yaml"
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"verify", "--config", cfg}, 2, "--pipeline NAME is required"},
		{[]string{"verify", "--config", cfg, "--pipeline", "shop", "--output", "yaml"}, 2, `--output "yaml": use text or json`},
		{[]string{"verify", "--config", cfg, "--pipeline", "shop", "--chunk-rows", "0"}, 2, "--chunk-rows must be positive"},
		{[]string{"verify", "--config", cfg, "--pipeline", "nope"}, 1, `no pipeline named "nope"`},
		{[]string{"verify", "--config", cfg, "--pipeline", "shop", "--table", "public.nope"}, 1, "does not capture public.nope"},
		{[]string{"verify", "--config", cfg, "--pipeline", "shop", "--table", "nope"}, 2, "is not schema-qualified"},
	} {
		r := cdcd(t, nil, c.args...)
		if r.code != c.code || !strings.Contains(r.stderr, c.want) {
			t.Errorf("cdcd %s: exit %d, stderr %q; want exit %d and %q", strings.Join(c.args, " "), r.code, r.stderr, c.code, c.want)
		}
	}
}

// --repair says how many differing keys it cannot name and how to repair them anyway.
func TestVerifyRepairNamesUnrepairableKeys(t *testing.T) {
	rep := &verify.Report{Tables: []verify.TableReport{{Table: "public.t", Different: 3, Unrepairable: 3, UnrepairableReason: "column k: no SQL text"}}}
	var out strings.Builder
	if err := verifyRepair(context.Background(), &config.Pipeline{Name: "shop"}, rep, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"public.t: 3 missing or different key(s) cannot be named", "column k: no SQL text", "cdcd snapshot --config FILE --pipeline shop --table public.t"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
