package config

import (
	"fmt"
	"github.com/cdcd-dev/cdcd/source/mysql/dsn"
	"net/url"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// collectSecrets gathers every secret value of a (possibly invalid) configuration, so that
// messages about it and everything cdcd prints later can mask them.
func collectSecrets(c *Config, fromFiles []string) []string {
	out := append([]string(nil), fromFiles...)
	add := func(s string) {
		if s != "" {
			out = append(out, s)
		}
	}
	add(urlPassword(c.SchemaRegistry.URL))
	add(c.SchemaRegistry.Password)
	if s := c.Kafka.SASL; s != nil {
		add(s.Password)
	}
	for _, p := range c.Pipelines {
		add(p.Snapshot.SignalKey)
		add(p.MaskKey)
		if pg := p.Source.Postgres; pg != nil && pg.DSN != "" {
			add(urlPassword(pg.DSN))
			add(keyValuePassword(pg.DSN))
			// pgconn also finds PGPASSWORD and ~/.pgpass: those are secrets too.
			if pc, err := pgconn.ParseConfig(pg.DSN); err == nil {
				add(pc.Password)
			}
		}
		if my := p.Source.MySQL; my != nil && my.DSN != "" {
			if d, err := dsn.Parse(my.DSN); err == nil {
				add(d.Password)
			} else if at := strings.LastIndex(my.DSN, "@"); at >= 0 {
				if _, pw, ok := strings.Cut(my.DSN[:at], ":"); ok {
					add(pw)
				}
			}
		}
	}
	return out
}

// urlPassword is the password of a URL's user info, decoded, or "".
func urlPassword(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return ""
	}
	pw, _ := u.User.Password()
	return pw
}

var kvPasswordRE = regexp.MustCompile(`(?:^|\s)password\s*=\s*('((?:[^'\\]|\\.)*)'|\S+)`)

// keyValuePassword is the password of a key=value connection string, or "".
func keyValuePassword(s string) string {
	m := kvPasswordRE.FindStringSubmatch(s)
	if m == nil {
		return ""
	}
	if strings.HasPrefix(m[1], "'") {
		return strings.NewReplacer(`\'`, `'`, `\\`, `\`).Replace(m[2])
	}
	return m[1]
}

// expansionMark stands in for each ${...} of a value while the value's raw text is examined:
// a password made of it came from the environment or a file.
const expansionMark = "CDCDEXPANDED"

var expansionRE = regexp.MustCompile(`\$\{[^}]*\}`)

// warnings are the valid but unwise things in the file: a password written inline in a URL,
// a DSN or a password key, where it shows in every copy of the file and every paste of it.
func (l *loader) warnings(c *Config) []Problem {
	var ws []Problem
	add := func(path, msg, fix string) {
		ws = append(ws, Problem{Path: path, Line: l.lineOf(path), Message: msg, Fix: fix})
	}
	// rawOf is the value as written, with each ${...} replaced by expansionMark.
	rawOf := func(path, expanded string) string {
		if r, ok := l.raw[path]; ok {
			return expansionRE.ReplaceAllString(r, expansionMark)
		}
		return expanded
	}
	inline := func(pw string) bool { return pw != "" && !strings.Contains(pw, expansionMark) }

	if urlPassword(c.SchemaRegistry.URL) != "" {
		add("schema_registry.url", "the URL carries a user and password: cdcd masks them in what it prints, but they show wherever the file or the URL is copied",
			"remove them from the URL and set schema_registry.username and schema_registry.password (password: ${file:/run/secrets/registry_password})")
	}
	if inline(rawOf("schema_registry.password", c.SchemaRegistry.Password)) {
		add("schema_registry.password", "the password is written in the file", "read it from a file: password: ${file:/run/secrets/registry_password}")
	}
	if s := c.Kafka.SASL; s != nil && inline(rawOf("kafka.sasl.password", s.Password)) {
		add("kafka.sasl.password", "the password is written in the file", "read it from a file: password: ${file:/run/secrets/kafka_password}")
	}
	for i, p := range c.Pipelines {
		if pg := p.Source.Postgres; pg != nil {
			path := fmt.Sprintf("pipelines[%d].source.postgres.dsn", i)
			raw := rawOf(path, pg.DSN)
			if inline(urlPassword(raw)) || inline(keyValuePassword(raw)) {
				add(path, "the connection string carries a password written in the file",
					"replace the password with ${file:/run/secrets/pg_password} (read from a mounted secret) or ${PG_PASSWORD} (from the environment), e.g. postgres://cdcd:${file:/run/secrets/pg_password}@db:5432/shop")
			}
		}
		if my := p.Source.MySQL; my != nil {
			path := fmt.Sprintf("pipelines[%d].source.mysql.dsn", i)
			if d, err := dsn.Parse(rawOf(path, my.DSN)); err == nil && inline(d.Password) {
				add(path, "the connection string carries a password written in the file",
					"replace the password with ${file:/run/secrets/mysql_password} or ${MYSQL_PASSWORD}, e.g. cdcd:${file:/run/secrets/mysql_password}@tcp(db:3306)/inventory")
			}
		}
	}
	return ws
}
