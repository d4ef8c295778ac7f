package mysql

import (
	"errors"
	"testing"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
)

// A binlog connection the server replaced by another with the same server_id (another
// instance of the pipeline) makes this one a standby, on MariaDB and MySQL alike; a purged
// binlog stays a loud stop.
func TestStreamErrorSameServerIDIsStandby(t *testing.T) {
	standby := func(err error) bool {
		var s interface{ Standby() bool }
		return errors.As(err, &s) && s.Standby()
	}
	fatal := func(err error) bool {
		var f interface{ Fatal() bool }
		return errors.As(err, &f) && f.Fatal()
	}
	mariadb := &gomysql.MyError{Code: 4052, Message: "A slave with the same server_uuid/server_id is already connected"}
	mysql := &gomysql.MyError{Code: gomysql.ER_MASTER_FATAL_ERROR_READING_BINLOG,
		Message: "A replica with the same server_uuid/server_id as this replica has connected to the source; the first event 'binlog.000001' at 4"}
	mysqlOld := &gomysql.MyError{Code: gomysql.ER_MASTER_FATAL_ERROR_READING_BINLOG,
		Message: "A slave with the same server_uuid/server_id as this slave has connected to the master"}
	purged := &gomysql.MyError{Code: gomysql.ER_MASTER_FATAL_ERROR_READING_BINLOG, Message: "Could not find first log file name in binary log index file"}
	for _, e := range []*gomysql.MyError{mariadb, mysqlOld} {
		if err := classifyStreamError(e, Token{}); !standby(err) || fatal(err) {
			t.Errorf("%v: got %v, want a standby error", e, err)
		}
	}
	if err := classifyStreamError(mysql, Token{}); !standby(err) {
		t.Errorf("MySQL 8's wording: got %v, want a standby error", err)
	}
	if err := classifyStreamError(purged, Token{}); !fatal(err) || standby(err) {
		t.Errorf("purged binlog: got %v, want a fatal error", err)
	}
}

func TestOwnsReplicaHost(t *testing.T) {
	for host, want := range map[string]bool{
		"cdcd-shop":          true, // an older cdcd
		"cdcd-shop@a1b2c3d4": true,
		"cdcd-shopping@a1b2": false,
		"replica-1":          false,
		"cdcd-shop2":         false,
	} {
		if got := ownsReplicaHost("shop", host); got != want {
			t.Errorf("ownsReplicaHost(shop, %q) = %v, want %v", host, got, want)
		}
	}
}
