package shape

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/cdcd-dev/cdcd/change"
)

func TestMasks(t *testing.T) {
	tb := &change.Table{Schema: "public", Name: "p", KeyColumns: []int{0}, Columns: []change.Column{
		{Name: "id", Kind: change.KindInt32, Key: true}, {Name: "card", Kind: change.KindString, SourceType: "text"},
		{Name: "age", Kind: change.KindInt32}, {Name: "name", Kind: change.KindString}, {Name: "ssn", Kind: change.KindString}}}
	key := []byte("0123456789abcdef")
	rules := Rules{"public.p": {Mask: map[string]string{"card": "hash", "age": "redact", "name": "truncate(2)", "ssn": "hash"}, MaskKey: key}}
	after := []change.Value{{Int: 1}, {Str: "4111"}, {Int: 42}, {Str: "Zoë Smith"}, change.NullValue}
	got, _ := run(t, rules, []change.Item{{Event: change.Event{Op: change.OpCreate, Table: tb, After: after}}})
	ev := got[0][0].Event
	h := hmac.New(sha256.New, key)
	h.Write([]byte("4111"))
	if ev.After[1].Str != hex.EncodeToString(h.Sum(nil)) || ev.After[2].Int != 0 || ev.After[3].Str != "Zo" || ev.After[4].State != change.Null {
		t.Fatalf("masked %+v", ev.After)
	}
	if c := ev.Table.Columns[1]; c.Kind != change.KindString || !strings.Contains(c.SourceType, "hmac-sha256") {
		t.Errorf("the hashed column does not say so: %+v", c)
	}
	for _, bad := range []Rules{
		{"public.p": {Mask: map[string]string{"id": "hash"}, MaskKey: key}},       // a key column
		{"public.p": {Mask: map[string]string{"age": "truncate(2)"}}},             // not text
		{"public.p": {Mask: map[string]string{"card": "hash"}}},                   // no key
		{"public.p": {Mask: map[string]string{"card": "scramble"}, MaskKey: key}}, // unknown
	} {
		_, err := run(t, bad, []change.Item{{Event: change.Event{Op: change.OpCreate, Table: tb, After: after}}})
		var f interface{ Fatal() bool }
		if !errors.As(err, &f) {
			t.Errorf("%v: want a fatal error, got %v", bad, err)
		}
	}
}

func TestHashedKeyOnlyWhenAsked(t *testing.T) {
	tb := &change.Table{Schema: "public", Name: "p", KeyColumns: []int{0}, Columns: []change.Column{
		{Name: "email", Kind: change.KindString, Key: true}, {Name: "v", Kind: change.KindInt32}}}
	key := []byte("0123456789abcdef")
	item := []change.Item{{Event: change.Event{Op: change.OpCreate, Table: tb, After: []change.Value{{Str: "a@x"}, {Int: 1}}}}}
	if _, err := run(t, Rules{"public.p": {Mask: map[string]string{"email": "hash"}, MaskKey: key}}, item); err == nil || err.Error() == "source done" {
		t.Fatalf("a hashed key without hash_key: %v", err)
	}
	item[0].Event.After = []change.Value{{Str: "a@x"}, {Int: 1}}
	got, err := run(t, Rules{"public.p": {Mask: map[string]string{"email": "hash"}, MaskKey: key, HashKey: true}}, item)
	if err == nil || err.Error() != "source done" {
		t.Fatalf("hash_key: %v", err)
	}
	if ev := got[0][0].Event; len(ev.Table.KeyColumns) != 1 || len(ev.After[0].Str) != 64 {
		t.Fatalf("hashed key %+v", ev)
	}
	item[0].Event.After = []change.Value{{Str: "a@x"}, {Int: 1}}
	if _, err := run(t, Rules{"public.p": {Mask: map[string]string{"email": "truncate(1)"}, HashKey: true}}, item); err == nil || err.Error() == "source done" {
		t.Fatalf("a truncated key was accepted: %v", err)
	}
}
