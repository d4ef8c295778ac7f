package config

import (
	"crypto/hmac"
	"crypto/sha256"
	"github.com/cdcd-dev/cdcd/source/mysql/dsn"

	"github.com/jackc/pgx/v5/pgconn"
)

// MinSignalKeyLen is the shortest snapshot.signal_key accepted.
const MinSignalKeyLen = 16

// SignalKey is the key on-demand snapshot requests of the pipeline are signed and checked
// with: snapshot.signal_key when set, else derived from the source's password (so holders of
// cdcd's credentials, and only they, can sign). Each pipeline's key differs. nil when the
// configuration holds no secret: then requests are refused.
func (p *Pipeline) SignalKey() []byte {
	secret := p.Snapshot.SignalKey
	if secret == "" {
		switch {
		case p.Source.Postgres != nil:
			if pc, err := pgconn.ParseConfig(p.Source.Postgres.DSN); err == nil {
				secret = pc.Password
			}
		case p.Source.MySQL != nil:
			if d, err := dsn.Parse(p.Source.MySQL.DSN); err == nil {
				secret = d.Password
			}
		}
	}
	if secret == "" {
		return nil
	}
	h := hmac.New(sha256.New, []byte(secret))
	h.Write([]byte("cdcd snapshot signal key v1\x00" + p.Name))
	return h.Sum(nil)
}
