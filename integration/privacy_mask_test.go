package integration

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestPrivacyShapeMasks: shape.<table>.mask rewrites columns on every path: card is hashed
// (HMAC-SHA-256 with mask_key, so the test computes the same hash), ssn redacted, name
// truncated to 2 characters. No canary of the original values is in any topic (snapshot,
// stream, dead letter), and the hash is where expected.
func TestPrivacyShapeMasks(t *testing.T) {
	const maskKey = "test-mask-key-0123456789abcdef"
	name := uniqueName("privmask")
	s, ctx, dsn, db := setup(t, 3*time.Minute, "cdcd_priv_mask", `CREATE TABLE cards (id int PRIMARY KEY, card text, ssn text, name text, amount numeric(10,2));
		INSERT INTO cards SELECT g, 'CANARYCARD' || g, 'CANARYSSN' || g, 'CANARYNAME' || g, g FROM generate_series(1, 20) g;`)
	extra := "    snapshot: initial\n    on_error: dlq\n    mask_key: " + maskKey + "\n" +
		"    shape:\n      public.cards:\n        mask: {card: hash, ssn: redact, name: truncate(2)}\n"
	d := startQuietDaemon(t, pipelineYAML(s, name, dsn, []string{"public.cards"}, extra))
	waitFor(t, d, "the initial snapshot", 2*time.Minute, func() bool { return strings.Contains(d.Logs(), `msg="snapshot finished"`) })
	for _, q := range []string{
		`INSERT INTO cards VALUES (100, 'CANARYCARD100', 'CANARYSSN100', 'CANARYNAME100', 1)`,
		`INSERT INTO cards VALUES (101, 'CANARYCARD101', 'CANARYSSN101', 'CANARYNAME101', 'NaN')`, // a dead letter
	} {
		if _, err := db.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if dl := newConsumer(t, s, name+".dlq").read(t, 1, time.Minute, 0); len(dl) != 1 {
		t.Fatalf("want the NaN row's dead letter, got %d", len(dl))
	}
	recs := readSnapTopicRaw(t, s, name+".public.cards", 21, time.Minute)
	c := newConsumer(t, s)
	hash := func(v string) string {
		h := hmac.New(sha256.New, []byte(maskKey))
		h.Write([]byte(v))
		return hex.EncodeToString(h.Sum(nil))
	}
	checked := 0
	for _, r := range recs {
		if r.Value == nil {
			continue
		}
		after := unwrapAll(asMap(c.decode(t, r.Value)["after"]))
		id := toInt64(t, after["id"])
		if got, want := fmt.Sprint(after["card"]), hash(fmt.Sprintf("CANARYCARD%d", id)); got != want {
			t.Errorf("row %d: card %s, want its HMAC %s", id, got, want)
		}
		if after["ssn"] != "***" || after["name"] != "CA" {
			t.Errorf("row %d: ssn %v (want ***), name %v (want CA)", id, after["ssn"], after["name"])
		}
		checked++
	}
	if checked != 21 {
		t.Errorf("checked %d records, want 21 (20 read, 1 inserted)", checked)
	}
	hits, n := grepTopics(t, s, name+".", "CANARYCARD", "CANARYSSN", "CANARYNAME")
	if len(hits) > 0 {
		t.Fatalf("canaries of masked values in the topics: %v", hits)
	}
	if dl := newConsumer(t, s, name+".dlq").read(t, 1, 10*time.Second, 0); len(dl) != 1 || !strings.Contains(string(dl[0].Value), hash("CANARYCARD101")) {
		t.Errorf("the dead letter does not hold the masked card")
	}
	t.Logf("%d records in the pipeline's topics, no canary", n)
}
