package integration

// TLS and SASL for real: Kafka's SASL_SSL listener (SCRAM-SHA-512, CA-checked), PostgreSQL
// over TLS with sslmode=verify-full (a password user and a client-certificate user), and the
// schema registry behind HTTP basic auth, all through the real cdcd binary. Before these
// tests nothing exercised kafka.tls, kafka.sasl, registry credentials or Postgres TLS, and a
// misconfiguration failed with messages that named neither Kafka nor the fix ("unable to
// dial: tls: failed to verify certificate: x509: certificate signed by unknown authority",
// "invalid large response size 352518912 > limit 104857600", both with the fix "check
// kafka.brokers, the network path and the brokers' advertised.listeners").

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// tlsPipelineYAML is one pipeline of a configuration (indented under pipelines:); extra is
// appended at pipeline level.
func tlsPipelineYAML(name, dsn string, extra ...string) string {
	return fmt.Sprintf(`  - name: %s
    source:
      postgres:
        dsn: %q
        slot: %s
        publication: %s
        tables: [public.items]
        heartbeat_interval: 1s
        status_interval: 1s
        slot_stats_interval: 1s
    topics:
      prefix: %s
`, name, dsn, name, name, name) + strings.Join(extra, "")
}

func tlsConfigYAML(kafka, registry string, pipelines ...string) string {
	return kafka + registry + `http:
  listen: "HTTP_ADDR"
log:
  level: info
  format: text
shutdown_timeout: 10s
pipelines:
` + strings.Join(pipelines, "")
}

const itemsDDL = `CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL)`

// tlsDatabase creates a database owned by user with an items table the user owns (so cdcd,
// logged in as that non-superuser, may publish it); it returns a superuser connection to it.
func tlsDatabase(t *testing.T, ctx context.Context, s stack, name, user string) *pgx.Conn {
	t.Helper()
	dsn := newDatabase(t, ctx, s, name)
	db := pgConnect(t, ctx, dsn)
	for _, q := range []string{
		"ALTER DATABASE " + pgx.Identifier{name}.Sanitize() + " OWNER TO " + user,
		itemsDDL,
		"ALTER TABLE items OWNER TO " + user,
	} {
		if _, err := db.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	return db
}

func randomSecret(t *testing.T) string {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "wrong-" + hex.EncodeToString(b)
}

func readyz(t *testing.T, d *daemon) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + d.http + "/readyz")
	if err != nil {
		t.Fatalf("GET /readyz: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func scrape(t *testing.T, d *daemon) string {
	t.Helper()
	resp, err := http.Get("http://" + d.http + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// waitLogs waits until the daemon's logs hold every one of want, and fails naming the ones
// that never came.
func waitLogs(t *testing.T, d *daemon, timeout time.Duration, want ...string) {
	t.Helper()
	waitLogsUnless(t, d, timeout, "", want...)
}

// waitLogsUnless is waitLogs that fails at once when the logs show unwanted (if not empty).
func waitLogsUnless(t *testing.T, d *daemon, timeout time.Duration, unwanted string, want ...string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		logs := d.Logs()
		if unwanted != "" && strings.Contains(logs, unwanted) {
			t.Fatalf("the logs show %q", unwanted)
		}
		var missing []string
		for _, w := range want {
			if !strings.Contains(logs, w) {
				missing = append(missing, w)
			}
		}
		if len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s the logs still lack %q", timeout, missing)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func TestTLSStreamsOverSASLSSLWithVerifyFull(t *testing.T) {
	s, ts := needTLSStack(t)
	ctx := testCtx(t, 4*time.Minute)
	name := uniqueName("tlsok")
	pw, cert := name+"_pw", name+"_cert"
	dbs := map[string]*pgx.Conn{
		pw:   tlsDatabase(t, ctx, s, pw, "cdcd_pw"),
		cert: tlsDatabase(t, ctx, s, cert, "cdcd_cert"),
	}
	cfg := tlsConfigYAML(ts.kafkaYAML(nil), ts.registryYAML(""),
		tlsPipelineYAML(pw, ts.pgDSN("cdcd_pw", pw)), tlsPipelineYAML(cert, ts.pgDSN("cdcd_cert", cert)))
	d := startDaemon(t, cfg)
	d.waitReady(90 * time.Second)

	for _, db := range dbs {
		for _, q := range []string{
			`INSERT INTO items VALUES (1, 'one'), (2, 'two'), (3, 'three')`,
			`UPDATE items SET name = 'TWO' WHERE id = 2`,
			`DELETE FROM items WHERE id = 3`,
		} {
			if _, err := db.Exec(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Per table: 3 creates, 1 update, 1 delete and its tombstone, read over SASL_SSL with
	// read_committed, so cdcd's transactions committed on that listener.
	c := ts.consumer(t, pw+".public.items", cert+".public.items")
	recs := c.read(t, 12, 90*time.Second, 2*time.Second)
	// Order holds per key (partition), so compare each key's history.
	got := map[string]map[any][]string{}
	for _, r := range recs {
		key := c.decode(t, r.Key)
		op := "tombstone"
		if v := c.decode(t, r.Value); v != nil {
			op = fmt.Sprint(v["op"])
		}
		if got[r.Topic] == nil {
			got[r.Topic] = map[any][]string{}
		}
		got[r.Topic][key["id"]] = append(got[r.Topic][key["id"]], op)
	}
	want := "map[1:[c] 2:[c u] 3:[c d tombstone]]"
	for _, topic := range []string{pw + ".public.items", cert + ".public.items"} {
		if g := fmt.Sprint(got[topic]); g != want {
			t.Errorf("%s: got %s, want %s", topic, g, want)
		}
	}

	// The replication connections really are TLS, one per login method.
	admin := pgConnect(t, ctx, s.pgDSN)
	for _, user := range []string{"cdcd_pw", "cdcd_cert"} {
		var ssl bool
		err := admin.QueryRow(ctx, `SELECT bool_and(s.ssl) FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)
			WHERE a.usename = $1 AND a.backend_type = 'walsender'`, user).Scan(&ssl)
		if err != nil || !ssl {
			t.Errorf("replication connection of %s: ssl = %v (%v), want a TLS walsender", user, ssl, err)
		}
	}

	_, ready := readyz(t, d)
	metrics := scrape(t, d)
	checkOut, code := runCheck(t, ctx, d.cfg)
	if code != 0 || !strings.Contains(checkOut, "all checks passed") {
		t.Errorf("cdcd check on the working configuration: exit %d\n%s", code, checkOut)
	}
	if got := d.stop(syscall.SIGTERM); got == 0 {
		t.Error("cdcd had exited before SIGTERM")
	}
	secrets := []string{ts.kafkaPassword, ts.pgPassword, ts.registryPassword}
	noSecrets(t, "cdcd run logs", d.Logs(), secrets...)
	noSecrets(t, "/readyz", ready, secrets...)
	noSecrets(t, "/metrics", metrics, secrets...)
	noSecrets(t, "cdcd check", checkOut, secrets...)
}

// Each way to get Kafka's security wrong fails in `cdcd check` and in `cdcd run` with a
// message that names Kafka (the broker), the cause and the fix, and shows no secret.
func TestTLSKafkaMisconfigurationsFailClearly(t *testing.T) {
	s, ts := needTLSStack(t)
	wrong := randomSecret(t)
	cases := []struct {
		name     string
		override map[string]string
		check    []string // in `cdcd check` output
		run      []string // in the run's logs
	}{{
		name:     "wrong SASL password",
		override: map[string]string{"password_file": writeSecret(t, wrong)},
		check: []string{"FAIL  kafka: brokers", "SASL_AUTHENTICATION_FAILED", "invalid credentials with SASL mechanism SCRAM-SHA-512",
			"fix: the brokers refused the login: check kafka.sasl.username and password"},
		run: []string{"SASL_AUTHENTICATION_FAILED", "invalid credentials with SASL mechanism SCRAM-SHA-512",
			"(fix: check kafka.sasl.username and password"},
	}, {
		name:     "untrusted certificate",
		override: map[string]string{"ca_file": untrustedCA(t)},
		check: []string{"FAIL  kafka: brokers", "kafka broker " + ts.kafka + ": TLS: its certificate is not signed by a CA in kafka.tls.ca_file",
			"x509: certificate signed by unknown authority", "fix: set kafka.tls.ca_file to the PEM file of the CA that signed the brokers' certificates"},
		run: []string{"kafka broker " + ts.kafka + ": TLS: its certificate is not signed by a CA", "unknown authority",
			"(fix: set kafka.tls.ca_file to the PEM file of the CA that signed the brokers' certificates)"},
	}, {
		name:     "plaintext to the SASL_SSL port",
		override: map[string]string{"tls": "off", "sasl": "off"},
		check: []string{"FAIL  kafka: brokers", "kafka broker " + ts.kafka + ": the broker answered a plaintext request with TLS",
			"fix: set kafka.tls.enabled: true"},
		run: []string{"kafka broker " + ts.kafka + ": the broker answered a plaintext request with TLS", "(fix: set kafka.tls.enabled: true"},
	}, {
		name:     "SASL without TLS",
		override: map[string]string{"tls": "off"},
		check:    []string{"FAIL  kafka: brokers", "the broker answered a plaintext request with TLS", "fix: set kafka.tls.enabled: true"},
		run:      []string{"the broker answered a plaintext request with TLS", "(fix: set kafka.tls.enabled: true"},
	}, {
		name:     "TLS without SASL",
		override: map[string]string{"sasl": "off"},
		check:    []string{"FAIL  kafka: brokers", "is SASL missing?", "fix: the listener closes connections that do not log in: set kafka.sasl"},
		run:      []string{"is SASL missing?"},
	}}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testCtx(t, 2*time.Minute)
			name := fmt.Sprintf("%s_%d", uniqueName("tlsbad"), i)
			dsn := newDatabase(t, ctx, s, name)
			db := pgConnect(t, ctx, dsn)
			if _, err := db.Exec(ctx, itemsDDL); err != nil {
				t.Fatal(err)
			}
			cfg := tlsConfigYAML(ts.kafkaYAML(tc.override), ts.registryYAML(""), tlsPipelineYAML(name, dsn))
			secrets := []string{ts.kafkaPassword, ts.registryPassword, wrong}

			out, code := runCheck(t, ctx, writeConfig(t, strings.ReplaceAll(cfg, "HTTP_ADDR", "127.0.0.1:0")))
			if code != 1 {
				t.Errorf("cdcd check exit %d, want 1", code)
			}
			for _, w := range tc.check {
				if !strings.Contains(out, w) {
					t.Errorf("cdcd check output lacks %q:\n%s", w, out)
				}
			}
			noSecrets(t, "cdcd check", out, secrets...)

			d := startDaemon(t, cfg)
			waitLogs(t, d, 60*time.Second, tc.run...)
			status, body := readyz(t, d)
			if status == http.StatusOK || !strings.Contains(body, tc.run[0]) {
				t.Errorf("/readyz = %d %s, want unready naming %q", status, body, tc.run[0])
			}
			d.stop(syscall.SIGTERM)
			noSecrets(t, "cdcd run logs", d.Logs(), secrets...)
			noSecrets(t, "/readyz", body, secrets...)
		})
	}
}

// A wrong registry password fails check with the credentials named, and makes the pipeline
// unready at the first schema with the registry's refusal as the cause (whether it then stops
// or retries), without showing any password.
func TestTLSRegistryWrongPasswordFailsClearly(t *testing.T) {
	registryWrongPassword(t, "")
}

// on_error: dlq is for records the registry refuses (409/422), not for a registry that
// refuses cdcd: with a wrong password every change was dead-lettered ("change dead-lettered
// ... class=other cause=... Unauthorized") instead of the pipeline stopping.
func TestTLSRegistryLoginFailureIsNotDeadLettered(t *testing.T) {
	registryWrongPassword(t, "    on_error: dlq\n")
}

func registryWrongPassword(t *testing.T, extra string) {
	t.Helper()
	s, ts := needTLSStack(t)
	ctx := testCtx(t, 3*time.Minute)
	name := uniqueName("tlsreg")
	dsn := newDatabase(t, ctx, s, name)
	db := pgConnect(t, ctx, dsn)
	if _, err := db.Exec(ctx, itemsDDL); err != nil {
		t.Fatal(err)
	}
	wrong := randomSecret(t)
	cfg := tlsConfigYAML(ts.kafkaYAML(nil), ts.registryYAML(writeSecret(t, wrong)), tlsPipelineYAML(name, dsn, extra))
	secrets := []string{ts.kafkaPassword, ts.registryPassword, wrong}

	out, code := runCheck(t, ctx, writeConfig(t, strings.ReplaceAll(cfg, "HTTP_ADDR", "127.0.0.1:0")))
	for _, w := range []string{"FAIL  schema registry: credentials", "401", `the registry refused user "` + ts.registryUser + `"`,
		"fix: set schema_registry.username and password"} {
		if !strings.Contains(out, w) {
			t.Errorf("cdcd check output lacks %q:\n%s", w, out)
		}
	}
	if code != 1 {
		t.Errorf("cdcd check exit %d, want 1", code)
	}
	noSecrets(t, "cdcd check", out, secrets...)

	d := startDaemon(t, cfg)
	d.waitReady(90 * time.Second)
	if _, err := db.Exec(ctx, `INSERT INTO items VALUES (1, 'one')`); err != nil {
		t.Fatal(err)
	}
	waitLogsUnless(t, d, 60*time.Second, "dead-lettered", "schema registry", "Unauthorized", "(fix: check schema_registry url, username and password")
	status, body := readyz(t, d)
	if status == http.StatusOK || !strings.Contains(body, "Unauthorized") {
		t.Errorf("/readyz = %d %s, want unready with the registry's refusal", status, body)
	}
	d.stop(syscall.SIGTERM)
	if dl := ts.consumer(t, name+".dlq").read(t, 1, 3*time.Second, 0); len(dl) != 0 {
		t.Errorf("a registry login failure produced %d dead letters", len(dl))
	}
	noSecrets(t, "cdcd run logs", d.Logs(), secrets...)
	noSecrets(t, "/readyz", body, secrets...)
}
