package integration

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"
	"github.com/twmb/franz-go/pkg/sr"
)

// tlsStack is the TLS/SASL side of the local stack (scripts/stack/tls.sh, kafka.sh,
// postgres.sh, registry-auth.sh): certificates and secrets in one directory, Kafka's
// SASL_SSL listener, PostgreSQL's TLS-only users, and the registry behind basic auth.
type tlsStack struct {
	dir        string // CDCD_TEST_TLS_DIR
	kafka      string // SASL_SSL bootstrap address, CA-checked, SCRAM-SHA-512
	registry   string // the registry's basic-auth proxy (Confluent API root)
	pgPort     string // PostgreSQL's port (TLS and plain share it)
	caFile     string // the stack's CA: signed every server certificate
	clientCert string // client certificate of cdcd_cert (PostgreSQL cert auth)
	clientKey  string

	kafkaUser, pgUser, registryUser                     string
	kafkaPasswordFile, pgPasswordFile, registryPassFile string
	// The secrets themselves, to grep every output for.
	kafkaPassword, pgPassword, registryPassword string
}

// needTLSStack returns the stack and its TLS side. With CDCD_TEST_STACK set, missing TLS
// material or an unreachable TLS service FAILS the test (make stack-up provides them).
func needTLSStack(t *testing.T) (stack, tlsStack) {
	t.Helper()
	s := needStack(t)
	dir := env("CDCD_TEST_TLS_DIR", filepath.Join("..", ".stack", "tls"))
	pg, err := pgx.ParseConfig(s.pgDSN)
	if err != nil {
		t.Fatalf("CDCD_TEST_PG_DSN: %v", err)
	}
	ts := tlsStack{
		dir:        dir,
		kafka:      env("CDCD_TEST_KAFKA_SASL_SSL", "127.0.0.1:19094"),
		registry:   env("CDCD_TEST_REGISTRY_AUTH", "http://127.0.0.1:18082/apis/ccompat/v7"),
		pgPort:     fmt.Sprint(pg.Port),
		caFile:     filepath.Join(dir, "ca.crt"),
		clientCert: filepath.Join(dir, "client-cdcd_cert.crt"),
		clientKey:  filepath.Join(dir, "client-cdcd_cert.key"),
	}
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || len(strings.TrimSpace(string(b))) == 0 {
			t.Fatalf("the stack's TLS material is missing (%v); run `make stack-up` (CDCD_TEST_TLS_DIR=%s)", err, dir)
		}
		return strings.TrimSpace(string(b))
	}
	for _, f := range []string{"ca.crt", "client-cdcd_cert.crt", "client-cdcd_cert.key"} {
		read(f)
	}
	ts.kafkaUser, ts.kafkaPassword = read("kafka.user"), read("kafka.password")
	ts.pgUser, ts.pgPassword = read("postgres.user"), read("postgres.password")
	ts.registryUser, ts.registryPassword = read("registry.user"), read("registry.password")
	ts.kafkaPasswordFile = filepath.Join(dir, "kafka.password")
	ts.pgPasswordFile = filepath.Join(dir, "postgres.password")
	ts.registryPassFile = filepath.Join(dir, "registry.password")
	for _, addr := range []string{ts.kafka, hostPort(t, ts.registry)} {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatalf("TLS stack service %s is not reachable (make stack-up starts it): %v", addr, err)
		}
		c.Close()
	}
	return s, ts
}

func hostPort(t *testing.T, rawURL string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatalf("%s: %v", rawURL, err)
	}
	return u.Host
}

// pgDSN is a verify-full DSN on host "localhost" (the certificate's SAN) for user, with the
// password from its file through cdcd's ${file:...} expansion (cdcd_pw) or the client
// certificate (cdcd_cert).
func (ts tlsStack) pgDSN(user, database string) string {
	q := url.Values{"sslmode": {"verify-full"}, "sslrootcert": {ts.caFile}}
	userinfo := user
	if user == "cdcd_cert" {
		q.Set("sslcert", ts.clientCert)
		q.Set("sslkey", ts.clientKey)
	} else {
		userinfo = user + ":${file:" + ts.pgPasswordFile + "}"
	}
	return fmt.Sprintf("postgres://%s@localhost:%s/%s?%s", userinfo, ts.pgPort, database, q.Encode())
}

// kafkaYAML is the kafka section for the SASL_SSL listener; override replaces single keys of
// it: "ca_file", "password_file", "tls" ("off" drops the tls block), "sasl" ("off").
func (ts tlsStack) kafkaYAML(override map[string]string) string {
	get := func(k, def string) string {
		if v, ok := override[k]; ok {
			return v
		}
		return def
	}
	var b strings.Builder
	fmt.Fprintf(&b, "kafka:\n  brokers: [%q]\n  topic_partitions: 3\n", get("brokers", ts.kafka))
	if get("tls", "on") != "off" {
		fmt.Fprintf(&b, "  tls:\n    enabled: true\n    ca_file: %q\n", get("ca_file", ts.caFile))
	}
	if get("sasl", "on") != "off" {
		fmt.Fprintf(&b, "  sasl:\n    mechanism: SCRAM-SHA-512\n    username: %q\n    password: \"${file:%s}\"\n",
			ts.kafkaUser, get("password_file", ts.kafkaPasswordFile))
	}
	return b.String()
}

// registryYAML is the schema_registry section for the auth proxy.
func (ts tlsStack) registryYAML(passwordFile string) string {
	if passwordFile == "" {
		passwordFile = ts.registryPassFile
	}
	return fmt.Sprintf("schema_registry:\n  url: %q\n  username: %q\n  password: \"${file:%s}\"\n",
		ts.registry, ts.registryUser, passwordFile)
}

// kafkaClient is a test client on the SASL_SSL listener (CA-checked).
func (ts tlsStack) kafkaClient(t *testing.T, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	pem, err := os.ReadFile(ts.caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(ts.kafka),
		kgo.DialTLSConfig(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}),
		kgo.SASL(scram.Auth{User: ts.kafkaUser, Pass: ts.kafkaPassword}.AsSha512Mechanism()),
		kgo.MetadataMinAge(250 * time.Millisecond)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// tlsConsumer reads topics read_committed over SASL_SSL and decodes through the auth proxy.
func (ts tlsStack) consumer(t *testing.T, topics ...string) *consumer {
	t.Helper()
	cl := ts.kafkaClient(t, kgo.ConsumeTopics(topics...), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	reg, err := sr.NewClient(sr.URLs(ts.registry), sr.BasicAuth(ts.registryUser, ts.registryPassword))
	if err != nil {
		t.Fatal(err)
	}
	return &consumer{cl: cl, reg: reg, schemas: map[int]avro.Schema{}}
}

// untrustedCA writes a CA certificate that signed nothing of the stack's.
func untrustedCA(t *testing.T) string {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "not the stack's CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "other-ca.crt")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// writeSecret writes a secret file (a wrong password) and returns its path.
func writeSecret(t *testing.T, secret string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(path, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// noSecrets fails the test if any secret appears in out (raw, or percent-encoded as a URL
// would carry it).
func noSecrets(t *testing.T, what, out string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if s == "" {
			continue
		}
		for _, form := range []string{s, url.QueryEscape(s), url.PathEscape(s)} {
			if strings.Contains(out, form) {
				// Masked here too: the test's own output must not carry it either.
				t.Errorf("%s shows a secret (at <SECRET>):\n%s", what, strings.ReplaceAll(out, form, "<SECRET>"))
				break
			}
		}
	}
}

// runCheck runs `cdcd check` on a configuration and returns its combined output and exit code.
func runCheck(t *testing.T, ctx context.Context, cfgPath string) (string, int) {
	t.Helper()
	cmd := exec.CommandContext(ctx, cdcdBin, "check", "--config", cfgPath)
	out, err := cmd.CombinedOutput()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("running cdcd check: %v", err)
		}
		code = ee.ExitCode()
	}
	return string(out), code
}
