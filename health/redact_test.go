package health

import (
	"net/http/httptest"
	"strings"
	"testing"
)

// Reasons are error texts, and errors can carry a connection string: /readyz must not serve
// its password, whether masked by form or as a known secret.
func TestReasonsAreRedacted(t *testing.T) {
	r := NewRegistry("shop")
	r.Set("shop", false, "retrying", `unable to GET "http://reg:REGSECRET1@127.0.0.1:1/config": refused`)
	r.SetCondition("shop", "stalled", "host=db password=PGSECRET2 dbname=shop")
	states, _ := r.Snapshot()
	for _, s := range []string{states["shop"].Reason, states["shop"].Conditions["stalled"]} {
		if strings.Contains(s, "SECRET") || !strings.Contains(s, "***") {
			t.Errorf("reason not redacted: %q", s)
		}
	}
	r.SetRedactor(func(s string) string { return strings.ReplaceAll(s, "known-secret", "***") })
	r.Set("shop", false, "failed", "auth failed with known-secret")
	rec := httptest.NewRecorder()
	r.ReadyHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	if body := rec.Body.String(); strings.Contains(body, "known-secret") {
		t.Errorf("/readyz serves the secret: %s", body)
	}
}
