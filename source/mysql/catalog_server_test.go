package mysql

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// TestCatalogConnKept: the stream's catalog lookups (new table versions, TRUNCATE shapes)
// share one connection per session (each used to open its own), and a kept connection the
// server closed is opened again. Needs the stack's MariaDB (CDCD_TEST_STACK=1 and
// CDCD_TEST_MYSQL_DSN).
func TestCatalogConnKept(t *testing.T) {
	ctx, src, admin, db := serverDB(t, 1, 1<<20, "CREATE TABLE t (id INT PRIMARY KEY, u UUID, n INT NOT NULL DEFAULT 7)")
	cat := &catalogConn{dsn: src.cfg.DSN}
	defer cat.close()
	cols, err := cat.columns(ctx, db, "t")
	if err != nil {
		t.Fatal(err)
	}
	if cols["u"].dataType != "uuid" || cols["n"].def != "7" || len(cols) != 3 {
		t.Fatalf("columns of %s.t: %+v", db, cols)
	}
	first := cat.conn.GetConnectionID()
	tbl, err := cat.table(ctx, db, "t")
	if err != nil {
		t.Fatal(err)
	}
	if len(tbl.Columns) != 3 || len(tbl.KeyColumns) != 1 {
		t.Fatalf("shape of %s.t: %+v", db, tbl)
	}
	if id := cat.conn.GetConnectionID(); id != first {
		t.Fatalf("second lookup on connection %d, first on %d: want one connection", id, first)
	}
	if _, err := cat.table(ctx, db, "nope"); !errors.Is(err, errNoTable) || cat.conn == nil || cat.conn.GetConnectionID() != first {
		t.Fatalf("missing table: %v (connection kept: %v); want errNoTable on the same connection", err, cat.conn != nil)
	}
	if _, err := admin.Execute(fmt.Sprintf("KILL %d", first)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if cols, err = cat.columns(ctx, db, "t"); err != nil || len(cols) != 3 {
		t.Fatalf("after the server closed the kept connection: %v %+v; want it opened again", err, cols)
	}
	if cat.conn.GetConnectionID() == first {
		t.Fatal("still on the killed connection")
	}
}
