package health

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

// In fleet mode /readyz lists the instance's pipelines and its membership; an instance with
// no pipeline is ready while it is in the group, and unready with the reason when it is not.
func TestReadyFleet(t *testing.T) {
	r := NewRegistry()
	get := func() (int, map[string]any) {
		rec := httptest.NewRecorder()
		r.ReadyHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
		var body map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatal(err)
		}
		return rec.Code, body
	}
	r.SetFleet(Fleet{Group: "g", Instance: "i1"})
	if code, _ := get(); code != http.StatusServiceUnavailable {
		t.Fatalf("not joined yet: got %d, want 503", code)
	}
	r.SetFleet(Fleet{Group: "g", Instance: "i1", Joined: true})
	if code, body := get(); code != http.StatusOK || len(body["pipelines"].([]any)) != 0 {
		t.Fatalf("joined with no pipeline: got %d %v, want 200 and none", code, body)
	}
	r.Add("shop")
	r.SetFleet(Fleet{Group: "g", Instance: "i1", Joined: true, Pipelines: []string{"shop"}})
	code, body := get()
	if code != http.StatusServiceUnavailable {
		t.Fatalf("shop starting: got %d", code)
	}
	if f := body["fleet"].(map[string]any); f["instance"] != "i1" || len(f["pipelines"].([]any)) != 1 {
		t.Fatalf("fleet view: %v", f)
	}
	r.Set("shop", true, "streaming", "")
	if code, _ := get(); code != http.StatusOK {
		t.Fatalf("shop streaming: got %d", code)
	}
	r.Remove("shop")
	r.SetFleet(Fleet{Group: "g", Instance: "i1", Joined: true, Problem: "another instance runs different pipelines"})
	code, body = get()
	if code != http.StatusServiceUnavailable || len(body["pipelines"].([]any)) != 0 || body["fleet"].(map[string]any)["problem"] == nil {
		t.Fatalf("refused member: got %d %v", code, body)
	}
}
