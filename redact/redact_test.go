package redact

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"testing"
)

func TestStringRedactsByForm(t *testing.T) {
	cases := []struct{ in, want string }{
		{`Get "http://reguser:REGSECRET1@127.0.0.1:1/apis/ccompat/v7/config": refused`,
			`Get "http://reguser:***@127.0.0.1:1/apis/ccompat/v7/config": refused`},
		{`unable to GET "https://u:p%40ss:w@reg:8081/x"`, `unable to GET "https://u:***@reg:8081/x"`},
		{"postgres://cdcd:s3cr3t@db:5432/shop?sslmode=require", "postgres://cdcd:***@db:5432/shop?sslmode=require"},
		{"postgresql://:onlypw@db/shop", "postgresql://:***@db/shop"},
		{"postgres://cdcd@db/shop and http://host/x?a=b", "postgres://cdcd@db/shop and http://host/x?a=b"},
		{"host=db user=cdcd password=s3cr3t dbname=shop", "host=db user=cdcd password=*** dbname=shop"},
		{"host=db password = 's3 cr\\'3t' dbname=shop", "host=db password = *** dbname=shop"},
		{`dsn "host=db PASSWORD=\"x y\" sslmode=verify-full"`, `dsn "host=db PASSWORD=*** sslmode=verify-full"`},
		{"postgres://db/shop?sslpassword=k3y&password=s3cr3t", "postgres://db/shop?sslpassword=***&password=***"},
		{"root:s3cr3t@tcp(127.0.0.1:33306)/inventory", "root:***@tcp(127.0.0.1:33306)/inventory"},
		{`the connection string "cdcd:p@ss:w@rd@tcp(db:3306)/x"`, `the connection string "cdcd:***@tcp(db:3306)/x"`},
		{"user:pw@unix(/tmp/sock)/", "user:***@unix(/tmp/sock)/"},
		{"root@tcp(127.0.0.1:33306)/inventory", "root@tcp(127.0.0.1:33306)/inventory"},
		{"password authentication failed for user \"cdcd\"", "password authentication failed for user \"cdcd\""},
		{"nothing to see: 10:30 a@b", "nothing to see: 10:30 a@b"},
	}
	for _, c := range cases {
		if got := String(c.in); got != c.want {
			t.Errorf("String(%q)\n got %q\nwant %q", c.in, got, c.want)
		}
	}
}

func TestSecretsMaskKnownValuesInEveryPrintedForm(t *testing.T) {
	const pw = `p@ss "w\rd" <&>/é`
	s := New(pw, "abc", "")
	printed := map[string]string{
		"raw":           "auth failed with " + pw,
		"%q":            fmt.Sprintf("auth failed with %q", pw),
		"query escaped": "x?p=" + url.QueryEscape(pw),
		"path escaped":  "/x/" + url.PathEscape(pw),
		"user info":     url.UserPassword("u", pw).String() + "@h",
		"json":          mustJSON(t, map[string]string{"reason": pw}),
	}
	for name, text := range printed {
		got := s.String(text)
		if strings.Contains(got, "w\\rd") || strings.Contains(got, `w\\rd`) || strings.Contains(got, "w%5Crd") || strings.Contains(got, "w%5Crd") {
			t.Errorf("%s: secret survives: %q", name, got)
		}
		if !strings.Contains(got, Mask) {
			t.Errorf("%s: no mask in %q", name, got)
		}
	}
	// Too short to mask by value: masking every "abc" would wreck the logs.
	if got := s.String("abcdef"); got != "abcdef" {
		t.Errorf("a 3-byte secret was masked by value: %q", got)
	}
	var nilSet *Secrets
	if got := nilSet.String("postgres://u:pw@h/db"); got != "postgres://u:***@h/db" {
		t.Errorf("nil set: %q", got)
	}
}

func TestSecretsLongestFirst(t *testing.T) {
	s := New("secret", "secret-and-more")
	if got := s.String("x secret-and-more y secret z"); got != "x *** y *** z" {
		t.Errorf("got %q", got)
	}
}

func TestWriterRedactsSlogRecords(t *testing.T) {
	const pw = `hunter2 "quoted"`
	s := New(pw)
	for _, format := range []string{"json", "text"} {
		var out bytes.Buffer
		w := s.Writer(&out)
		var h slog.Handler = slog.NewJSONHandler(w, nil)
		if format == "text" {
			h = slog.NewTextHandler(w, nil)
		}
		log := slog.New(h)
		log.Warn("retrying", "cause", errors.New("dial postgres://u:"+pw+"@db/x: refused"), "dsn", "host=db password="+pw, "raw", pw)
		if strings.Contains(out.String(), "hunter2") {
			t.Errorf("%s: secret in log line: %s", format, out.String())
		}
		if !strings.Contains(out.String(), "retrying") {
			t.Errorf("%s: record lost: %s", format, out.String())
		}
	}
}

func TestAddWhilePrinting(t *testing.T) {
	s := New()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 100; i++ {
			s.Add(fmt.Sprintf("secret-%03d", i))
		}
	}()
	for i := 0; i < 100; i++ {
		_ = s.String("secret-050")
	}
	<-done
	if got := s.String("secret-050"); got != Mask {
		t.Errorf("got %q", got)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func FuzzString(f *testing.F) {
	f.Add("postgres://u:pw@h/db password=x root:y@tcp(h:1)/")
	f.Fuzz(func(t *testing.T, s string) {
		r := String(s)
		if String(r) != r {
			t.Fatalf("not idempotent: %q -> %q -> %q", s, r, String(r))
		}
	})
}

// A fix or an example that shows where a password goes must read as written.
func TestStringLeavesReferences(t *testing.T) {
	for _, s := range []string{
		"e.g. postgres://cdcd:${file:/run/secrets/pg_password}@db:5432/shop",
		"e.g. postgres://cdcd:${PG_PASSWORD}@db:5432/shop",
		"e.g. cdcd:${file:/run/secrets/mysql_password}@tcp(db:3306)/inventory",
		"host=db password=${PG_PASSWORD}",
	} {
		if got := String(s); got != s {
			t.Errorf("String(%q) = %q", s, got)
		}
	}
}

// BenchmarkWriterLogLine: the cost redaction adds to one typical log line.
func BenchmarkWriterLogLine(b *testing.B) {
	s := New("registry-password-1", "postgres-password-2", "sasl-password-3")
	w := s.Writer(io.Discard)
	line := []byte(`time=2026-12-01T02:12:24.123Z level=WARN msg=retrying pipeline=shop cause="encoding public.orders: schema registry: unable to GET \"http://cdcd:***@reg:8081/config/shop.public.orders-key\": dial tcp: connection refused" attempt=3 next_attempt_in=1.369s` + "\n")
	b.SetBytes(int64(len(line)))
	for b.Loop() {
		_, _ = w.Write(line)
	}
}
