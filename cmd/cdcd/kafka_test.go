package main

import (
	"cmp"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/config"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Misconfigured Kafka security used to fail with franz-go's bare messages ("unable to dial:
// tls: failed to verify certificate: x509: certificate signed by unknown authority", "invalid
// large response size 352518912 > limit ...") that named neither Kafka, the broker nor the fix.
// These tests pin what each failure says now; integration/tls_test.go does the same against
// the stack's real SASL_SSL listener.

// selfSigned writes a self-signed certificate for 127.0.0.1 and returns it with its PEM path.
func selfSigned(t *testing.T, cn string) (tls.Certificate, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), cn+".crt")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, path
}

// serve accepts connections on a loopback port and hands each to fn.
func serve(t *testing.T, fn func(net.Conn)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				fn(c)
			}()
		}
	}()
	return l.Addr().String()
}

func dialWith(t *testing.T, k config.Kafka, addr string) error {
	t.Helper()
	k.Brokers = []string{addr}
	opts, err := kafkaOpts(&config.Config{Kafka: k})
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(append(opts, kgo.RequestRetries(0))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = cl.Ping(ctx)
	if err == nil {
		t.Fatal("ping succeeded against a broker that cannot answer")
	}
	return err
}

func wantConnError(t *testing.T, err error, addr string, what, fix string) {
	t.Helper()
	var ce *BrokerConnError
	if !errors.As(err, &ce) {
		t.Fatalf("got %T %v, want a *BrokerConnError", err, err)
	}
	msg := err.Error()
	if ce.Addr != addr || !strings.Contains(msg, "kafka broker "+addr) || !strings.Contains(msg, what) || !strings.Contains(ce.Fix, fix) {
		t.Errorf("got %q (fix %q), want broker %s, %q and fix %q", msg, ce.Fix, addr, what, fix)
	}
	if got := kafkaFix(&config.Config{}, err); got != ce.Fix {
		t.Errorf("kafkaFix = %q, want the error's own fix %q", got, ce.Fix)
	}
}

func TestKafkaUntrustedCertificateNamesBrokerAndFix(t *testing.T) {
	cert, _ := selfSigned(t, "broker")
	_, otherCA := selfSigned(t, "other-ca")
	addr := serve(t, func(c net.Conn) {
		tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert}})
		_ = tc.Handshake()
	})
	err := dialWith(t, config.Kafka{TLS: &config.TLS{Enabled: true, CAFile: otherCA}}, addr)
	wantConnError(t, err, addr, "not signed by a CA in kafka.tls.ca_file "+otherCA, "set kafka.tls.ca_file")
	if !strings.Contains(err.Error(), "unknown authority") {
		t.Errorf("the cause is lost: %v", err)
	}
}

func TestKafkaTrustedCertificateConnects(t *testing.T) {
	cert, ca := selfSigned(t, "broker")
	addr := serve(t, func(c net.Conn) {
		tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert}})
		if tc.Handshake() == nil {
			_, _ = tc.Write([]byte{0, 0, 0, 0}) // not Kafka: only the handshake matters here
		}
	})
	err := dialWith(t, config.Kafka{TLS: &config.TLS{Enabled: true, CAFile: ca}}, addr)
	var ce *BrokerConnError
	if errors.As(err, &ce) {
		t.Fatalf("a trusted certificate failed the dial: %v", err)
	}
}

func TestKafkaTLSAgainstPlaintextPortNamesFix(t *testing.T) {
	// A Kafka PLAINTEXT listener reads the ClientHello as an oversized request and closes.
	addr := serve(t, func(c net.Conn) { _, _ = c.Read(make([]byte, 512)) })
	err := dialWith(t, config.Kafka{TLS: &config.TLS{Enabled: true}}, addr)
	wantConnError(t, err, addr, "the port does not speak TLS", "kafka.tls.enabled: false")
	if errors.Is(err, io.EOF) {
		t.Error("the error unwraps to io.EOF, which franz-go replaces by its own message")
	}
}

func TestKafkaPlaintextAgainstTLSPortNamesFix(t *testing.T) {
	// A Kafka SSL/SASL_SSL listener answers a plaintext request with a TLS alert record.
	addr := serve(t, func(c net.Conn) {
		_, _ = c.Read(make([]byte, 512))
		_, _ = c.Write([]byte{21, 3, 3, 0, 2, 2, 10})
	})
	err := dialWith(t, config.Kafka{}, addr)
	wantConnError(t, err, addr, "answered a plaintext request with TLS", "set kafka.tls.enabled: true")
}

func TestKafkaRefusedConnectionNamesBroker(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	err = dialWith(t, config.Kafka{}, addr)
	wantConnError(t, err, addr, "refused the connection", "check kafka.brokers")
}

func TestKafkaFixForBrokerAnswers(t *testing.T) {
	sasl := &config.Config{Kafka: config.Kafka{SASL: &config.SASL{Mechanism: "SCRAM-SHA-512", Username: "u", Password: "p"}}}
	cases := []struct {
		cfg  *config.Config
		err  error
		want string
	}{
		{sasl, fmt.Errorf("x: %w", kerr.SaslAuthenticationFailed), "check kafka.sasl.username and password"},
		{sasl, kerr.UnsupportedSaslMechanism, "does not enable kafka.sasl.mechanism SCRAM-SHA-512"},
		{&config.Config{}, &kgo.ErrFirstReadEOF{}, "set kafka.sasl"},
		{sasl, kerr.TransactionalIDAuthorizationFailed, "transactional ids cdcd-*"},
		{sasl, errors.New("something else"), "check kafka.brokers"},
	}
	for _, c := range cases {
		if got := kafkaFix(c.cfg, c.err); !strings.Contains(got, c.want) {
			t.Errorf("kafkaFix(%v) = %q, want it to contain %q", c.err, got, c.want)
		}
	}
}

// kafka.compression reaches the batches cdcd produces: each codec's batch carries it in its
// attributes, as the broker and every consumer see it.
func TestKafkaCompressionCodec(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	value := []byte(strings.Repeat("a compressible change event ", 200))
	for name, want := range map[string]uint8{"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4, "": 2} {
		t.Run("codec="+name, func(t *testing.T) {
			opts, err := kafkaOpts(&config.Config{Kafka: config.Kafka{Brokers: c.ListenAddrs(), Compression: name}})
			if err != nil {
				t.Fatal(err)
			}
			topic := "compression-" + cmp.Or(name, "default")
			cl, err := kgo.NewClient(append(opts, kgo.DefaultProduceTopic(topic), kgo.ConsumeTopics(topic))...)
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, topic); err != nil {
				t.Fatal(err)
			}
			if err := cl.ProduceSync(ctx, &kgo.Record{Value: value}).FirstErr(); err != nil {
				t.Fatal(err)
			}
			fs := cl.PollFetches(ctx)
			if err := fs.Err0(); err != nil {
				t.Fatal(err)
			}
			recs := fs.Records()
			if len(recs) != 1 || string(recs[0].Value) != string(value) {
				t.Fatalf("read back %d records, want the one produced", len(recs))
			}
			if got := recs[0].Attrs.CompressionType(); got != want {
				t.Errorf("batch compression type %d, want %d (%s)", got, want, name)
			}
		})
	}
	if _, err := kafkaOpts(&config.Config{Kafka: config.Kafka{Brokers: c.ListenAddrs(), Compression: "brotli"}}); err == nil || !strings.Contains(err.Error(), "kafka.compression") {
		t.Errorf("an unknown codec gave %v, want an error naming kafka.compression", err)
	}
}
