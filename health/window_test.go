package health

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// A window job is an entry of its own, window:<name>, ready only while running; a failed job
// fails liveness like a failed pipeline, and the message names it as a window job.
func TestWindowJobEntries(t *testing.T) {
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	r := NewRegistry("shop", WindowKey("orders"))
	r.now = func() time.Time { return now }
	r.Set("shop", true, "streaming", "")
	for _, c := range []struct {
		phase, reason string
		ready         bool
	}{{"restoring", "partitions [0 1]", false}, {"running", "", true}, {"waiting", "input topic x has no schema yet", false}} {
		r.SetWindow("orders", c.phase, c.reason)
		states, ready := r.Snapshot()
		s := states["window:orders"]
		if ready != c.ready || s.Ready != c.ready || s.Phase != c.phase || s.Reason != c.reason {
			t.Errorf("%s: ready %v, state %+v", c.phase, ready, s)
		}
	}
	r.SetWindow("orders", "failed", "field after.total is not in the input")
	now = now.Add(time.Hour)
	rec := httptest.NewRecorder()
	r.LiveHandler(time.Minute).ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
	body, _ := io.ReadAll(rec.Body)
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(string(body), "window job orders failed 1h0m0s ago: field after.total") {
		t.Errorf("liveness: %d %s", rec.Code, body)
	}
}
