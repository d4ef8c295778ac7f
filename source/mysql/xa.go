package mysql

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cdcd-dev/cdcd/change"
	"github.com/cdcd-dev/cdcd/checks"
	"github.com/go-mysql-org/go-mysql/client"
	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
)

// XA transactions, as both flavours log them:
//
//	GTID (MariaDB: flag FL_PREPARED_XA; MySQL: then a Query "XA START xid")
//	rows ...
//	Query "XA END xid"
//	XA_PREPARE event               the branch is prepared, not committed
//	... other transactions ...
//	GTID, Query "XA COMMIT xid"    or "XA ROLLBACK xid", possibly much later
//
// A prepared branch's rows are held (decoded rows events, not yet changes) and published at
// its XA COMMIT, with the commit's position, as if they were written there; an XA ROLLBACK
// drops them. While a branch is prepared, every later transaction resumes from the branch's
// start (its positions stay its own), so a restart reads the prepared rows again and the
// pipeline drops what it had published. MySQL's XA COMMIT ... ONE PHASE is an XA_PREPARE
// event with its one_phase byte set: a plain commit.

// mariaFlPreparedXA is MariaDB's GTID flag of a group that ends in XA PREPARE.
const mariaFlPreparedXA = 0x40

// xaMaxHeldRows bounds the row changes held for prepared branches.
const xaMaxHeldRows = 1 << 20

type heldRows struct {
	typ replication.EventType
	tv  *tableVersion
	ev  *replication.RowsEvent
}

// xaBranch is an XA branch being prepared or prepared.
type xaBranch struct {
	xid   string // as the server logs it: X'hex',X'hex',formatID
	token string // resume token of the prepare group's start
	rows  []heldRows
	n     int // row changes held
}

// xaStart makes the open transaction a branch being prepared: its rows are held.
func (st *stream) xaStart(xid string) {
	tok := st.txStart
	if t, err := ParseToken(tok); err == nil && t.GTID != "" {
		// Later transactions share this token while the branch is prepared: without the
		// branch's GTID, a failover resumes before the branch, never after it.
		t.GTID = ""
		tok = t.String()
	}
	st.xa = &xaBranch{xid: xid, token: tok}
}

// hold keeps a rows event of the branch being prepared.
func (st *stream) hold(typ replication.EventType, tv *tableVersion, e *replication.RowsEvent) error {
	_, step := opOf(typ)
	st.xa.rows = append(st.xa.rows, heldRows{typ, tv, e})
	st.xa.n += len(e.Rows) / step
	st.xaHeld += len(e.Rows) / step
	if st.xaHeld > xaMaxHeldRows {
		return &FatalError{Err: fmt.Errorf("XA transactions prepared but not yet committed hold more than %d row changes of captured tables (branch %s, prepared at %s); cdcd keeps them in memory until their XA COMMIT; "+
			"fix: commit or roll back prepared branches promptly (XA RECOVER lists them), or make XA transactions smaller", xaMaxHeldRows, st.xa.xid, describe(change.Position{Resume: st.xa.token}))}
	}
	return nil
}

// xaPrepared ends the group of an XA_PREPARE event: the branch waits for its commit, or
// (one_phase) is committed now.
func (st *stream) xaPrepared(ctx context.Context, h *replication.EventHeader, e *replication.GenericEvent) error {
	b := st.xa
	st.xa = nil
	if !st.inTx {
		return nil
	}
	if b != nil {
		if e != nil && len(e.Data) > 0 && e.Data[0] != 0 { // one_phase
			st.xaHeld -= b.n
			if err := st.publishHeld(ctx, h, b); err != nil {
				return err
			}
		} else {
			st.xaPending = append(st.xaPending, b)
		}
	}
	return st.end(ctx, h)
}

// xaQuery handles the XA statements of a query event.
func (st *stream) xaQuery(ctx context.Context, h *replication.EventHeader, q string) error {
	f := strings.Fields(q)
	if len(f) < 2 {
		return nil
	}
	xid := ""
	if len(f) > 2 {
		xid = strings.Join(f[2:], " ")
	}
	verb := strings.ToUpper(f[1])
	switch verb {
	case "START", "BEGIN":
		if !st.inTx {
			if err := st.begin(ctx, h, ""); err != nil {
				return err
			}
		}
		st.xaStart(xid)
	case "END":
		if st.xa != nil {
			st.xa.xid = xid
		}
	case "COMMIT", "ROLLBACK":
		if !st.inTx {
			if err := st.begin(ctx, h, ""); err != nil {
				return err
			}
		}
		xid = strings.TrimSuffix(xid, " ONE PHASE")
		i := -1
		for j, b := range st.xaPending {
			if b.xid == xid {
				i = j
				break
			}
		}
		if i < 0 {
			st.src.log.Warn("XA "+verb+" of a branch prepared before the pipeline's start position: if it changed captured tables, those changes are not published",
				"xid", xid, "position", describe(change.Position{Resume: st.txToken}))
			return st.end(ctx, h)
		}
		b := st.xaPending[i]
		st.xaPending = append(st.xaPending[:i], st.xaPending[i+1:]...)
		st.xaHeld -= b.n
		if verb == "COMMIT" {
			if err := st.publishHeld(ctx, h, b); err != nil {
				return err
			}
		}
		return st.end(ctx, h)
	}
	return nil
}

// publishHeld emits a branch's rows in the open transaction.
func (st *stream) publishHeld(ctx context.Context, h *replication.EventHeader, b *xaBranch) error {
	for _, r := range b.rows {
		if err := st.rows(ctx, h, r.typ, r.tv, r.ev); err != nil {
			return err
		}
	}
	return nil
}

// A brand-new pipeline starts at the server's current position. A branch prepared before that
// position and committed after it would be lost: its rows are invisible to a snapshot while
// only prepared, and its XA COMMIT, after the start, matches no branch the stream saw. So a
// first start takes its position only while XA RECOVER lists no prepared branch, before and
// after reading it (a branch prepared and committed within those few milliseconds is the
// one case left: its commit is then only logged). XA RECOVER is server-wide: a branch of any
// database holds the start. Where the user may not run it (MySQL 8.0.19+ needs
// XA_RECOVER_ADMIN; MariaDB lets every user) the pipeline stops with the grant, unless
// source.mysql.xa_recover: skip says to start unchecked.

// xaFirstStartWait is how long a first start waits for prepared branches to end before it
// fails (the pipeline retries: waiting on with its backoff).
var xaFirstStartWait = 5 * time.Second

// XAPreparedError: a first start found XA branches prepared (retried: they end, in time).
type XAPreparedError struct{ XIDs []string }

func (e *XAPreparedError) Error() string {
	return fmt.Sprintf("XA RECOVER lists %d prepared XA transaction branch(es) (%s): a new pipeline does not start while one is, since a branch prepared before its start position and committed after it would be lost "+
		"(invisible to the snapshot while prepared, and its XA COMMIT would match no branch the stream saw); cdcd waits and retries; "+
		"fix: XA COMMIT or XA ROLLBACK the branches (a branch whose application is gone stays prepared until someone does)",
		len(e.XIDs), strings.Join(e.XIDs, ", "))
}

// preparedXA lists the data (gtrid and bqual) of the branches XA RECOVER reports prepared.
func preparedXA(conn *client.Conn) ([]string, error) {
	r, err := conn.Execute("XA RECOVER")
	if err != nil {
		return nil, err
	}
	var out []string
	for i := 0; i < r.RowNumber(); i++ {
		data, _ := r.GetString(i, 3)
		out = append(out, fmt.Sprintf("%q", data))
	}
	return out, nil
}

// xaRecoverDenied reports an error of a user who may not run XA RECOVER.
func xaRecoverDenied(err error) bool {
	var me *gomysql.MyError
	return errors.As(err, &me) && (me.Code == gomysql.ER_SPECIFIC_ACCESS_DENIED_ERROR || me.Code == gomysql.ER_ACCESS_DENIED_ERROR || me.Code == gomysql.ER_DBACCESS_DENIED_ERROR)
}

// xaProbe is what a first start asks the server: the branches XA RECOVER lists, the current
// position, and the account cdcd is connected as (for the fix of a refused XA RECOVER).
type xaProbe struct {
	prepared func() ([]string, error)
	position func() (Token, error)
	account  func() string
}

func connProbe(conn *client.Conn, flavor string) xaProbe {
	return xaProbe{
		prepared: func() ([]string, error) { return preparedXA(conn) },
		position: func() (Token, error) { return currentPosition(conn, flavor) },
		account: func() string {
			r, err := conn.Execute("SELECT CURRENT_USER()")
			if err != nil {
				return ""
			}
			a, _ := r.GetString(0, 0)
			return a
		},
	}
}

// firstPosition is a brand-new pipeline's start: the current position, read while no XA
// branch is prepared (see above).
func (s *Source) firstPosition(ctx context.Context, conn *client.Conn, flavor string) (Token, error) {
	return s.firstPositionOf(ctx, flavor, connProbe(conn, flavor))
}

func (s *Source) firstPositionOf(ctx context.Context, flavor string, p xaProbe) (Token, error) {
	if s.cfg.XARecover == XARecoverSkip {
		s.log.Info("xa_recover: skip: a new pipeline takes its first position without asking XA RECOVER; an XA branch prepared before it and committed after it is not published")
		return p.position()
	}
	deadline := time.Now().Add(xaFirstStartWait)
	for {
		before, err := p.prepared()
		if err != nil {
			return Token{}, xaRecoverFailed(flavor, p.account, err)
		}
		if len(before) == 0 {
			t, err := p.position()
			if err != nil {
				return t, err
			}
			after, err := p.prepared()
			if err != nil {
				return Token{}, xaRecoverFailed(flavor, p.account, err)
			}
			if len(after) == 0 {
				return t, nil
			}
			before = after
		}
		if time.Now().After(deadline) {
			return Token{}, &XAPreparedError{XIDs: before}
		}
		select {
		case <-ctx.Done():
			return Token{}, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// xaRecoverFailed is the error of a first start whose XA RECOVER failed: a refused one stops
// the pipeline with the grant (or xa_recover: skip), since starting unchecked could lose a
// prepared branch.
func xaRecoverFailed(flavor string, account func() string, err error) error {
	if !xaRecoverDenied(err) {
		return fmt.Errorf("XA RECOVER: %w", err)
	}
	why, fix := xaRecoverRefused(flavor, account)
	return &FatalError{Err: fmt.Errorf("a new pipeline runs XA RECOVER to take its first position while no XA transaction branch is prepared (a branch prepared before that position and committed after it would be lost), but the server refused it (%v): %s; fix: %s", err, why, fix)}
}

// xaRecoverRefused says why a server refuses XA RECOVER, and the fix.
func xaRecoverRefused(flavor string, account func() string) (why, fix string) {
	const skip = "or, if no application uses XA transactions on this server, set source.mysql.xa_recover: skip to start without the check"
	if flavor == gomysql.MariaDBFlavor {
		return "MariaDB lets every user run XA RECOVER, so something between cdcd and the server refused it",
			"point the DSN at the MariaDB server itself (not a proxy that filters statements), " + skip
	}
	user, host := "<cdcd user>", "%"
	if a := account(); a != "" {
		if i := strings.LastIndexByte(a, '@'); i >= 0 {
			user, host = a[:i], a[i+1:]
		} else {
			user = a
		}
	}
	return "MySQL 8.0.19+ lets only users with XA_RECOVER_ADMIN run it", fmt.Sprintf("GRANT XA_RECOVER_ADMIN ON *.* TO '%s'@'%s', %s", user, host, skip)
}

// CheckXARecover checks that a new pipeline can run XA RECOVER at its first start (see
// firstPosition); mode is source.mysql.xa_recover. A refusal is a warning: it stops a new
// pipeline, but one with a committed position never asks. `cdcd check` runs it.
func CheckXARecover(conn *client.Conn, mode string, rep *checks.Scoped) {
	checkXARecover(mode, detectFlavor(conn), connProbe(conn, ""), rep)
}

func checkXARecover(mode, flavor string, p xaProbe, rep *checks.Scoped) {
	const name = "XA RECOVER"
	if mode == XARecoverSkip {
		rep.OK(name, "not asked (xa_recover: skip): a new pipeline takes its first position without checking for prepared XA branches")
		return
	}
	_, err := p.prepared()
	switch {
	case err == nil:
		rep.OK(name, "allowed: a new pipeline takes its first position while no XA branch is prepared")
	case xaRecoverDenied(err):
		why, fix := xaRecoverRefused(flavor, p.account)
		rep.Warn(name, fmt.Sprintf("refused (%v): %s; a new pipeline (no committed position) stops at its first start", err, why), fix)
	default:
		rep.Warn(name, "failed: "+err.Error()+"; a new pipeline stops at its first start while it fails", "run XA RECOVER as the cdcd user to see why")
	}
}
