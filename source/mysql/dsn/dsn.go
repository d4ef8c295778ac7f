// Package dsn parses the MySQL/MariaDB connection strings cdcd accepts
// (go-sql-driver style: user[:password]@tcp(host:port)/[database][?params]). It imports
// nothing of cdcd's, so the configuration (validation, secret redaction) and the source share
// one parser. Errors never echo the password.
package dsn

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// DSN is a parsed user[:password]@tcp(host:port)/[database][?params].
type DSN struct {
	User, Password, Addr, Database string
	Params                         url.Values
}

// maxEcho bounds how much of a bad string an error repeats.
const maxEcho = 120

func quote(s string) string {
	if len(s) <= maxEcho {
		return strconv.Quote(s)
	}
	cut := maxEcho
	for cut > 0 && !utf8Start(s[cut]) {
		cut--
	}
	return strconv.Quote(s[:cut]) + fmt.Sprintf("... (%d bytes)", len(s))
}

func utf8Start(b byte) bool { return b&0xC0 != 0x80 }

// Parse parses a connection string.
func Parse(s string) (DSN, error) {
	var d DSN
	at := strings.LastIndex(s, "@")
	if at < 0 {
		return d, fmt.Errorf("the connection string %s names no user (user@tcp(host:port)/)", quote(Redact(s)))
	}
	d.User, d.Password, _ = strings.Cut(s[:at], ":")
	rest := s[at+1:]
	if !strings.HasPrefix(rest, "tcp(") {
		return d, fmt.Errorf("the connection string %s must use tcp(host:port)", quote(Redact(s)))
	}
	end := strings.IndexByte(rest, ')')
	if end < 0 {
		return d, fmt.Errorf("the connection string %s has an unclosed tcp(", quote(Redact(s)))
	}
	d.Addr = rest[4:end]
	if _, _, err := net.SplitHostPort(d.Addr); err != nil {
		return d, fmt.Errorf("the address %s is not host:port", quote(d.Addr))
	}
	rest = rest[end+1:]
	if rest != "" && rest[0] != '/' {
		return d, fmt.Errorf("the connection string %s needs a / after tcp(...)", quote(Redact(s)))
	}
	rest = strings.TrimPrefix(rest, "/")
	db, q, _ := strings.Cut(rest, "?")
	d.Database = db
	var err error
	if d.Params, err = url.ParseQuery(q); err != nil {
		return d, fmt.Errorf("the parameters %s do not parse: %v", quote(q), err)
	}
	return d, nil
}

// Redact replaces the password of a connection string with ***.
func Redact(s string) string {
	at := strings.LastIndex(s, "@")
	if at < 0 {
		return s
	}
	if u, _, ok := strings.Cut(s[:at], ":"); ok {
		return u + ":***" + s[at:]
	}
	return s
}
