package health

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// A failed pipeline used to leave /healthz at 200 forever, so a container platform never
// restarted cdcd. Once a pipeline has been failed for fail_liveness_after, liveness fails and
// says which pipeline and why; 0 keeps liveness at 200.
func TestLivenessFailsAfterAPipelineStayedFailed(t *testing.T) {
	now := time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)
	r := NewRegistry("a", "b")
	r.now = func() time.Time { return now }
	get := func(after time.Duration) (int, string) {
		rec := httptest.NewRecorder()
		r.LiveHandler(after).ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
		return rec.Code, rec.Body.String()
	}
	r.Set("a", true, "streaming", "")
	r.Set("b", false, "retrying", "connection refused")
	if code, _ := get(5 * time.Minute); code != http.StatusOK {
		t.Fatalf("retrying is not dead: %d", code)
	}
	r.Set("b", false, "failed", "the source was acknowledged beyond ...")
	now = now.Add(4 * time.Minute)
	if code, _ := get(5 * time.Minute); code != http.StatusOK {
		t.Fatalf("failed for 4m of 5m: %d", code)
	}
	now = now.Add(time.Minute)
	code, body := get(5 * time.Minute)
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "pipeline b failed 5m0s ago: the source was acknowledged") {
		t.Fatalf("failed for 5m: %d %q", code, body)
	}
	if code, _ := get(0); code != http.StatusOK {
		t.Fatalf("fail_liveness_after 0 must keep liveness: %d", code)
	}
}
