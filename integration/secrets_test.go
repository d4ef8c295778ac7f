package integration

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestNoSecretInAnyOutput runs the real binary in failing configurations that carry
// passwords in every place a user writes one — a registry URL's user info (from a secret
// file), a Postgres DSN (inline), a MySQL DSN, a SASL password — and greps everything cdcd
// prints for them: the run's log lines, /readyz, `cdcd check` and `cdcd validate`.
//
// The bug: the registry client quotes the URL whole in its errors, so a password in it showed
// in plain text in every retry log line and in /readyz (Go's own url.Error masks it; the
// library's text around it does not).
func TestNoSecretInAnyOutput(t *testing.T) {
	name := uniqueName("secrets")
	s, ctx, dsn, db := setup(t, 3*time.Minute, name, `CREATE TABLE public.items (id int PRIMARY KEY, v text)`)

	// Secrets unique to this run, so a match cannot come from anything else.
	tag := fmt.Sprint(time.Now().UnixNano() % 1e9)
	regPW := "Reg-S3cret-" + tag + "!*"
	pgPW := "Pg-S3cret-" + tag
	myPW := "My-S3cret-" + tag
	saslPW := "Sasl-S3cret-" + tag
	secrets := []string{regPW, pgPW, myPW, saslPW}

	dir := t.TempDir()
	for file, v := range map[string]string{"registry_password": regPW, "sasl_password": saslPW} {
		if err := os.WriteFile(filepath.Join(dir, file), []byte(v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// A registry nobody listens on, with the password in the URL; Postgres (trust
	// authentication on the stack) with a password written inline, which it ignores.
	deadRegistry := freePort(t)
	pgURL, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	pgURL.User = url.UserPassword(pgURL.User.Username(), pgPW)
	runYAML := strings.Replace(pipelineYAML(s, name, pgURL.String(), []string{"public.items"}, ""),
		fmt.Sprintf("url: %q", s.registry), "url: \"http://cdcd:${file:"+filepath.Join(dir, "registry_password")+"}@"+deadRegistry+"/apis/ccompat/v7\"", 1)
	if strings.Contains(runYAML, s.registry) {
		t.Fatal("the registry URL was not replaced")
	}

	var outputs []string // every text cdcd printed, with what printed it
	record := func(what, text string) { outputs = append(outputs, what+":\n"+text) }

	// 1. validate: valid, with warnings that name the keys.
	cfgPath := filepath.Join(dir, "run.yaml")
	if err := os.WriteFile(cfgPath, []byte(strings.ReplaceAll(runYAML, "HTTP_ADDR", freePort(t))), 0o600); err != nil {
		t.Fatal(err)
	}
	out, code := runCdcd(t, ctx, "validate", "--config", cfgPath)
	record("validate", out)
	if code != 0 || !strings.Contains(out, "schema_registry.url: warning:") || !strings.Contains(out, "pipelines[0].source.postgres.dsn: warning:") {
		t.Errorf("validate: exit %d, want 0 with a warning for schema_registry.url and the dsn:\n%s", code, out)
	}

	// 2. run: changes reach the encoder, which cannot reach the registry and retries.
	d := startDaemon(t, runYAML)
	deadline := time.Now().Add(90 * time.Second)
	inserted := false
	var readyz string
	for time.Now().Before(deadline) {
		select {
		case <-d.exited:
			t.Fatalf("cdcd exited: %v", d.err)
		default:
		}
		if !inserted && strings.Contains(d.Logs(), "pipeline streaming") {
			if _, err := db.Exec(ctx, `INSERT INTO public.items VALUES (1, 'a'), (2, 'b')`); err != nil {
				t.Fatal(err)
			}
			inserted = true
		}
		readyz = getBody(t, "http://"+d.http+"/readyz")
		if inserted && strings.Contains(readyz, deadRegistry) && strings.Count(d.Logs(), "msg=retrying") >= 3 {
			break
		}
		time.Sleep(300 * time.Millisecond)
	}
	if !strings.Contains(readyz, deadRegistry) {
		t.Fatalf("the pipeline never tried the registry at %s; /readyz: %s\nlogs:\n%s", deadRegistry, readyz, d.Logs())
	}
	record("/readyz", readyz)
	d.stop(syscall.SIGTERM)
	record("run logs", d.Logs())

	// 3. check, with a MySQL pipeline whose password the server refuses and SASL towards a
	// broker without SASL: each fails, each failure is printed.
	checkYAML := strings.Replace(runYAML, "  topic_partitions: 3\n",
		"  topic_partitions: 3\n  sasl:\n    mechanism: SCRAM-SHA-512\n    username: cdcd\n    password: ${file:"+filepath.Join(dir, "sasl_password")+"}\n", 1) +
		fmt.Sprintf(`  - name: %s_my
    source:
      mysql:
        dsn: "root:%s@tcp(%s)/"
        server_id: 4343
        tables: [nothing.here]
`, name, myPW, mysqlAddr(t, s))
	checkPath := filepath.Join(dir, "check.yaml")
	if err := os.WriteFile(checkPath, []byte(strings.ReplaceAll(checkYAML, "HTTP_ADDR", freePort(t))), 0o600); err != nil {
		t.Fatal(err)
	}
	out, code = runCdcd(t, ctx, "check", "--config", checkPath)
	record("check", out)
	if code != 1 || !strings.Contains(out, "FAIL") {
		t.Errorf("check: exit %d, want 1 with failures:\n%s", code, out)
	}
	out, _ = runCdcd(t, ctx, "validate", "--config", checkPath)
	record("validate (check's file)", out)

	for _, o := range outputs {
		what, _, _ := strings.Cut(o, ":\n")
		t.Logf("%s: %d bytes, %d masks", what, len(o), strings.Count(o, "***"))
		if testing.Verbose() {
			t.Log(o)
		}
		for _, secret := range secrets {
			for _, form := range []string{secret, url.QueryEscape(secret), url.PathEscape(secret), strings.TrimSuffix(secret, "!*")} {
				if strings.Contains(o, form) {
					t.Errorf("a secret (%q) is printed in %s", form, o)
				}
			}
		}
	}
}

// runCdcd runs a cdcd command to completion and returns its combined output and exit code.
func runCdcd(t *testing.T, ctx context.Context, args ...string) (string, int) {
	t.Helper()
	cmd := exec.CommandContext(ctx, cdcdBin, args...)
	out, err := cmd.CombinedOutput()
	if err != nil && cmd.ProcessState == nil {
		t.Fatalf("cdcd %v: %v", args, err)
	}
	return string(out), cmd.ProcessState.ExitCode()
}

func getBody(t *testing.T, u string) string {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// mysqlAddr is the host:port of the stack's MySQL.
func mysqlAddr(t *testing.T, s stack) string {
	t.Helper()
	at := strings.LastIndex(s.mysqlDSN, "@tcp(")
	end := strings.LastIndex(s.mysqlDSN, ")")
	if at < 0 || end < at {
		t.Fatalf("cannot read host:port from CDCD_TEST_MYSQL_DSN %q", s.mysqlDSN)
	}
	return s.mysqlDSN[at+len("@tcp(") : end]
}
