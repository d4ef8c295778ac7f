package health

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestReadyHandler(t *testing.T) {
	r := NewRegistry("a", "b")
	get := func() (int, map[string]any) {
		rec := httptest.NewRecorder()
		r.ReadyHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
		var body map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatal(err)
		}
		return rec.Code, body
	}
	if code, body := get(); code != http.StatusServiceUnavailable || body["ready"] != false {
		t.Fatalf("starting pipelines must be unready: %d %v", code, body)
	}
	r.Set("a", true, "streaming", "")
	code, body := get()
	if code != http.StatusServiceUnavailable {
		t.Fatalf("one pipeline still starting: got %d", code)
	}
	ps := body["pipelines"].([]any)
	b := ps[1].(map[string]any)
	if b["name"] != "b" || b["reason"] != "not connected yet" {
		t.Fatalf("reason missing: %v", b)
	}
	r.Set("b", true, "streaming", "")
	if code, _ := get(); code != http.StatusOK {
		t.Fatalf("all ready: got %d", code)
	}
	r.Set("b", false, "retrying", "kafka: connection refused")
	if code, body := get(); code != http.StatusServiceUnavailable || body["pipelines"].([]any)[1].(map[string]any)["reason"] != "kafka: connection refused" {
		t.Fatalf("retrying must be unready with its cause: %v", body)
	}
}

func TestNoPipelinesIsNotReady(t *testing.T) {
	if _, ready := NewRegistry().Snapshot(); ready {
		t.Fatal("a daemon with nothing to run is not ready")
	}
}

func TestConditionMakesUnready(t *testing.T) {
	r := NewRegistry("a")
	r.Set("a", true, "streaming", "")
	r.SetCondition("a", "stalled", "delivering nothing")
	st, ready := r.Snapshot()
	if ready || st["a"].Ready || st["a"].Conditions["stalled"] != "delivering nothing" {
		t.Fatalf("a condition must make the pipeline unready: %+v", st["a"])
	}
	r.Set("a", true, "streaming", "") // state changes keep conditions
	if _, ready := r.Snapshot(); ready {
		t.Fatal("condition lost on Set")
	}
	r.SetCondition("a", "stalled", "")
	if _, ready := r.Snapshot(); !ready {
		t.Fatal("cleared condition still unready")
	}
}

// A streaming pipeline with a snapshot running is "snapshotting", still ready, with the
// per-table progress.
func TestSnapshottingIsReadyWithProgress(t *testing.T) {
	r := NewRegistry("shop")
	r.Set("shop", true, "streaming", "")
	r.SetSnapshot("shop", []SnapshotTable{{Table: "public.orders", Rows: 10, RowsEstimated: 100}})
	st, all := r.Snapshot()
	if !all || st["shop"].Phase != "snapshotting" || len(st["shop"].Snapshot) != 1 || st["shop"].Snapshot[0].Rows != 10 {
		t.Fatalf("got %+v (all ready %v)", st["shop"], all)
	}
	r.Set("shop", true, "streaming", "") // a later Set keeps the progress
	if st, _ := r.Snapshot(); st["shop"].Phase != "snapshotting" {
		t.Fatalf("progress lost on Set: %+v", st["shop"])
	}
	r.SetSnapshot("shop", nil)
	if st, _ := r.Snapshot(); st["shop"].Phase != "streaming" || st["shop"].Snapshot != nil {
		t.Fatalf("after the snapshot: %+v", st["shop"])
	}
}
