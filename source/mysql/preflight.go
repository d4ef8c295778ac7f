// Package mysql is the MySQL/MariaDB binlog source. This file holds its prerequisite checks;
// the stream itself builds on them.
package mysql

import (
	"context"
	"fmt"
	"github.com/cdcd-dev/cdcd/source/mysql/dsn"
	"strconv"
	"strings"
	"time"

	"github.com/cdcd-dev/cdcd/change"
	"github.com/cdcd-dev/cdcd/checks"
	"github.com/cdcd-dev/cdcd/snapshot"
	"github.com/go-mysql-org/go-mysql/client"
	gomysql "github.com/go-mysql-org/go-mysql/mysql"
)

// Connect opens a plain client connection for the DSN.
func Connect(ctx context.Context, connString string) (*client.Conn, error) {
	d, err := dsn.Parse(connString)
	if err != nil {
		return nil, err
	}
	conn, err := client.ConnectWithContext(ctx, d.Addr, d.User, d.Password, d.Database, 10*time.Second)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s as %s: %w", d.Addr, d.User, err)
	}
	return conn, nil
}

// SnapshotChecks is what the prerequisite checks need to know of a pipeline's snapshots.
type SnapshotChecks struct {
	// Consistency is the configured source.mysql.snapshot_consistency (empty: auto).
	Consistency string
	// Snapshots: the pipeline snapshots at start (its snapshot mode is not never); without,
	// only on-demand requests snapshot, and a setting they need is a warning, not a failure.
	Snapshots bool
	// KeylessAccepted is the pipeline's snapshot.accept_inexact_keyless (CheckKeylessSnapshots).
	KeylessAccepted []string
}

// Preflight checks binlog settings, privileges, tables and what snapshots need. It never
// changes the server.
func Preflight(conn *client.Conn, serverID uint32, tables []string, snap SnapshotChecks, rep *checks.Scoped) {
	PreflightFor(conn, "", serverID, tables, snap, rep)
}

// ReplicaHost is the host name a pipeline's binlog connection reports to the server (SHOW
// SLAVE HOSTS), so checks can tell its own connection from another replica's.
func ReplicaHost(pipeline string) string { return "cdcd-" + pipeline }

// ownsReplicaHost reports whether a replica's host name is one of the pipeline's binlog
// connections (of any instance): ReplicaHost(pipeline), then "@" and the instance.
func ownsReplicaHost(pipeline, host string) bool {
	base := ReplicaHost(pipeline)
	return host == base || strings.HasPrefix(host, base+"@")
}

// otherInstance returns the host name of a replica with serverID that is another instance of
// the pipeline (self is this instance's host name), or "" when there is none. A replica with
// serverID that is not the pipeline's is left to the prerequisite checks, which refuse it.
func otherInstance(conn *client.Conn, pipeline, self string, serverID uint32) string {
	hosts, _ := replicaHosts(conn, serverID) // an error is the prerequisite checks' warning
	for _, host := range hosts {
		if host != self && ownsReplicaHost(pipeline, host) {
			return host
		}
	}
	return ""
}

// replicaHosts lists the host names of the connected replicas that use serverID.
func replicaHosts(conn *client.Conn, serverID uint32) ([]string, error) {
	r, err := conn.Execute("SHOW SLAVE HOSTS")
	if err != nil {
		return nil, err
	}
	var hosts []string
	for i := range r.Values {
		id, _ := r.GetUint(i, 0)
		host, _ := r.GetString(i, 1)
		if uint32(id) == serverID {
			hosts = append(hosts, host)
		}
	}
	return hosts, nil
}

// PreflightFor is Preflight for one pipeline: a replica using the pipeline's server_id is
// a conflict unless it is the pipeline's own connection (another instance of it, which
// waits as a standby).
func PreflightFor(conn *client.Conn, pipeline string, serverID uint32, tables []string, snap SnapshotChecks, rep *checks.Scoped) {
	vars, err := variables(conn, "version", "log_bin", "binlog_format", "binlog_row_image", "binlog_row_metadata",
		"server_id", "gtid_mode", "gtid_strict_mode", "binlog_expire_logs_seconds", "expire_logs_days", "binlog_row_value_options",
		"binlog_order_commits")
	if err != nil {
		rep.Fail("server", "cannot read server variables: "+err.Error(), "connect as a user that can run SHOW VARIABLES")
		return
	}
	mariadb := strings.Contains(strings.ToLower(vars["version"]), "mariadb")
	flavor := "MySQL"
	if mariadb {
		flavor = "MariaDB"
	}
	rep.OK("server version", flavor+" "+vars["version"])
	want := func(name, value, fix, okNote string) {
		if !strings.EqualFold(vars[name], value) {
			rep.Fail(name, fmt.Sprintf("%s is %q", name, vars[name]), fix)
		} else {
			rep.OK(name, vars[name]+okNote)
		}
	}
	// A session may set its own binlog_format and binlog_row_image (with the privilege to set
	// session variables): the global values bind no session. cdcd turns what such sessions
	// write to captured tables into poison records that name the fix, never into NULLs or
	// silence; the notes say so where operators look.
	const sessionNote = " globally; sessions may still SET SESSION %s = '%s' (the global setting does not bind them): their changes to captured tables become poison records naming the fix, so keep applications from setting it"
	want("log_bin", "ON", "start the server with log_bin (binary logging) enabled", "")
	want("binlog_format", "ROW", "SET GLOBAL binlog_format = 'ROW' and set it in my.cnf (binlog_format=ROW)", fmt.Sprintf(sessionNote, "binlog_format", "STATEMENT"))
	want("binlog_row_image", "FULL", "SET GLOBAL binlog_row_image = 'FULL' and set it in my.cnf", fmt.Sprintf(sessionNote, "binlog_row_image", "MINIMAL"))
	want("binlog_row_metadata", "FULL", "SET GLOBAL binlog_row_metadata = 'FULL' and set it in my.cnf (MySQL 8.0.1+/MariaDB 10.5+): column names come from the binlog, not the current schema", "")
	if !mariadb && strings.Contains(strings.ToUpper(vars["binlog_row_value_options"]), "PARTIAL_JSON") {
		rep.Fail("binlog_row_value_options", "PARTIAL_JSON: updates of JSON columns carry only the change, not the document cdcd must publish",
			"SET GLOBAL binlog_row_value_options = '' and remove it from my.cnf")
	}
	if !mariadb {
		if strings.EqualFold(vars["gtid_mode"], "ON") {
			rep.OK("gtid_mode", "ON: positions carry GTID sets")
		} else {
			rep.Warn("gtid_mode", fmt.Sprintf("gtid_mode is %q: positions are binlog file and offset, which only this server knows", vars["gtid_mode"]),
				"enable GTIDs (gtid_mode=ON, enforce_gtid_consistency=ON) so positions name transactions")
		}
	} else {
		rep.OK("gtid", "MariaDB GTIDs are always on (gtid_strict_mode="+vars["gtid_strict_mode"]+")")
	}
	checkSnapshotConsistency(vars, mariadb, snap, rep)
	if vars["server_id"] == strconv.FormatUint(uint64(serverID), 10) {
		rep.Fail("server_id", fmt.Sprintf("the pipeline's server_id %d equals the server's own", serverID), "choose a server_id no server or replica uses")
	}
	checkReplicaIDs(conn, pipeline, serverID, rep)
	retention := retentionSeconds(vars)
	switch {
	case retention == 0:
		rep.OK("binlog retention", "binlogs are never expired automatically")
	case retention < 24*3600:
		rep.Warn("binlog retention", fmt.Sprintf("binlogs expire after %s: an outage longer than that loses changes", time.Duration(retention)*time.Second),
			"SET GLOBAL binlog_expire_logs_seconds = 604800 (7 days) or more")
	default:
		rep.OK("binlog retention", (time.Duration(retention) * time.Second).String())
	}
	if r, err := conn.Execute("SHOW GRANTS"); err == nil {
		grants := ""
		for i := range r.Values {
			s, _ := r.GetString(i, 0)
			grants += strings.ToUpper(s) + "\n"
		}
		if strings.Contains(grants, "ALL PRIVILEGES ON *.*") || (strings.Contains(grants, "REPLICATION SLAVE") || strings.Contains(grants, "REPLICATION REPLICA")) && (strings.Contains(grants, "REPLICATION CLIENT") || strings.Contains(grants, "BINLOG MONITOR")) {
			rep.OK("replication privileges", "REPLICATION SLAVE and REPLICATION CLIENT")
		} else {
			rep.Fail("replication privileges", "missing REPLICATION SLAVE or REPLICATION CLIENT", "GRANT REPLICATION SLAVE, REPLICATION CLIENT, SELECT ON *.* TO the cdcd user")
		}
		for _, t := range tables {
			db, name, err := change.ParseTableName(t)
			if err == nil && !canSelect(grants, db, name) {
				rep.Fail("select privilege "+t, "the user may not SELECT from "+t+" (snapshots and checks read it)", fmt.Sprintf("GRANT SELECT ON `%s`.* TO the cdcd user", db))
			}
		}
	} else {
		rep.Fail("privileges", "cannot read the user's grants: "+err.Error(), "connect as a user that may run SHOW GRANTS")
	}
	for _, t := range tables {
		db, name, err := change.ParseTableName(t)
		if err != nil {
			rep.Fail("table "+t, err.Error(), "write tables as database.table")
			continue
		}
		r, err := conn.Execute(`SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?`, db, name)
		if err != nil {
			rep.Fail("table "+t, "cannot inspect: "+err.Error(), "grant SELECT on the table")
			continue
		}
		if n, _ := r.GetInt(0, 0); n == 0 {
			rep.Fail("table "+t, "does not exist", "create it or remove it from tables")
			continue
		}
		if _, _, err := TableFromCatalog(conn, db, name); err != nil {
			// A snapshot would fail on it at every attempt: say so now, with the column.
			detail, fix := "a snapshot cannot read it: "+err.Error(), "change the column to a type cdcd reads (or remove the table from tables); a snapshot of it fails until then"
			if snap.Snapshots {
				rep.Fail("table "+t, detail, fix)
				continue
			}
			rep.Warn("table "+t, detail+" (snapshot: never, so only a `cdcd snapshot` request would need it)", fix)
		}
		r, err = conn.Execute(`SELECT COUNT(*) FROM information_schema.table_constraints WHERE table_schema = ? AND table_name = ? AND constraint_type = 'PRIMARY KEY'`, db, name)
		if err == nil {
			if n, _ := r.GetInt(0, 0); n == 0 {
				rep.Warn("table "+t, "has no primary key: its records get a null key and no per-key order", "add a primary key")
				continue
			}
		}
		rep.OK("table "+t, "exists with a primary key")
	}
}

func variables(conn *client.Conn, names ...string) (map[string]string, error) {
	r, err := conn.Execute("SHOW GLOBAL VARIABLES WHERE Variable_name IN ('" + strings.Join(names, "','") + "')")
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for i := range r.Values {
		k, _ := r.GetString(i, 0)
		v, _ := r.GetString(i, 1)
		out[strings.ToLower(k)] = v
	}
	return out, nil
}

func retentionSeconds(vars map[string]string) int64 {
	if s, err := strconv.ParseInt(vars["binlog_expire_logs_seconds"], 10, 64); err == nil && s > 0 {
		return s
	}
	if d, err := strconv.ParseFloat(vars["expire_logs_days"], 64); err == nil && d > 0 {
		return int64(d * 86400)
	}
	return 0
}

// canSelect reports whether SHOW GRANTS output (upper-cased, one grant a line) allows SELECT
// on db.table: globally, on the database or on the table.
func canSelect(grants, db, table string) bool {
	on := []string{" ON *.*", " ON `" + strings.ToUpper(db) + "`.*", " ON `" + strings.ToUpper(db) + "`.`" + strings.ToUpper(table) + "`"}
	for _, line := range strings.Split(grants, "\n") {
		if !strings.Contains(line, "SELECT") && !strings.Contains(line, "ALL PRIVILEGES") {
			continue
		}
		for _, o := range on {
			if strings.Contains(line, o+" TO") {
				return true
			}
		}
	}
	return false
}

// checkReplicaIDs fails when a connected replica other than this pipeline's own uses its
// server_id: the server would drop one of the two connections whenever the other connects.
func checkReplicaIDs(conn *client.Conn, pipeline string, serverID uint32, rep *checks.Scoped) {
	hosts, err := replicaHosts(conn, serverID)
	if err != nil {
		rep.Warn("server_id", "cannot list replicas (SHOW SLAVE HOSTS): "+err.Error(), "GRANT REPLICATION CLIENT (MariaDB: REPLICATION MASTER ADMIN) to the cdcd user so cdcd can check its server_id is unique")
		return
	}
	for _, host := range hosts {
		if pipeline != "" && ownsReplicaHost(pipeline, host) || pipeline == "" && strings.HasPrefix(host, "cdcd-") {
			rep.OK("server_id", fmt.Sprintf("%d is used by this pipeline's own binlog connection (%s)", serverID, host))
			return
		}
		rep.Fail("server_id", fmt.Sprintf("server_id %d is already used by the replica at %q", serverID, host), "choose a server_id no server or replica uses (source.mysql.server_id)")
		return
	}
	rep.OK("server_id", fmt.Sprintf("%d is not used by any connected replica", serverID))
}

// checkSnapshotConsistency checks what the snapshot consistency mode needs of the server
// (vars: its global variables, lower-case names): binlog_snapshot needs MariaDB; watermarks
// needs commits in binlog order (binlog_order_commits=ON where the server has the variable;
// MariaDB has none and always commits in binlog order).
func checkSnapshotConsistency(vars map[string]string, mariadb bool, snap SnapshotChecks, rep *checks.Scoped) {
	flavor := gomysql.MySQLFlavor
	if mariadb {
		flavor = gomysql.MariaDBFlavor
	}
	mode, err := ResolveConsistency(snap.Consistency, flavor)
	if err != nil {
		msg, fix, _ := strings.Cut(err.Error(), "; fix: ")
		rep.Fail("snapshot consistency", msg, fix)
		return
	}
	if mode == ConsistencyBinlogSnapshot {
		rep.OK("snapshot consistency", "binlog_snapshot: chunks are placed in the binlog by the position MariaDB reports for their snapshot")
		return
	}
	v, ok := vars["binlog_order_commits"]
	switch {
	case !ok:
		rep.OK("snapshot consistency", "watermarks: the server has no binlog_order_commits setting and commits in binlog order")
	case strings.EqualFold(v, "ON"):
		rep.OK("snapshot consistency", "watermarks: binlog_order_commits is ON")
	default:
		msg, fix, _ := strings.Cut(binlogOrderCommitsOff, "; fix: ")
		if snap.Snapshots {
			rep.Fail("binlog_order_commits", msg, fix)
		} else {
			rep.Warn("binlog_order_commits", msg+" (on-demand snapshots, `cdcd snapshot`, would stop the pipeline)", fix)
		}
	}
}

// CheckKeylessSnapshots flags each table without a primary key (which the snapshot reads by row
// offsets) that snapshot.accept_inexact_keyless does not list, since its snapshot is refused: a
// failure when the pipeline snapshots at start, a warning when only on-demand snapshots would
// meet it. `cdcd check` runs it; the pipeline itself refuses such a table only when it
// snapshots it (a table whose snapshot completed under an earlier version is not read again).
func CheckKeylessSnapshots(conn *client.Conn, tables []string, snap SnapshotChecks, rep *checks.Scoped) {
	accepted := map[string]bool{}
	for _, t := range snap.KeylessAccepted {
		if db, name, err := change.ParseTableName(t); err == nil {
			accepted[db+"."+name] = true
		}
	}
	for _, t := range tables {
		db, name, err := change.ParseTableName(t)
		if err != nil {
			continue // Preflight reports it
		}
		r, err := conn.Execute(`SELECT COUNT(*) FROM information_schema.table_constraints
			WHERE table_schema = ? AND table_name = ? AND constraint_type = 'PRIMARY KEY'`, db, name)
		if err != nil {
			snapshot.KeylessUnknown(rep, t, err)
			continue
		}
		if n, _ := r.GetInt(0, 0); n > 0 {
			continue // keyed
		}
		e, err := conn.Execute(`SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?`, db, name)
		if err != nil {
			snapshot.KeylessUnknown(rep, t, err)
			continue
		}
		if n, _ := e.GetInt(0, 0); n == 0 {
			continue // missing: Preflight reports it
		}
		key := db + "." + name
		snapshot.KeylessCheck{Table: t, NoKey: "has no primary key", Accepted: accepted[key], Snapshots: snap.Snapshots,
			Refused: "has no primary key: the snapshot refuses it and stops the pipeline, since its chunks (read by row offsets) cannot be reconciled with changes written meanwhile",
			AddKey:  "add a primary key to " + t + " for an exact snapshot",
			Fix:     fmt.Sprintf("add a primary key to %s, or accept an inexact snapshot by listing %s in the pipeline's snapshot.accept_inexact_keyless", t, key)}.Report(rep)
	}
}
