package encode

import (
	"context"
	"strings"
	"testing"

	"github.com/cdcd-dev/cdcd/change"
)

// TestSanitizedNameSharesTopic reproduces the collision CheckTopics exists for: the table
// "q r" gets the sanitized topic part q_r_<hash>, which a table can be named literally.
func TestSanitizedNameSharesTopic(t *testing.T) {
	a := DefaultTopic("shop", "public", "q r")
	b := DefaultTopic("shop", "public", strings.TrimPrefix(a, "shop.public."))
	if a != b {
		t.Fatalf("%s and %s: the reproduction no longer collides", a, b)
	}
	err := CheckTopics([]TopicUse{
		{Topic: a, What: `table public."q r" of pipeline shop`, Fix: `set topics.overrides["public.q r"] in pipeline shop`},
		{Topic: b, What: "table public." + strings.TrimPrefix(a, "shop.public.") + " of pipeline shop", Fix: "set topics.overrides in pipeline shop"},
		{Topic: "_cdcd_offsets", What: "the offsets topic", Fix: "set kafka.offsets_topic"},
	})
	if err == nil {
		t.Fatal("CheckTopics accepted two tables on one topic")
	}
	for _, want := range []string{a, `table public."q r" of pipeline shop`, "of pipeline shop", "tombstone", "fix: set topics.overrides"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message lacks %q: %v", want, err)
		}
	}
}

func TestCheckTopics(t *testing.T) {
	use := func(topic, what string) TopicUse { return TopicUse{Topic: topic, What: what, Fix: "fix " + what} }
	tests := []struct {
		name string
		uses []TopicUse
		want []string // substrings; none: no error
	}{
		{"distinct", []TopicUse{use("shop.public.a", "a"), use("shop.public.b", "b"), use("_cdcd_offsets", "offsets")}, nil},
		{"override onto another table's topic", []TopicUse{use("shop.public.a", "table public.a"), use("shop.public.a", "table public.b")},
			[]string{"topic shop.public.a is written by table public.a and table public.b", "fix table public.a, or fix table public.b"}},
		{"across pipelines", []TopicUse{use("x.public.t", "table public.t of pipeline one"), use("x.public.t", "table public.t of pipeline two")},
			[]string{"pipeline one and table public.t of pipeline two"}},
		{"a table on the dead-letter topic", []TopicUse{use("shop.dlq", "the dead-letter topic of pipeline shop"), use("shop.dlq", "table public.t")},
			[]string{"topic shop.dlq"}},
		{"dot and underscore", []TopicUse{use("shop.public.a_b", "table public.a_b"), use("shop_public.a.b", "table x")},
			[]string{"differ only in '.' and '_'", "shop.public.a_b (table public.a_b)"}},
		{"two collisions", []TopicUse{use("t1", "a"), use("t1", "b"), use("t2", "c"), use("t2", "d")},
			[]string{"2 topic collisions", "topic t1", "topic t2"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckTopics(tc.uses)
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("message lacks %q: %v", w, err)
				}
			}
		})
	}
}

// TestEncoderRefusesSecondTableOnTopic: at run time too, a second table never writes a
// topic another table already writes.
func TestEncoderRefusesSecondTableOnTopic(t *testing.T) {
	a := &change.Table{Schema: "public", Name: "q r", Columns: []change.Column{{Name: "id", Kind: change.KindInt64}}, KeyColumns: []int{0}}
	b := &change.Table{Schema: "public", Name: strings.TrimPrefix(DefaultTopic("", "public", "q r"), "public."),
		Columns: []change.Column{{Name: "id", Kind: change.KindInt64}}, KeyColumns: []int{0}}
	enc := newTestEncoder(t, newFakeRegistry())
	var rec Record
	if err := enc.Encode(context.Background(), &change.Event{Op: change.OpCreate, Table: a, After: []change.Value{{Int: 1}}}, &rec); err != nil {
		t.Fatal(err)
	}
	err := enc.Encode(context.Background(), &change.Event{Op: change.OpDelete, Table: b, Before: []change.Value{{Int: 1}}}, &rec)
	if ClassOf(err) != ClassSchemaRejected || !strings.Contains(err.Error(), "public.q r") {
		t.Fatalf("err = %v", err)
	}
	// Another version of the first table keeps its topic.
	a2 := *a
	a2.Version = 2
	if err := enc.Encode(context.Background(), &change.Event{Op: change.OpCreate, Table: &a2, After: []change.Value{{Int: 2}}}, &rec); err != nil {
		t.Fatal(err)
	}
}

// TestOverrideOfQuotedTable: an override written with the table's quoted name applies.
func TestOverrideOfQuotedTable(t *testing.T) {
	enc, err := New(Config{Pipeline: "p", Connector: "postgresql", TopicPrefix: "shop",
		TopicOverrides: map[string]string{`public."Q r"`: "shop.qr"}}, newFakeRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if got := enc.Topic(&change.Table{Schema: "public", Name: "Q r"}); got != "shop.qr" {
		t.Errorf("topic %s, want the override shop.qr", got)
	}
}

// TestTableTopic: a table's topic is its override, found by the table's name as configured
// (quoted or not, through OverrideKeys), else the default topic under the prefix.
func TestTableTopic(t *testing.T) {
	overrides := OverrideKeys(map[string]string{`public."Q r"`: "shop.qr", "public.orders": "orders-v2"})
	for name, want := range map[string]string{"Q r": "shop.qr", "orders": "orders-v2", "items": "shop.public.items"} {
		if got := TableTopic("shop", overrides, "public", name); got != want {
			t.Errorf("TableTopic(public.%s) with overrides %v = %s, want %s", name, overrides, got, want)
		}
	}
}
