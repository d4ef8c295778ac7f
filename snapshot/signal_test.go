package snapshot

import (
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"
)

type rejections map[string]int

func (r rejections) Chunk(string, string, int)                  {}
func (r rejections) Table(string, string, int64, time.Duration) {}
func (r rejections) SetRunning(string, bool)                    {}
func (r rejections) SignalRejected(pipeline, reason string)     { r[pipeline+"/"+reason]++ }

func TestSignalsMustBeSignedWithThePipelinesKey(t *testing.T) {
	key := []byte("the pipeline's key")
	rej := rejections{}
	e, err := New(Config{Pipeline: "p", Mode: Never, Tables: []string{"public.t"}, SignalKey: key, Metrics: rej}, true, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	same := func(s string) string { return s }
	queued := func() int {
		st, _ := ParseState(e.StateIfDirty())
		if st == nil {
			return 0
		}
		return len(st.Queue)
	}
	forged, _ := json.Marshal(Signal{Pipeline: "p", Table: "public.t", Where: "k < 10", ID: "f1"})
	e.HandleSignal(forged, same)
	_, other, _ := NewSignal([]byte("another key"), "p", "public.t", "k < 10")
	e.HandleSignal(other, same)
	e.HandleSignal([]byte("not json"), same)
	// A signed request whose condition is SQL (made by hand with the key): refused too.
	bad := Signal{Pipeline: "p", Table: "public.t", Where: "k < 10; DROP TABLE t", ID: "b1"}
	bad.MAC = hexMAC(bad, key)
	b, _ := json.Marshal(bad)
	e.HandleSignal(b, same)
	// Another pipeline's request: not ours to judge.
	_, theirs, _ := NewSignal([]byte("their key"), "q", "public.t", "")
	e.HandleSignal(theirs, same)
	if n := queued(); n != 0 {
		t.Fatalf("%d snapshots queued by forged requests", n)
	}
	want := rejections{"p/unsigned": 1, "p/bad_signature": 1, "p/malformed": 1, "p/invalid_condition": 1}
	for k, v := range want {
		if rej[k] != v {
			t.Errorf("rejections %v, want %v", rej, want)
			break
		}
	}
	if len(rej) != len(want) {
		t.Errorf("rejections %v, want %v", rej, want)
	}
	_, good, err := NewSignal(key, "p", "public.t", "k < 10")
	if err != nil {
		t.Fatal(err)
	}
	e.HandleSignal(good, same)
	if n := queued(); n != 1 {
		t.Fatalf("the signed request queued %d snapshots, want 1", n)
	}
	if _, _, err := NewSignal(nil, "p", "public.t", ""); err == nil {
		t.Error("a request without a key was made")
	}
	if _, _, err := NewSignal(key, "p", "public.t", "k < now()"); err == nil {
		t.Error("a request with a condition outside the grammar was made")
	}
}

func hexMAC(s Signal, key []byte) string {
	const digits = "0123456789abcdef"
	m := s.mac(key)
	out := make([]byte, 0, 2*len(m))
	for _, c := range m {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

func TestRejectedRequestsLogBounded(t *testing.T) {
	rej := rejections{}
	var logs countingHandler
	e, err := New(Config{Pipeline: "p", Mode: Never, Tables: []string{"public.t"}, SignalKey: []byte("k"), Metrics: rej, Log: slog.New(&logs)}, true, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	forged, _ := json.Marshal(Signal{Pipeline: "p", Table: "public.t", ID: "f"})
	for i := 0; i < 1000; i++ {
		e.HandleSignal(forged, func(s string) string { return s })
	}
	if rej["p/unsigned"] != 1000 {
		t.Errorf("counted %d, want 1000", rej["p/unsigned"])
	}
	if logs.n != rejectLogBurst {
		t.Errorf("%d log lines for 1000 forged requests in a minute, want %d", logs.n, rejectLogBurst)
	}
}

type countingHandler struct{ n int }

func (h *countingHandler) Enabled(context.Context, slog.Level) bool  { return true }
func (h *countingHandler) Handle(context.Context, slog.Record) error { h.n++; return nil }
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler        { return h }
func (h *countingHandler) WithGroup(string) slog.Handler             { return h }
