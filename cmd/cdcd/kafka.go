package main

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cdcd-dev/cdcd/config"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// kafkaDialTimeout bounds the TCP connect plus the TLS handshake to one broker (franz-go's
// own default for its dialer).
const kafkaDialTimeout = 10 * time.Second

// kafkaOpts turns the kafka section into franz-go client options shared by every client.
//
// Every connection goes through brokerDialer, so a connection that fails for a reason the
// configuration can fix (an untrusted or mismatched certificate, TLS against a plaintext port,
// plaintext against a TLS port, a refused connection) fails with an error that names Kafka,
// the broker, the cause and the fix, wherever it surfaces: run logs, /readyz, check, dlq.
func kafkaOpts(cfg *config.Config) ([]kgo.Opt, error) {
	k := cfg.Kafka
	opts := []kgo.Opt{kgo.SeedBrokers(k.Brokers...), kgo.ClientID(k.ClientID)}
	codec, err := compressionCodec(k.Compression)
	if err != nil {
		return nil, err
	}
	// None after the codec, as franz-go's own default: a broker too old for zstd (Kafka < 2.1)
	// gets uncompressed batches instead of an error.
	opts = append(opts, kgo.ProducerBatchCompression(codec, kgo.NoCompression()))
	if s := k.SASL; s != nil {
		switch s.Mechanism {
		case "PLAIN":
			opts = append(opts, kgo.SASL(plain.Auth{User: s.Username, Pass: s.Password}.AsMechanism()))
		case "SCRAM-SHA-256":
			opts = append(opts, kgo.SASL(scram.Auth{User: s.Username, Pass: s.Password}.AsSha256Mechanism()))
		case "SCRAM-SHA-512":
			opts = append(opts, kgo.SASL(scram.Auth{User: s.Username, Pass: s.Password}.AsSha512Mechanism()))
		}
	}
	d := &brokerDialer{net: net.Dialer{Timeout: kafkaDialTimeout, KeepAlive: 30 * time.Second}}
	if t := k.TLS; t != nil && t.Enabled {
		tc := &tls.Config{InsecureSkipVerify: t.InsecureSkipVerify, MinVersion: tls.VersionTLS12} //nolint:gosec // opt-in
		d.caFile = t.CAFile
		if t.CAFile != "" {
			pem, err := os.ReadFile(t.CAFile)
			if err != nil {
				return nil, fmt.Errorf("kafka.tls.ca_file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("kafka.tls.ca_file %s holds no PEM certificate", t.CAFile)
			}
			tc.RootCAs = pool
		}
		if t.CertFile != "" || t.KeyFile != "" {
			cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
			if err != nil {
				return nil, fmt.Errorf("kafka.tls cert_file/key_file: %w", err)
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		d.tls = tc
	}
	return append(opts, kgo.Dialer(d.dial)), nil
}

// compressionCodec is kafka.compression's codec (config.Compressions; unset is
// config.DefaultCompression).
func compressionCodec(name string) (kgo.CompressionCodec, error) {
	switch cmp.Or(name, config.DefaultCompression) {
	case "none":
		return kgo.NoCompression(), nil
	case "gzip":
		return kgo.GzipCompression(), nil
	case "snappy":
		return kgo.SnappyCompression(), nil
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	}
	return kgo.CompressionCodec{}, fmt.Errorf("kafka.compression: unknown codec %q (use one of %s)", name, strings.Join(config.Compressions, ", "))
}

// brokerDialer opens broker connections: TCP, then the TLS handshake when kafka.tls is
// enabled. It replaces kgo.DialTLSConfig (same ServerName rule) so that it sees the
// handshake's failure and can say what to change.
type brokerDialer struct {
	net    net.Dialer
	tls    *tls.Config // nil: plaintext
	caFile string      // for messages: which CA file the certificate was checked against
}

func (d *brokerDialer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, kafkaDialTimeout)
	defer cancel()
	conn, err := d.net.DialContext(ctx, network, addr)
	if err != nil {
		return nil, explainDial(addr, err)
	}
	if d.tls == nil {
		return &plaintextConn{Conn: conn, addr: addr}, nil
	}
	c := d.tls.Clone()
	if c.ServerName == "" {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			conn.Close()
			return nil, fmt.Errorf("kafka broker address %q: %w", addr, err)
		}
		c.ServerName = host
	}
	tc := tls.Client(conn, c)
	if err := tc.HandshakeContext(ctx); err != nil {
		conn.Close()
		return nil, d.explainHandshake(addr, err)
	}
	return tc, nil
}

// BrokerConnError is a broker connection that failed for a reason the configuration can fix:
// it names the broker, what failed, the cause, and the fix.
type BrokerConnError struct {
	Addr string
	What string // "refused the connection", "TLS: its certificate is not valid", ...
	Err  error  // the cause; nil when What says it all
	Fix  string
}

func (e *BrokerConnError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("kafka broker %s: %s (fix: %s)", e.Addr, e.What, e.Fix)
	}
	return fmt.Sprintf("kafka broker %s: %s: %v (fix: %s)", e.Addr, e.What, e.Err, e.Fix)
}

// Unwrap gives the cause, except io.EOF: franz-go replaces any dial error that is io.EOF by
// its own message, which would drop this one.
func (e *BrokerConnError) Unwrap() error {
	if errors.Is(e.Err, io.EOF) {
		return nil
	}
	return e.Err
}

// explainDial names the broker and the fix of a failed TCP connect.
func explainDial(addr string, err error) error {
	if errors.Is(err, syscall.ECONNREFUSED) {
		return &BrokerConnError{addr, "refused the connection", err, "check kafka.brokers and that a broker listens there; " +
			"addresses other than the seeds come from the brokers' advertised.listeners"}
	}
	return &BrokerConnError{addr, "connecting", err, "check kafka.brokers, DNS and the network path to the brokers"}
}

// explainHandshake names the broker, the cause and the fix of a failed TLS handshake.
func (d *brokerDialer) explainHandshake(addr string, err error) error {
	trusted := "the system's CA certificates"
	if d.caFile != "" {
		trusted = "kafka.tls.ca_file " + d.caFile
	}
	var (
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		header   tls.RecordHeaderError
		alert    tls.AlertError
	)
	switch {
	case errors.As(err, &unknown):
		return &BrokerConnError{addr, "TLS: its certificate is not signed by a CA in " + trusted, err,
			"set kafka.tls.ca_file to the PEM file of the CA that signed the brokers' certificates"}
	case errors.As(err, &hostname):
		return &BrokerConnError{addr, "TLS: its certificate does not name the host cdcd connected to", err,
			"list the brokers in kafka.brokers by a name the certificate holds, and make the brokers' advertised.listeners use such names too, " +
				"or reissue the certificates with these names in subjectAltName"}
	case errors.As(err, &invalid):
		return &BrokerConnError{addr, "TLS: its certificate is not valid", err,
			"renew the broker's certificate, or check this machine's clock if the dates look right"}
	case errors.As(err, &header), errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET):
		return &BrokerConnError{addr, "TLS handshake failed: the port does not speak TLS", err,
			"use the brokers' SSL or SASL_SSL listener port in kafka.brokers, or set kafka.tls.enabled: false for a PLAINTEXT or SASL_PLAINTEXT listener"}
	case errors.As(err, &alert):
		return &BrokerConnError{addr, "TLS: the broker refused the handshake", err,
			"if the broker requires client certificates, set kafka.tls.cert_file and key_file to a certificate its truststore accepts; " +
				"otherwise compare the TLS versions and ciphers the broker allows"}
	}
	return &BrokerConnError{addr, "TLS handshake failed", err, "check the kafka.tls section against the broker's listener"}
}

// plaintextConn recognises a TLS record as the first bytes a plaintext connection receives:
// a TLS listener answers a Kafka request with an alert. Only the first read is inspected.
type plaintextConn struct {
	net.Conn
	addr    string
	checked atomic.Bool
}

func (c *plaintextConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if !c.checked.Load() && n > 0 {
		c.checked.Store(true)
		// A TLS record starts with its content type (21 alert, 22 handshake) and major
		// version 3; a Kafka response starts with a 4-byte size, far below 0x15030000.
		if n >= 2 && (p[0] == 21 || p[0] == 22) && p[1] == 3 {
			return 0, &BrokerConnError{c.addr, "the broker answered a plaintext request with TLS: the port is an SSL or SASL_SSL listener", nil,
				"set kafka.tls.enabled: true with kafka.tls.ca_file the CA of the brokers' certificates, and kafka.sasl if the listener is SASL_SSL"}
		}
	}
	return n, err
}

// kafkaFix is the fix for a failure talking to Kafka, for `cdcd check`: that of a
// BrokerConnError, or one for the broker's answer.
func kafkaFix(cfg *config.Config, err error) string {
	var (
		eof  *kgo.ErrFirstReadEOF
		conn *BrokerConnError
	)
	switch {
	case errors.Is(err, kerr.SaslAuthenticationFailed):
		fix := "the brokers refused the login: check kafka.sasl.username and password, and that this user exists for mechanism " + saslMechanism(cfg)
		if m := saslMechanism(cfg); strings.HasPrefix(m, "SCRAM-") {
			fix += " (Kafka: kafka-configs --alter --entity-type users --entity-name USER --add-config '" + m + "=[password=...]')"
		}
		return fix
	case errors.Is(err, kerr.UnsupportedSaslMechanism), errors.Is(err, kerr.IllegalSaslState):
		return "the listener does not enable kafka.sasl.mechanism " + saslMechanism(cfg) + ": use one listed in the broker's sasl.enabled.mechanisms"
	case errors.As(err, &eof) && cfg.Kafka.SASL == nil:
		return "the listener closes connections that do not log in: set kafka.sasl (mechanism, username, password) as the listener requires"
	case errors.As(err, &eof):
		return "the broker closed the connection: check that kafka.tls and kafka.sasl match the listener of this port (SSL/SASL_SSL need kafka.tls.enabled: true)"
	case errors.As(err, &conn):
		return conn.Fix
	case errors.Is(err, kerr.TopicAuthorizationFailed), errors.Is(err, kerr.ClusterAuthorizationFailed),
		errors.Is(err, kerr.TransactionalIDAuthorizationFailed):
		return "grant the principal what the message names: WRITE and DESCRIBE on cdcd's topics (and CREATE if cdcd creates them), " +
			"IDEMPOTENT_WRITE on the cluster, WRITE and DESCRIBE on transactional ids cdcd-*"
	}
	return "check kafka.brokers, the network path, the brokers' advertised.listeners, and that kafka.tls and kafka.sasl match the listener"
}

func saslMechanism(cfg *config.Config) string {
	if cfg.Kafka.SASL == nil {
		return "(none configured)"
	}
	return cfg.Kafka.SASL.Mechanism
}
