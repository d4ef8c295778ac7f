// Package redact keeps credentials out of everything cdcd prints: logs, /readyz, command
// output, errors and panics.
//
// Two nets, applied together:
//
//   - by form: the password of a URL's user info (scheme://user:PASSWORD@host), of a
//     key=value connection string (password=PASSWORD, also quoted), and of a MySQL DSN
//     (user:PASSWORD@tcp(host:port)/db) is replaced by "***" wherever such text appears;
//   - by value: every secret the configuration holds (connection-string and registry
//     passwords, SASL passwords, anything read from ${file:...}) is replaced by "***"
//     wherever it appears, in any form a printer may give it (raw, percent-encoded, quoted,
//     JSON-escaped). This catches the forms no pattern foresees, such as a library error
//     that prints a password on its own.
//
// What must stay true: output is redacted at the boundary where it leaves the process (the
// Writer wraps stdout and stderr; /readyz reasons pass through String), so code inside cdcd
// may wrap errors freely. A secret shorter than MinSecretLen is masked by form only: masking
// every "abc" in every log line would make the logs unreadable.
//
// This package imports nothing of cdcd's, so any package may use it.
package redact

import (
	"bytes"
	"encoding/json"
	"io"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// Mask replaces a redacted secret.
const Mask = "***"

// MinSecretLen is the shortest secret masked by value wherever it appears.
const MinSecretLen = 4

var (
	// password=... in a key=value connection string or a URL query; quoted values may hold
	// spaces and escaped quotes, and the whole string may itself be quoted (\"...\").
	keyValue = regexp.MustCompile(`(?i)(^|[^a-z0-9_])(password|passwd|pwd|sslpassword)(\s*=\s*)(\$\{[^}\s]*\}|\\"(?:[^"\\]|\\[^"])*(?:\\")?|'(?:[^'\\]|\\.)*'?|"(?:[^"\\]|\\.)*"?|[^\s&;,'"` + "`" + `)\]}]+)`)
	// user:password@tcp(host:port)/db (go-sql-driver/mysql and go-mysql DSNs).
	mysqlDSN = regexp.MustCompile("(^|[\\s\"'`=(\\[{,])([^\\s:\"'`@/(]*):([^\\s\"'`]*)@((?:tcp|tcp4|tcp6|unix)\\(|/)")
)

// String returns s with the credentials recognisable by their form replaced by Mask.
func String(s string) string {
	// Each pattern runs only when a cheap scan finds its shape: this runs on every log line.
	if strings.Contains(s, "://") {
		s = maskURLPasswords(s)
	}
	if strings.Contains(s, "=") && (containsFold(s, "pass") || containsFold(s, "pwd")) {
		s = keyValue.ReplaceAllStringFunc(s, func(m string) string {
			sub := keyValue.FindStringSubmatch(m)
			if reference(sub[4]) {
				return m
			}
			return sub[1] + sub[2] + sub[3] + Mask
		})
	}
	if strings.Contains(s, "@tcp") || strings.Contains(s, "@unix(") || strings.Contains(s, "@/") {
		s = mysqlDSN.ReplaceAllStringFunc(s, func(m string) string {
			sub := mysqlDSN.FindStringSubmatch(m)
			if sub[3] == "" || sub[3] == Mask || reference(sub[3]) {
				return m
			}
			return sub[1] + sub[2] + ":" + Mask + "@" + sub[4]
		})
	}
	return s
}

// maskURLPasswords masks the password of every scheme://user:password@host in s. The
// password runs from the first ':' of the user info to the last '@' before the authority
// ends, as net/url reads it. (A scan, not a regexp: this runs on every log line.)
func maskURLPasswords(s string) string {
	var b strings.Builder
	rest := s
	for {
		i := strings.Index(rest, "://")
		if i < 0 {
			break
		}
		auth := rest[i+3:]
		end := strings.IndexAny(auth, "/?#\"'` \t\r\n\\")
		if end < 0 {
			end = len(auth)
		}
		at := strings.LastIndexByte(auth[:end], '@')
		colon := strings.IndexByte(auth[:max(at, 0)], ':')
		if at < 0 || colon < 0 || auth[colon+1:at] == Mask || reference(auth[colon+1:at]) {
			b.WriteString(rest[:i+3])
			rest = auth
			continue
		}
		b.WriteString(rest[:i+3])
		b.WriteString(auth[:colon+1])
		b.WriteString(Mask)
		rest = auth[at:]
	}
	if b.Len() == 0 {
		return s
	}
	b.WriteString(rest)
	return b.String()
}

// containsFold reports whether s contains the lowercase ASCII word w in any case.
func containsFold(s, w string) bool {
	for i := 0; i+len(w) <= len(s); i++ {
		if s[i]|0x20 != w[0] {
			continue
		}
		j := 1
		for j < len(w) && s[i+j]|0x20 == w[j] {
			j++
		}
		if j == len(w) {
			return true
		}
	}
	return false
}

// reference reports whether a password text is a configuration reference such as
// ${file:/run/secrets/pw} or ${PG_PASSWORD} (in a fix or an example), not a password: a
// literal "$" in a configuration value is written "$$", and the value net still masks a real
// password of that shape.
func reference(pw string) bool {
	pw = strings.Trim(pw, `'"\`)
	return strings.HasPrefix(pw, "${") && strings.HasSuffix(pw, "}") && !strings.Contains(pw, "@")
}

// Secrets is a set of known secret values. The zero value is not usable; use New. It is safe
// for concurrent use: secrets may be added while other goroutines print.
type Secrets struct {
	mu       sync.RWMutex
	values   map[string]bool // every variant of every secret
	replacer *strings.Replacer
}

// New returns a set holding secrets (and their printed variants).
func New(secrets ...string) *Secrets {
	s := &Secrets{values: map[string]bool{}}
	s.Add(secrets...)
	return s
}

// Add adds secrets to the set. Empty and too-short values are ignored (see MinSecretLen).
func (s *Secrets) Add(secrets ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	changed := false
	for _, sec := range secrets {
		if len(sec) < MinSecretLen {
			continue
		}
		for _, v := range variants(sec) {
			if len(v) >= MinSecretLen && !s.values[v] {
				s.values[v] = true
				changed = true
			}
		}
	}
	if !changed {
		return
	}
	// Longest first, so a secret that contains another is masked whole.
	vals := make([]string, 0, len(s.values))
	for v := range s.values {
		vals = append(vals, v)
	}
	sort.Slice(vals, func(i, j int) bool {
		if len(vals[i]) != len(vals[j]) {
			return len(vals[i]) > len(vals[j])
		}
		return vals[i] < vals[j]
	})
	pairs := make([]string, 0, 2*len(vals))
	for _, v := range vals {
		pairs = append(pairs, v, Mask)
	}
	s.replacer = strings.NewReplacer(pairs...)
}

// Len reports how many secret variants the set masks.
func (s *Secrets) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.values)
}

// variants are the forms a printer may give a secret: as is, percent-encoded (URL user info,
// path or query), Go-quoted (%q, slog's text handler) and JSON-escaped (slog's JSON handler,
// encoding/json with and without HTML escaping).
func variants(sec string) []string {
	out := []string{sec, url.QueryEscape(sec), url.PathEscape(sec)}
	if ui := url.UserPassword("u", sec).String(); strings.HasPrefix(ui, "u:") {
		out = append(out, ui[2:])
	}
	if q := strconv.Quote(sec); len(q) >= 2 {
		out = append(out, q[1:len(q)-1])
	}
	if q := strconv.QuoteToASCII(sec); len(q) >= 2 {
		out = append(out, q[1:len(q)-1])
	}
	for _, html := range []bool{true, false} {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(html)
		if enc.Encode(sec) == nil {
			j := strings.TrimSuffix(b.String(), "\n")
			if len(j) >= 2 {
				out = append(out, j[1:len(j)-1])
			}
		}
	}
	return out
}

// String returns x with every known secret and every credential recognisable by its form
// replaced by Mask. A nil set redacts by form only.
func (s *Secrets) String(x string) string {
	if s != nil {
		s.mu.RLock()
		r := s.replacer
		s.mu.RUnlock()
		if r != nil {
			x = r.Replace(x)
		}
	}
	return String(x)
}

// Writer returns a writer that redacts each Write before passing it to w. A secret is caught
// when it lies inside one Write: log/slog handlers write one record per call, fmt.Fprint*
// one call's output.
func (s *Secrets) Writer(w io.Writer) io.Writer { return &writer{s: s, w: w} }

type writer struct {
	s *Secrets
	w io.Writer
}

func (w *writer) Write(p []byte) (int, error) {
	if _, err := io.WriteString(w.w, w.s.String(string(p))); err != nil {
		return 0, err
	}
	return len(p), nil
}
