package health

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
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

// The status page of a fleet instance names its group and instance, and why it is not in the
// group.
func TestStatusPageFleet(t *testing.T) {
	r := NewRegistry()
	r.SetFleet(Fleet{Group: "prod", Instance: "cdcd-1", Problem: "another instance runs different pipelines"})
	rec := httptest.NewRecorder()
	r.StatusHandler(nil).ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	body := rec.Body.String()
	for _, want := range []string{"Fleet group <strong>prod</strong>", "instance <strong>cdcd-1</strong>", "not in the group", "different pipelines"} {
		if !strings.Contains(body, want) {
			t.Errorf("the status page lacks %q", want)
		}
	}
	plain := NewRegistry("shop")
	rec = httptest.NewRecorder()
	plain.StatusHandler(nil).ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if strings.Contains(rec.Body.String(), "Fleet group") {
		t.Error("a status page without fleet mode shows a fleet")
	}
}
