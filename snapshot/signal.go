package snapshot

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Signal is an on-demand snapshot request (`cdcd snapshot`) as a source carries it through its
// log: JSON in a logical message (Postgres) or a signal table row (MySQL).
//
// Every role that can log in may write such a message (pg_logical_emit_message needs no
// privilege) or, often, such a row. So a request proves who made it: MAC is an HMAC-SHA-256,
// over every other field, with the pipeline's signal key, which only cdcd's configuration
// holds (snapshot.signal_key, or derived from the source's password). A request without a
// valid MAC is ignored, counted (cdcd_signals_rejected_total) and logged with where in the log
// it was. Its condition is parsed in the grammar of ParseCondition, never run as given.
type Signal struct {
	Pipeline string `json:"pipeline"`
	Table    string `json:"table"`
	Where    string `json:"where,omitempty"`
	ID       string `json:"id"`
	MAC      string `json:"mac,omitempty"`
}

// ErrNoSignalKey is returned when a request is made for a pipeline without a signal key.
var ErrNoSignalKey = errors.New("the pipeline has no signal key: snapshot requests must be signed with a secret only cdcd's configuration holds")

// mac is the request's MAC: every field, length-prefixed, under key.
func (s Signal) mac(key []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte("cdcd snapshot request v1"))
	for _, f := range []string{s.Pipeline, s.Table, s.Where, s.ID} {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(f)))
		h.Write(n[:])
		h.Write([]byte(f))
	}
	return h.Sum(nil)
}

// NewSignal encodes a request for pipeline, with a fresh id, signed with key. It refuses a
// condition outside the grammar and a missing key.
func NewSignal(key []byte, pipeline, table, where string) (id string, content []byte, err error) {
	if len(key) == 0 {
		return "", nil, ErrNoSignalKey
	}
	if where != "" {
		if _, err := ParseCondition(where); err != nil {
			return "", nil, err
		}
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	id = hex.EncodeToString(b[:])
	s := Signal{Pipeline: pipeline, Table: table, Where: where, ID: id}
	s.MAC = hex.EncodeToString(s.mac(key))
	content, _ = json.Marshal(s)
	return id, content, nil
}

// Reasons a request is rejected (the label values of cdcd_signals_rejected_total).
const (
	RejectMalformed    = "malformed"
	RejectUnsigned     = "unsigned"
	RejectBadSignature = "bad_signature"
	RejectNoKey        = "no_key"
	RejectCondition    = "invalid_condition"
)

// SignalMetrics is implemented by a Config.Metrics that counts rejected requests.
type SignalMetrics interface {
	SignalRejected(pipeline, reason string)
}

// HandleSignal queues the request a source found in its log (stream goroutine). Requests of
// other pipelines are ignored (they are signed with that pipeline's key); a request of this
// pipeline without a valid MAC, or with a condition outside the grammar, is rejected: counted,
// and logged with origin (where the database says the request came from). A signed request
// that cannot be taken (a table the pipeline does not capture) is logged and dropped.
// normalize turns the request's table name into the form of Config.Tables.
func (e *Engine) HandleSignal(content []byte, normalize func(string) string, origin ...any) {
	var sig Signal
	if err := json.Unmarshal(content, &sig); err != nil {
		e.rejectSignal(RejectMalformed, sig, fmt.Sprintf("not valid JSON: %v", err), origin)
		return
	}
	if sig.Pipeline != e.cfg.Pipeline {
		return
	}
	switch mac, err := hex.DecodeString(sig.MAC); {
	case len(e.cfg.SignalKey) == 0:
		e.rejectSignal(RejectNoKey, sig, "the pipeline has no signal key (set snapshot.signal_key, or give the source a password)", origin)
		return
	case sig.MAC == "":
		e.rejectSignal(RejectUnsigned, sig, "not signed: anyone who can write to the log may have sent it", origin)
		return
	case err != nil || !hmac.Equal(mac, sig.mac(e.cfg.SignalKey)):
		e.rejectSignal(RejectBadSignature, sig, "its signature does not match the pipeline's signal key", origin)
		return
	}
	if sig.Where != "" {
		if _, err := ParseCondition(sig.Where); err != nil {
			e.rejectSignal(RejectCondition, sig, err.Error(), origin)
			return
		}
	}
	if err := e.Request(normalize(sig.Table), sig.Where, sig.ID); err != nil {
		e.log.Warn("ignoring snapshot request: "+err.Error(), "table", sig.Table, "request", sig.ID)
	}
}

func (e *Engine) rejectSignal(reason string, sig Signal, why string, origin []any) {
	if m, ok := e.cfg.Metrics.(SignalMetrics); ok && m != nil {
		m.SignalRejected(e.cfg.Pipeline, reason)
	}
	// Writing messages costs a forger little: at most rejectLogBurst lines a minute, the
	// rest counted (the metric counts every one).
	r := &e.rejects
	if now := time.Now(); now.Sub(r.window) >= time.Minute {
		r.window, r.logged = now, 0
	}
	if r.logged >= rejectLogBurst {
		r.suppressed++
		return
	}
	r.logged++
	args := append([]any{"reason", reason, "table", clip(sig.Table), "where", clip(sig.Where), "request", clip(sig.ID)}, origin...)
	if r.suppressed > 0 {
		args = append(args, "not_logged_before", r.suppressed)
		r.suppressed = 0
	}
	e.log.Warn("rejected a snapshot request: "+why, args...)
}

// rejectLogBurst is how many rejected requests are logged a minute.
const rejectLogBurst = 10

// rejectLog limits the log lines of rejected requests (stream goroutine only).
type rejectLog struct {
	window     time.Time
	logged     int
	suppressed int
}

// clip bounds text from the log that goes into a log line.
func clip(s string) string {
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}
