package encode

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/change"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"
)

func newSR(t *testing.T, opts ...srfake.Option) (*srfake.Registry, *SRRegistry) {
	t.Helper()
	fake := srfake.New(opts...)
	t.Cleanup(fake.Close)
	cl, err := sr.NewClient(sr.URLs(fake.URL()))
	if err != nil {
		t.Fatal(err)
	}
	return fake, NewSRRegistry(cl)
}

// subjectLevel reads a subject's own level straight from the fake ("" when it has none).
func subjectLevel(t *testing.T, fake *srfake.Registry, subject string) string {
	t.Helper()
	resp, err := http.Get(fake.URL() + "/config/" + url.PathEscape(subject) + "?defaultToGlobal=false")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return ""
	}
	var body struct {
		Level string `json:"compatibilityLevel"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	return body.Level
}

// TestEnsureCompatibility: cdcd sets the configured level on subjects without a level of
// their own (it used to rely on the global level), joined with the global level so nothing in
// force is lowered, and keeps any level a subject has of its own.
func TestEnsureCompatibility(t *testing.T) {
	tests := []struct {
		name         string
		global       sr.CompatibilityLevel
		subjectLevel sr.CompatibilityLevel // 0: none
		want         string
		wantEff      string
		wantSubject  string // the subject's own level afterwards
		wantSet      bool
		wantOwn      bool
	}{
		{"global NONE: set the subject", sr.CompatNone, 0, "BACKWARD", "BACKWARD", "BACKWARD", true, false},
		{"global already BACKWARD: set it anyway", sr.CompatBackward, 0, "BACKWARD", "BACKWARD", "BACKWARD", true, false},
		{"global stricter: never lower", sr.CompatFullTransitive, 0, "BACKWARD", "FULL_TRANSITIVE", "FULL_TRANSITIVE", true, false},
		{"global FORWARD: join to FULL", sr.CompatForward, 0, "BACKWARD", "FULL", "FULL", true, false},
		{"global BACKWARD, want transitive", sr.CompatBackward, 0, "BACKWARD_TRANSITIVE", "BACKWARD_TRANSITIVE", "BACKWARD_TRANSITIVE", true, false},
		{"subject's own NONE is kept", sr.CompatBackward, sr.CompatNone, "BACKWARD", "NONE", "NONE", false, true},
		{"subject's own FULL is kept", sr.CompatNone, sr.CompatFull, "BACKWARD", "FULL", "FULL", false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fake, reg := newSR(t, srfake.WithGlobalCompat(tc.global))
			const subject = "shop.public.orders-value"
			if tc.subjectLevel != 0 {
				if err := fake.SetCompat(subject, tc.subjectLevel); err != nil {
					t.Fatal(err)
				}
			}
			got, err := reg.EnsureCompatibility(context.Background(), subject, tc.want)
			if err != nil {
				t.Fatal(err)
			}
			if got.Level != tc.wantEff || got.Set != tc.wantSet || got.Own != tc.wantOwn {
				t.Errorf("got %+v, want level %s set %v own %v", got, tc.wantEff, tc.wantSet, tc.wantOwn)
			}
			if got := subjectLevel(t, fake, subject); got != tc.wantSubject {
				t.Errorf("subject level %q, want %q", got, tc.wantSubject)
			}
		})
	}
}

// apicurioConfig makes srfake answer subject configs as Apicurio 3's ccompat API does: a
// subject without a rule of its own reports NONE (with defaultToGlobal=false, and without
// it), and a PUT of NONE deletes the subject's rule, so the global level applies again.
func apicurioConfig(fake *srfake.Registry, global string) srfake.Interceptor {
	var mu sync.Mutex
	rules := map[string]string{}
	return func(w http.ResponseWriter, r *http.Request) bool {
		subject, ok := strings.CutPrefix(r.URL.Path, "/config/")
		if !ok {
			return false
		}
		mu.Lock()
		defer mu.Unlock()
		level := ""
		switch r.Method {
		case http.MethodPut:
			var body struct {
				Level string `json:"compatibility"`
			}
			_ = json.NewDecoder(r.Body).Decode(&body)
			if body.Level == "NONE" {
				delete(rules, subject)
			} else {
				rules[subject] = body.Level
			}
			level = body.Level
		case http.MethodGet:
			var own bool
			level, own = rules[subject]
			if !own {
				level = "NONE"
				if r.URL.Query().Get("defaultToGlobal") == "true" {
					level = global
				}
			}
		default:
			return false
		}
		w.Header().Set("Content-Type", "application/vnd.schemaregistry.v1+json")
		_ = json.NewEncoder(w).Encode(map[string]string{"compatibilityLevel": level})
		return true
	}
}

// TestEnsureCompatibilityOnApicurio: Apicurio's NONE for "no rule of its own" is not read as
// the subject's own level (cdcd used to keep it, relying on the global level, and warned
// about it on every start); the configured level is set.
func TestEnsureCompatibilityOnApicurio(t *testing.T) {
	fake, reg := newSR(t)
	fake.Intercept(apicurioConfig(fake, "BACKWARD"))
	got, err := reg.EnsureCompatibility(context.Background(), "a-value", "FULL")
	if err != nil {
		t.Fatal(err)
	}
	if got.Level != "FULL" || !got.Set || got.Own {
		t.Errorf("got %+v, want FULL set", got)
	}
	// An explicit level (here the one just set) is kept from then on.
	got, err = reg.EnsureCompatibility(context.Background(), "a-value", "BACKWARD")
	if err != nil {
		t.Fatal(err)
	}
	if got.Level != "FULL" || got.Set || !got.Own {
		t.Errorf("second start: got %+v, want FULL kept as the subject's own", got)
	}
}

func TestSRRegistryRegister(t *testing.T) {
	fake, reg := newSR(t)
	enc := newTestEncoder(t, reg)
	tbl := ordersTable()
	var rec Record
	if err := enc.Encode(context.Background(), &change.Event{Op: change.OpCreate, Table: tbl, After: ordersRow(5)}, &rec); err != nil {
		t.Fatal(err)
	}
	for _, subject := range []string{"shop.public.orders-key", "shop.public.orders-value"} {
		if !fake.SubjectExists(subject) {
			t.Errorf("subject %s not registered", subject)
		}
	}
	// Decode with the schema the registry holds for the id in the record.
	cl, _ := sr.NewClient(sr.URLs(fake.URL()))
	var serde sr.ConfluentHeader
	id, payload, err := serde.DecodeID(rec.Value)
	if err != nil {
		t.Fatal(err)
	}
	s, err := cl.SchemaByID(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	v := decodeWith(t, parseSchema(t, s.Schema), payload)
	if v["after"].(map[string]any)["id"] != int64(5) {
		t.Errorf("decoded %v", v)
	}
	// Registering the same schema again returns the same id.
	_, value, _ := enc.Schemas(tbl)
	again, err := reg.Register(context.Background(), "shop.public.orders-value", value)
	if err != nil || again != id {
		t.Errorf("re-register: id %d, %v; want %d", again, err, id)
	}
}

func respond(status, code int, msg string) srfake.Interceptor {
	return func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/versions") {
			return false
		}
		w.Header().Set("Content-Type", "application/vnd.schemaregistry.v1+json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]any{"error_code": code, "message": msg})
		return true
	}
}

func TestSRRegistryRefusalIsClassified(t *testing.T) {
	for _, tc := range []struct {
		status, code int
	}{{409, 409}, {422, 42201}} {
		fake, reg := newSR(t)
		msg := "Schema being registered is incompatible with an earlier schema for subject \"shop.public.orders-value\""
		fake.Intercept(respond(tc.status, tc.code, msg))
		enc := newTestEncoder(t, reg)
		var rec Record
		err := enc.Encode(context.Background(), &change.Event{Op: change.OpCreate, Table: ordersTable(), After: ordersRow(1)}, &rec)
		var ce *Error
		if !errors.As(err, &ce) {
			t.Fatalf("%d: err = %v, want *Error", tc.status, err)
		}
		if ce.Class != ClassSchemaRejected || ce.Subject != "shop.public.orders-key" || ce.Table != "public.orders" {
			t.Errorf("%d: %+v", tc.status, ce)
		}
		if !strings.Contains(err.Error(), msg) || !strings.Contains(err.Error(), "public.orders subject shop.public.orders-key:") {
			t.Errorf("%d: message %q", tc.status, err)
		}
		if Retriable(err) {
			t.Errorf("%d: a refusal must not be retriable", tc.status)
		}
	}
}

func TestSRRegistryTransientErrorsAreRetriable(t *testing.T) {
	fake, reg := newSR(t)
	fake.Intercept(respond(503, 50003, "Error forwarding request to primary"))
	enc := newTestEncoder(t, reg)
	var rec Record
	ev := &change.Event{Op: change.OpCreate, Table: ordersTable(), After: ordersRow(1)}
	err := enc.Encode(context.Background(), ev, &rec)
	if err == nil || ClassOf(err) != "" || !Retriable(err) {
		t.Fatalf("err = %v: want a retriable, unclassified error", err)
	}
	// Not cached: once the registry recovers, the next event goes through.
	fake.ClearInterceptors()
	if err := enc.Encode(context.Background(), ev, &rec); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
}

func TestSRRegistryUnreachableIsRetriable(t *testing.T) {
	fake, reg := newSR(t)
	fake.Close()
	_, err := reg.Register(context.Background(), "s-value", `"string"`)
	if err == nil || !Retriable(err) {
		t.Fatalf("err = %v, want retriable", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Nanosecond)
	defer cancel()
	<-ctx.Done()
	_, err = reg.Register(ctx, "s-value", `"string"`)
	if err == nil || !Retriable(err) {
		t.Fatalf("timeout: err = %v, want retriable", err)
	}
	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	if _, err = reg.Register(ctx, "s-value", `"string"`); Retriable(err) {
		t.Fatalf("cancelled: err = %v, want not retriable", err)
	}
}

// TestRetriable: only failures of a registry request are retriable, and only transient ones.
// A full spill disk (ENOSPC from a file) or a Kafka connection error are not the registry's
// and must not read as registry errors: callers that count retries by cause rely on it.
func TestRetriable(t *testing.T) {
	reg := func(err error) error { return &RegistryError{Op: "registering schema", Subject: "s-value", Err: err} }
	spill := &fs.PathError{Op: "write", Path: "/var/lib/cdcd/spill/tx-1", Err: syscall.ENOSPC}
	netErr := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"registry 500", reg(&sr.ResponseError{StatusCode: 500}), true},
		{"registry 429", reg(&sr.ResponseError{StatusCode: 429}), true},
		{"registry 401", reg(&sr.ResponseError{StatusCode: 401}), false},
		{"registry 409", reg(&sr.ResponseError{StatusCode: 409}), false},
		{"registry timeout", reg(context.DeadlineExceeded), true},
		{"registry cancelled", reg(context.Canceled), false},
		{"registry refused connection", reg(netErr), true},
		{"registry wrapped further", fmt.Errorf("encoding public.t: %w", reg(io.ErrUnexpectedEOF)), true},
		{"poison record", &Error{Class: ClassValueNotRepresentable}, false},
		{"bare response error", &sr.ResponseError{StatusCode: 500}, false},
		{"bare deadline", context.DeadlineExceeded, false},
		{"spill disk full", fmt.Errorf("spilling transaction: %w", spill), false},
		{"bare errno", syscall.ENOSPC, false},
		{"kafka connection", netErr, false},
		{"something else", errors.New("something else"), false},
	}
	for _, tc := range tests {
		if got := Retriable(tc.err); got != tc.want {
			t.Errorf("%s: Retriable(%v) = %v", tc.name, tc.err, got)
		}
	}
}

// TestRegistryBoundaryWrapsErrors: whatever a Registry returns besides a refusal reaches the
// caller as a *RegistryError, so Retriable can tell it from other failures.
func TestRegistryBoundaryWrapsErrors(t *testing.T) {
	reg := newFakeRegistry()
	reg.reject = &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	enc := newTestEncoder(t, reg)
	var rec Record
	err := enc.Encode(context.Background(), &change.Event{Op: change.OpCreate, Table: ordersTable(), After: ordersRow(1)}, &rec)
	var re *RegistryError
	if !errors.As(err, &re) || !Retriable(err) {
		t.Fatalf("err = %v (%T), want a retriable *RegistryError", err, err)
	}
	if re.Subject != "shop.public.orders-key" {
		t.Errorf("subject %q", re.Subject)
	}
}

func TestLevelLattice(t *testing.T) {
	if !implies(sr.CompatFullTransitive, sr.CompatBackward) || implies(sr.CompatBackward, sr.CompatFull) ||
		!implies(sr.CompatBackward, sr.CompatNone) || implies(sr.CompatForward, sr.CompatBackward) {
		t.Error("implies is wrong")
	}
	tests := []struct{ a, b, want sr.CompatibilityLevel }{
		{sr.CompatNone, sr.CompatBackward, sr.CompatBackward},
		{sr.CompatForward, sr.CompatBackward, sr.CompatFull},
		{sr.CompatForwardTransitive, sr.CompatBackward, sr.CompatFullTransitive},
		{sr.CompatBackwardTransitive, sr.CompatBackward, sr.CompatBackwardTransitive},
	}
	for _, tc := range tests {
		if got := join(tc.a, tc.b); got != tc.want {
			t.Errorf("join(%s, %s) = %s, want %s", tc.a, tc.b, got, tc.want)
		}
	}
}

// TestLevelSetAfterFirstSchema: a registry that refuses a subject-level config before the
// subject exists (Apicurio answers 404) gets the level right after the first schema.
func TestLevelSetAfterFirstSchema(t *testing.T) {
	fake, reg := newSR(t, srfake.WithGlobalCompat(sr.CompatNone))
	fake.Intercept(func(w http.ResponseWriter, r *http.Request) bool {
		subject, ok := strings.CutPrefix(r.URL.Path, "/config/")
		if r.Method != http.MethodPut || !ok || fake.SubjectExists(subject) {
			return false
		}
		w.Header().Set("Content-Type", "application/vnd.schemaregistry.v1+json")
		w.WriteHeader(http.StatusNotFound)
		_ = json.NewEncoder(w).Encode(map[string]any{"error_code": 40401, "message": "No artifact with ID '" + subject + "' in group 'null' was found."})
		return true
	})
	enc := newTestEncoder(t, reg)
	var rec Record
	if err := enc.Encode(context.Background(), &change.Event{Op: change.OpCreate, Table: ordersTable(), After: ordersRow(1)}, &rec); err != nil {
		t.Fatal(err)
	}
	for _, subject := range []string{"shop.public.orders-key", "shop.public.orders-value"} {
		if got := subjectLevel(t, fake, subject); got != "BACKWARD" {
			t.Errorf("%s: level %q, want BACKWARD", subject, got)
		}
	}
}

// TestAdviceNeverShowsSecrets: commands in messages use the registry's URL without user info,
// and name the basic-auth user with the password left out.
func TestAdviceNeverShowsSecrets(t *testing.T) {
	cl, err := sr.NewClient(sr.URLs("http://u:s3cret@registry.example:8081/apis/ccompat/v7/"), sr.BasicAuth("cdcd", "hunter2"))
	if err != nil {
		t.Fatal(err)
	}
	r := NewSRRegistry(cl)
	for _, cmd := range []string{r.setLevelCommand("a-value", "BACKWARD"), r.relaxCommand("a-value")} {
		if strings.Contains(cmd, "s3cret") || strings.Contains(cmd, "hunter2") {
			t.Errorf("secret in %s", cmd)
		}
		if !strings.Contains(cmd, "-u 'cdcd:<password>'") || !strings.Contains(cmd, "http://registry.example:8081/apis/") {
			t.Errorf("command %s", cmd)
		}
	}
}
