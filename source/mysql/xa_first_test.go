package mysql

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/checks"
	gomysql "github.com/go-mysql-org/go-mysql/mysql"
)

// xaRecoverDeniedErr is MySQL 8.0.19+'s answer to XA RECOVER without XA_RECOVER_ADMIN.
var xaRecoverDeniedErr = &gomysql.MyError{Code: gomysql.ER_SPECIFIC_ACCESS_DENIED_ERROR, State: "42000",
	Message: "Access denied; you need (at least one of) the XA_RECOVER_ADMIN privilege(s) for this operation"}

// TestFirstStartWithoutXARecoverStops: a new pipeline whose user may not run XA RECOVER
// cannot tell whether a branch is prepared at its start (one committed after it would be
// lost), so it stops with the grant naming its account, unless xa_recover: skip says to start
// unchecked. (It used to start with a warning.)
func TestFirstStartWithoutXARecoverStops(t *testing.T) {
	for _, flavor := range []string{gomysql.MySQLFlavor, gomysql.MariaDBFlavor} {
		t.Run(flavor, func(t *testing.T) {
			src, err := New(Config{Pipeline: "p", Tables: []string{"db.t"}})
			if err != nil {
				t.Fatal(err)
			}
			positioned := false
			_, err = src.firstPositionOf(context.Background(), flavor, xaProbe{
				prepared: func() ([]string, error) { return nil, xaRecoverDeniedErr },
				position: func() (Token, error) { positioned = true; return Token{Flavor: flavor, File: "b.000001", Pos: 4}, nil },
				account:  func() string { return "cdcd@%" },
			})
			var fe *FatalError
			if !errors.As(err, &fe) {
				t.Fatalf("XA RECOVER refused: err=%v positioned=%v; want a fatal error (the pipeline must not start unchecked)", err, positioned)
			}
			if positioned {
				t.Error("the position was read although the start could not be checked")
			}
			want := []string{"XA_RECOVER_ADMIN", "GRANT XA_RECOVER_ADMIN ON *.* TO 'cdcd'@'%'", "xa_recover: skip"}
			if flavor == gomysql.MariaDBFlavor {
				want = []string{"MariaDB lets every user run XA RECOVER", "xa_recover: skip"}
			}
			for _, w := range want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

// TestFirstStartXARecoverSkip: with xa_recover: skip a new pipeline starts at the current
// position without asking XA RECOVER.
func TestFirstStartXARecoverSkip(t *testing.T) {
	src, err := New(Config{Pipeline: "p", Tables: []string{"db.t"}, XARecover: XARecoverSkip})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := src.firstPositionOf(context.Background(), gomysql.MySQLFlavor, xaProbe{
		prepared: func() ([]string, error) {
			t.Error("XA RECOVER asked with xa_recover: skip")
			return nil, xaRecoverDeniedErr
		},
		position: func() (Token, error) { return Token{Flavor: "mysql", File: "b.000001", Pos: 4}, nil },
		account:  func() string { return "cdcd@%" },
	})
	if err != nil || tok.File != "b.000001" || tok.Pos != 4 {
		t.Fatalf("skip: %+v %v; want the current position", tok, err)
	}
	if _, err := New(Config{Pipeline: "p", Tables: []string{"db.t"}, XARecover: "sometimes"}); err == nil || !strings.Contains(err.Error(), "check") {
		t.Fatalf("unknown xa_recover: %v; want an error naming the values", err)
	}
}

// TestFirstStartXAWaitEndsWithContext: while a branch is prepared, a first start waits for it
// to end, but a cancelled context ends the wait at once (it used to sleep on regardless).
func TestFirstStartXAWaitEndsWithContext(t *testing.T) {
	defer func(d time.Duration) { xaFirstStartWait = d }(xaFirstStartWait)
	xaFirstStartWait = time.Minute
	src, err := New(Config{Pipeline: "p", Tables: []string{"db.t"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	asked := make(chan struct{}, 1)
	go func() { <-asked; cancel() }()
	start := time.Now()
	_, err = src.firstPositionOf(ctx, gomysql.MariaDBFlavor, xaProbe{
		prepared: func() ([]string, error) {
			select {
			case asked <- struct{}{}:
			default:
			}
			time.Sleep(10 * time.Millisecond) // the cancel lands while the start waits
			return []string{`"x1"`}, nil
		},
		position: func() (Token, error) { return Token{}, errors.New("no position while a branch is prepared") },
		account:  func() string { return "" },
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled while a branch is prepared: %v; want context.Canceled", err)
	}
	if d := time.Since(start); d > 150*time.Millisecond {
		t.Fatalf("the wait ended %v after the cancel; want at once", d)
	}
}

// TestCheckXARecover: `cdcd check` warns, with the grant, when the user may not run XA RECOVER
// (a new pipeline would stop at its first start), and passes when it may or the check is
// skipped.
func TestCheckXARecover(t *testing.T) {
	probe := func(err error) xaProbe {
		return xaProbe{prepared: func() ([]string, error) { return nil, err }, account: func() string { return "cdcd@10.%" }}
	}
	for _, c := range []struct {
		name, mode string
		err        error
		want       checks.Status
		fix        string
	}{
		{"refused", XARecoverCheck, xaRecoverDeniedErr, checks.Warn, "GRANT XA_RECOVER_ADMIN ON *.* TO 'cdcd'@'10.%'"},
		{"allowed", XARecoverCheck, nil, checks.OK, ""},
		{"skipped", XARecoverSkip, xaRecoverDeniedErr, checks.OK, ""},
	} {
		var rep checks.Report
		checkXARecover(c.mode, gomysql.MySQLFlavor, probe(c.err), rep.Scoped("p"))
		if len(rep.Results) != 1 || rep.Results[0].Status != c.want || !strings.Contains(rep.Results[0].Fix, c.fix) {
			t.Errorf("%s: %+v; want status %v with fix %q", c.name, rep.Results, c.want, c.fix)
		}
	}
}
