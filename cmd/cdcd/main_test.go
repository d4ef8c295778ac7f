package main

// Tests of the command line as users and orchestrators see it: the real binary, exec'd, with
// nothing listening behind the configuration (no database, broker or registry needed).

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// testVersion is stamped into the test binary the way the Makefile stamps releases.
const testVersion = "v0.0.0-test"

// cdcdBin is the binary under test, built once by TestMain.
var cdcdBin string

func TestMain(m *testing.M) {
	if os.Getenv(panicChildEnv) != "" {
		panicChild()
	}
	os.Exit(func() int {
		dir, err := os.MkdirTemp("", "cdcd-cmd-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		cdcdBin = filepath.Join(dir, "cdcd")
		build := exec.Command("go", "build", "-ldflags", "-X main.version="+testVersion, "-o", cdcdBin, ".")
		if out, err := build.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "building cdcd: %v\n%s", err, out)
			return 1
		}
		return m.Run()
	}())
}

type result struct {
	code           int
	stdout, stderr string
}

// cdcd runs the binary to completion with the environment's CDCD_* variables removed, so the
// configuration's ${VAR:-default}s resolve the same everywhere; env adds variables.
func cdcd(t *testing.T, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, cdcdBin, args...)
	cmd.Env = append(cleanEnv(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("running cdcd %v: %v", args, err)
	}
	return result{code: cmd.ProcessState.ExitCode(), stdout: stdout.String(), stderr: stderr.String()}
}

func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CDCD_") {
			env = append(env, kv)
		}
	}
	return env
}

func TestVersionPrintsTheStampedVersion(t *testing.T) {
	for _, arg := range []string{"version", "--version"} {
		r := cdcd(t, nil, arg)
		if r.code != 0 {
			t.Fatalf("cdcd %s: exit %d, stderr %q", arg, r.code, r.stderr)
		}
		// cdcd VERSION [commit REV (TIME)] GO OS/ARCH: the commit where the build recorded one.
		if !strings.HasPrefix(r.stdout, "cdcd "+testVersion+" ") ||
			!strings.HasSuffix(r.stdout, fmt.Sprintf(" %s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)) {
			t.Errorf("cdcd %s printed %q, want cdcd %s ... %s %s/%s", arg, r.stdout, testVersion, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		}
	}
}

func TestUsageErrorsExit2(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want []string // in stderr
	}{
		{"unknown command", []string{"frobnicate"}, []string{`unknown command "frobnicate"`, "Usage:", "cdcd run"}},
		{"no command", nil, []string{"Usage:", "cdcd validate"}},
		{"run without --config", []string{"run"}, []string{"--config FILE is required"}},
		{"validate with extra arguments", []string{"validate", "--config", "x.yaml", "extra"}, []string{"unexpected arguments"}},
		{"unknown flag", []string{"check", "--conf", "x.yaml"}, []string{"unknown flag --conf", "cdcd check --help"}},
		{"unknown flag of healthcheck", []string{"healthcheck", "--uri", "http://x"}, []string{"unknown flag --uri"}},
		{"unknown flag of dlq replay", []string{"dlq", "replay", "--config", "x.yaml", "--pipline", "p"}, []string{"unknown flag --pipline"}},
		{"snapshot without --table", []string{"snapshot", "--config", "x.yaml", "--pipeline", "p"}, []string{"--table SCHEMA.TABLE is required"}},
		{"dlq without replay", []string{"dlq"}, []string{"cdcd dlq replay"}},
		{"flag without its value", []string{"run", "--config"}, []string{"flag needs an argument: --config"}},
		{"flag with a bad value", []string{"dlq", "replay", "--config", "x.yaml", "--pipeline", "p", "--from", "x"}, []string{`invalid value "x" for flag --from`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := cdcd(t, nil, c.args...)
			if r.code != 2 {
				t.Errorf("exit %d, want 2 (stderr %q)", r.code, r.stderr)
			}
			for _, w := range c.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr does not contain %q:\n%s", w, r.stderr)
				}
			}
		})
	}
}

// Every command's --help describes it, lists its flags and gives an example, on stdout, exit 0,
// without doing anything (healthcheck --help does not probe).
func TestEveryHelpExitsZero(t *testing.T) {
	dead := "http://" + freeAddr(t) + "/healthz"
	for _, c := range commands {
		for _, help := range []string{"--help", "-h"} {
			args := append(strings.Fields(c.name), help)
			t.Run(strings.Join(args, " "), func(t *testing.T) {
				r := cdcd(t, []string{"CDCD_HEALTHCHECK_URL=" + dead}, args...)
				if r.code != 0 {
					t.Fatalf("exit %d, want 0 (stdout %q, stderr %q)", r.code, r.stdout, r.stderr)
				}
				for _, w := range []string{"Usage: cdcd " + c.name, c.help[:20], "Example:\n  cdcd " + c.name} {
					if !strings.Contains(r.stdout, w) {
						t.Errorf("stdout does not contain %q:\n%s", w, r.stdout)
					}
				}
				if c.name != "version" && !strings.Contains(r.stdout, "Flags:\n  --") {
					t.Errorf("stdout lists no flags:\n%s", r.stdout)
				}
				if r.stderr != "" {
					t.Errorf("stderr %q, want nothing", r.stderr)
				}
			})
		}
	}
	for _, args := range [][]string{{"--help"}, {"help"}, {"help", "run"}} {
		r := cdcd(t, nil, args...)
		if r.code != 0 || !strings.Contains(r.stdout, "cdcd run") {
			t.Errorf("cdcd %v: exit %d, stdout %q", args, r.code, r.stdout)
		}
	}
}

// The configuration path can come from CDCD_CONFIG (a container's environment).
func TestConfigFromTheEnvironment(t *testing.T) {
	r := cdcd(t, []string{"CDCD_CONFIG=../../config.example.yaml"}, "validate")
	if r.code != 0 || !strings.Contains(r.stdout, "config.example.yaml: valid") {
		t.Fatalf("validate with CDCD_CONFIG: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	r = cdcd(t, []string{"CDCD_CONFIG=/nonexistent.yaml"}, "validate", "--config", "../../config.example.yaml")
	if r.code != 0 {
		t.Fatalf("--config does not win over CDCD_CONFIG: exit %d, stderr %q", r.code, r.stderr)
	}
	r = cdcd(t, nil, "validate")
	if r.code != 2 || !strings.Contains(r.stderr, "CDCD_CONFIG") {
		t.Fatalf("validate with neither: exit %d, stderr %q; want 2 naming CDCD_CONFIG", r.code, r.stderr)
	}
}

func TestValidateTheExampleConfiguration(t *testing.T) {
	r := cdcd(t, nil, "validate", "--config", "../../config.example.yaml")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if want := "../../config.example.yaml: valid (1 pipeline(s))\n"; r.stdout != want {
		t.Errorf("stdout %q, want %q", r.stdout, want)
	}
}

func TestValidateNamesEveryProblem(t *testing.T) {
	path := writeFile(t, "bad.yaml", `kafka:
  brokers: ["127.0.0.1:19092"]
  brokerz: 1
schema_registry:
  url: http://127.0.0.1:18081
pipelines:
  - name: shop
    delivery: twice
    source:
      postgres:
        dsn: postgres://postgres@127.0.0.1:1/shop
        tables: [public.orders]
`)
	r := cdcd(t, nil, "validate", "--config", path)
	if r.code != 1 {
		t.Fatalf("exit %d, want 1; stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	for _, w := range []string{
		"2 problems",
		path + `:3: kafka.brokerz: unknown key "brokerz"`,
		`did you mean "brokers"?`,
		path + `:8: pipelines[0].delivery: unknown delivery "twice"`,
	} {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("stderr does not contain %q:\n%s", w, r.stderr)
		}
	}
	if r.stdout != "" {
		t.Errorf("stdout %q, want nothing", r.stdout)
	}
}

func TestValidateAMissingFile(t *testing.T) {
	r := cdcd(t, nil, "validate", "--config", filepath.Join(t.TempDir(), "absent.yaml"))
	if r.code != 1 || !strings.Contains(r.stderr, "absent.yaml") {
		t.Errorf("exit %d, stderr %q; want 1 naming the file", r.code, r.stderr)
	}
}

// TestRunWithUnreachableSources: a daemon whose database, brokers and registry are all down
// is alive (/healthz), not ready (/readyz 503 saying why), exports its metrics, and still
// shuts down promptly on SIGTERM — what an orchestrator relies on.
func TestRunWithUnreachableSources(t *testing.T) {
	addr := freeAddr(t)
	path := writeFile(t, "cdcd.yaml", fmt.Sprintf(`kafka:
  brokers: ["127.0.0.1:1"]
schema_registry:
  url: http://127.0.0.1:1
http:
  listen: %q
log:
  format: json
shutdown_timeout: 5s
pipelines:
  - name: shop
    source:
      postgres:
        dsn: postgres://postgres@127.0.0.1:1/shop
        tables: [public.orders]
`, addr))
	cmd := exec.Command(cdcdBin, "run", "--config", path)
	cmd.Env = cleanEnv()
	var logs syncBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// exited is closed when the process has ended; waitErr is its status then.
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("cdcd logs:\n%s", logs.String())
		}
	})
	base := "http://" + addr

	// /healthz answers as soon as the listener is up.
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, _ := get(t, base+"/healthz")
		if code == http.StatusOK {
			break
		}
		select {
		case <-exited:
			t.Fatalf("cdcd exited during start-up: %v", waitErr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("/healthz did not answer 200 within 10s (last %d)", code)
		}
		time.Sleep(50 * time.Millisecond)
	}

	code, body := get(t, base+"/readyz")
	if code != http.StatusServiceUnavailable {
		t.Errorf("/readyz: %d, want 503: %s", code, body)
	}
	var ready struct {
		Ready     bool `json:"ready"`
		Pipelines []struct {
			Name   string `json:"name"`
			Ready  bool   `json:"ready"`
			Phase  string `json:"phase"`
			Reason string `json:"reason"`
		} `json:"pipelines"`
	}
	if err := json.Unmarshal([]byte(body), &ready); err != nil {
		t.Fatalf("/readyz is not JSON: %v: %s", err, body)
	}
	if ready.Ready || len(ready.Pipelines) != 1 || ready.Pipelines[0].Name != "shop" || ready.Pipelines[0].Ready ||
		ready.Pipelines[0].Phase == "" || ready.Pipelines[0].Reason == "" {
		t.Errorf("/readyz body %s: want shop not ready, with a phase and a reason", body)
	}

	// The pipeline's series appears once its supervisor has started; poll for it.
	want := []string{
		fmt.Sprintf(`cdcd_build_info{goversion=%q,version=%q} 1`, runtime.Version(), testVersion),
		`cdcd_pipeline_ready{pipeline="shop"} 0`,
	}
	var missing []string
	for deadline := time.Now().Add(10 * time.Second); ; {
		code, metrics := get(t, base+"/metrics")
		if code != http.StatusOK {
			t.Fatalf("/metrics: %d", code)
		}
		missing = missing[:0]
		for _, w := range want {
			if !strings.Contains(metrics, w) {
				missing = append(missing, w)
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, w := range missing {
		t.Errorf("/metrics does not contain %q", w)
	}

	// healthcheck, as a container HEALTHCHECK runs it, against this live daemon.
	if r := cdcd(t, nil, "healthcheck", "--url", base+"/healthz"); r.code != 0 {
		t.Errorf("healthcheck against the live daemon: exit %d: %s", r.code, r.stderr)
	}

	t0 := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
		if waitErr != nil {
			t.Errorf("cdcd exited with %v after SIGTERM, want status 0", waitErr)
		}
		t.Logf("exited %s after SIGTERM", time.Since(t0).Round(time.Millisecond))
	case <-time.After(10 * time.Second):
		t.Fatal("cdcd did not exit within 10s of SIGTERM")
	}
	if !strings.Contains(logs.String(), `"msg":"cdcd stopped"`) {
		t.Errorf("logs do not say cdcd stopped")
	}
}

func TestHealthcheck(t *testing.T) {
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
			return
		}
		_, _ = io.WriteString(w, "ok\n")
	}))
	defer ok.Close()
	sick := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer sick.Close()
	dead := "http://" + freeAddr(t) + "/healthz" // nothing listens there

	cases := []struct {
		name    string
		env     []string
		args    []string
		code    int
		wantErr string
	}{
		{"live --url", nil, []string{"--url", ok.URL + "/healthz"}, 0, ""},
		{"live --url=", nil, []string{"--url=" + ok.URL + "/healthz"}, 0, ""},
		{"dead --url=", []string{"CDCD_HEALTHCHECK_URL=" + ok.URL + "/healthz"}, []string{"--url=" + dead}, 1, "connection refused"},
		{"live from CDCD_HEALTHCHECK_URL", []string{"CDCD_HEALTHCHECK_URL=" + ok.URL + "/healthz"}, nil, 0, ""},
		{"--url wins over the environment", []string{"CDCD_HEALTHCHECK_URL=" + dead}, []string{"--url", ok.URL + "/healthz"}, 0, ""},
		{"unhealthy", nil, []string{"--url", sick.URL + "/healthz"}, 1, "503 Service Unavailable"},
		{"dead endpoint", nil, []string{"--url", dead}, 1, "connection refused"},
		{"dead from CDCD_HEALTHCHECK_URL", []string{"CDCD_HEALTHCHECK_URL=" + dead}, nil, 1, dead},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := cdcd(t, c.env, append([]string{"healthcheck"}, c.args...)...)
			if r.code != c.code {
				t.Errorf("exit %d, want %d (stderr %q)", r.code, c.code, r.stderr)
			}
			if c.wantErr != "" && !strings.Contains(r.stderr, c.wantErr) {
				t.Errorf("stderr %q does not contain %q", r.stderr, c.wantErr)
			}
		})
	}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// freeAddr returns a loopback address nothing listens on (for a moment).
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading %s: %v", url, err)
	}
	return resp.StatusCode, string(b)
}

// syncBuffer is a bytes.Buffer shared by the process's output copier and the test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestValidateWarnsAboutInlinePasswords: a password inside a URL or DSN is valid but shows in
// every copy of the file; validate names the key and the place for it, and never prints it.
func TestValidateWarnsAboutInlinePasswords(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "registry_password"), []byte("REG-pw-from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "cdcd.yaml")
	if err := os.WriteFile(path, []byte(`kafka:
  brokers: ["127.0.0.1:19092"]
schema_registry:
  url: http://cdcd:${file:registry_password}@127.0.0.1:18081
pipelines:
  - name: shop
    source:
      postgres:
        dsn: postgres://cdcd:PG-pw-inline@127.0.0.1:55432/shop
        tables: [public.orders]
`), 0o600); err != nil {
		t.Fatal(err)
	}
	r := cdcd(t, nil, "validate", "--config", path)
	if r.code != 0 {
		t.Fatalf("exit %d, want 0 (warnings do not fail validate): %s%s", r.code, r.stdout, r.stderr)
	}
	for _, w := range []string{
		path + ":4: schema_registry.url: warning:",
		"set schema_registry.username and schema_registry.password",
		path + ":9: pipelines[0].source.postgres.dsn: warning:",
		"${file:/run/secrets/pg_password}",
		path + ": valid (1 pipeline(s))",
	} {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("stdout does not contain %q:\n%s", w, r.stdout)
		}
	}
	for _, secret := range []string{"REG-pw-from-file", "PG-pw-inline"} {
		if strings.Contains(r.stdout+r.stderr, secret) {
			t.Errorf("validate printed the secret %q:\n%s%s", secret, r.stdout, r.stderr)
		}
	}
}

// TestInvalidConfigurationDoesNotPrintSecrets: a refused file's messages quote its values;
// the secrets among them are masked.
func TestInvalidConfigurationDoesNotPrintSecrets(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "pw"), []byte("file-s3cret-value\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "cdcd.yaml")
	if err := os.WriteFile(path, []byte(`kafka:
  brokers: ["${file:pw}"]
schema_registry:
  url: ftp://cdcd:url-s3cret-value@127.0.0.1:18081
pipelines:
  - name: inv
    source:
      mysql:
        dsn: root:my-s3cret-value@127.0.0.1:33306/inventory
        server_id: 1
        tables: [inventory.items]
`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"validate", "check", "run"} {
		r := cdcd(t, nil, cmd, "--config", path)
		if r.code != 1 || !strings.Contains(r.stderr, "invalid configuration: 3 problems") {
			t.Errorf("%s: exit %d, want 1 with 3 problems: %s", cmd, r.code, r.stderr)
		}
		for _, secret := range []string{"file-s3cret-value", "url-s3cret-value", "my-s3cret-value"} {
			if strings.Contains(r.stdout+r.stderr, secret) {
				t.Errorf("%s printed the secret %q:\n%s%s", cmd, secret, r.stdout, r.stderr)
			}
		}
	}
}

// panicChildEnv makes the test binary act as a cdcd main that panics with a secret in the
// panic value (see TestPanicIsRedacted).
const panicChildEnv = "CDCD_TEST_PANIC_CHILD"

func panicChild() {
	stderr := outputSecrets.Writer(os.Stderr)
	defer exitOnPanic(stderr)
	outputSecrets.Add("known-s3cret-value")
	panic(fmt.Errorf("connecting to postgres://cdcd:form-s3cret@db:5432/shop as known-s3cret-value"))
}

// TestPanicIsRedacted: a panic ends cdcd as the runtime would (value, stack, status 2), but
// its value, which can hold a connection string, is redacted.
func TestPanicIsRedacted(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self, "-test.run=^$")
	cmd.Env = append(cleanEnv(), panicChildEnv+"=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 {
		t.Fatalf("exit %v, want status 2; stderr:\n%s", err, stderr.String())
	}
	out := stderr.String()
	if !strings.Contains(out, "panic: connecting to postgres://cdcd:***@db:5432/shop as ***") || !strings.Contains(out, "panicChild") {
		t.Errorf("want the redacted panic value and the stack:\n%s", out)
	}
	if strings.Contains(out, "s3cret") {
		t.Errorf("the panic printed a secret:\n%s", out)
	}
}
