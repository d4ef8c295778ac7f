package mysql

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/change"
)

// TestFirstPositionConsistent: a pipeline's first position is one point of the binlog: its
// GTID state is the server's at that file and offset. The file/offset and the GTID state used
// to be read in two queries, so a transaction committed in between was inside the GTID state
// but after the offset: a GTID resume skipped it. Needs the stack's MariaDB
// (CDCD_TEST_STACK=1 and CDCD_TEST_MYSQL_DSN).
func TestFirstPositionConsistent(t *testing.T) {
	dsn := os.Getenv("CDCD_TEST_MYSQL_DSN")
	if os.Getenv("CDCD_TEST_STACK") == "" || dsn == "" {
		t.Skip("needs the stack's MariaDB: set CDCD_TEST_STACK=1 and CDCD_TEST_MYSQL_DSN (e.g. root@tcp(127.0.0.1:33306)/)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	writer, err := Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer writer.Close()
	db := fmt.Sprintf("cdcd_firstpos%d", time.Now().UnixNano()%1_000_000_000)
	if _, err := writer.Execute("CREATE DATABASE " + db); err != nil {
		t.Fatal(err)
	}
	defer func() { _, _ = writer.Execute("DROP DATABASE IF EXISTS " + db) }()
	if _, err := writer.Execute("CREATE TABLE " + db + ".t (id INT PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	afterBinlogStatus = func() {
		if _, err := writer.Execute("INSERT INTO " + db + ".t VALUES (1)"); err != nil {
			t.Error(err)
		}
	}
	defer func() { afterBinlogStatus = nil }()
	src, err := New(Config{Pipeline: "firstpos", DSN: dsn, Tables: []string{db + ".t"}})
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := src.startPoint(ctx, conn, "mariadb", "1", change.Resume{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := conn.Execute("SELECT BINLOG_GTID_POS(?, ?)", tok.File, tok.Pos)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := r.GetString(0, 0)
	if tok.GTIDs != want {
		t.Fatalf("first position %s:%d has GTID state %q, but the server's at that offset is %q: a transaction committed between the reads would be skipped", tok.File, tok.Pos, tok.GTIDs, want)
	}
}
