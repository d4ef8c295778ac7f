package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/cdcd-dev/cdcd/change"
	"github.com/cdcd-dev/cdcd/checks"
	"github.com/cdcd-dev/cdcd/snapshot"
	"github.com/jackc/pgx/v5"
)

// Preflight checks every prerequisite of streaming the given tables through slot and
// publication, on an ordinary (non-replication) connection. It never changes the server.
// The same checks run at pipeline start and in `cdcd check`.
func Preflight(ctx context.Context, conn *pgx.Conn, slot, publication string, tables []string, rep *checks.Scoped) {
	var version int
	var walLevel, user string
	var super, repl bool
	err := conn.QueryRow(ctx, `SELECT current_setting('server_version_num')::int, current_setting('wal_level'),
		current_user, r.rolsuper, r.rolreplication
		FROM pg_roles r WHERE r.rolname = current_user`).Scan(&version, &walLevel, &user, &super, &repl)
	if err != nil {
		rep.Fail("server", "cannot read server settings: "+err.Error(), "connect as a role that can read pg_roles and pg_settings")
		return
	}
	switch {
	case version < 100000:
		rep.Fail("server version", fmt.Sprintf("PostgreSQL %s is older than 10: pgoutput is not available", serverVersion(version)), "upgrade to PostgreSQL 14 or later")
	case version < 140000:
		rep.Warn("server version", fmt.Sprintf("PostgreSQL %s: pgoutput protocol v1 only, large transactions are decoded on the server before they are sent", serverVersion(version)), "upgrade to PostgreSQL 14+ for streamed in-progress transactions")
	default:
		rep.OK("server version", fmt.Sprintf("PostgreSQL %s (streamed in-progress transactions available)", serverVersion(version)))
	}
	if walLevel != "logical" {
		rep.Fail("wal_level", fmt.Sprintf("wal_level is %q", walLevel), "ALTER SYSTEM SET wal_level = logical; then restart PostgreSQL (RDS/Aurora: set rds.logical_replication = 1 in the parameter group; Cloud SQL: cloudsql.logical_decoding = on)")
	} else {
		rep.OK("wal_level", "logical")
	}
	var rdsRepl bool
	_ = conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_roles r WHERE r.rolname = 'rds_replication' AND pg_has_role(current_user, r.oid, 'member'))`).Scan(&rdsRepl)
	if super || repl || rdsRepl {
		rep.OK("replication privilege", fmt.Sprintf("role %s may replicate", user))
	} else {
		rep.Fail("replication privilege", fmt.Sprintf("role %s has neither REPLICATION nor superuser", user),
			fmt.Sprintf("ALTER ROLE %s WITH REPLICATION; (RDS: GRANT rds_replication TO %s; Cloud SQL: ALTER USER %s WITH REPLICATION)", quoteIdent(user), quoteIdent(user), quoteIdent(user)))
	}

	configured := map[string]bool{}
	for _, t := range tables {
		configured[normalizeTable(t)] = true
	}
	types := newTypeCatalog(conn)
	for _, t := range tables {
		checkTable(ctx, conn, t, rep)
		checkPartition(ctx, conn, t, version, configured, rep)
		checkColumns(ctx, conn, t, publication, version, types, rep)
	}
	checkPublication(ctx, conn, publication, tables, rep)
	checkSlot(ctx, conn, slot, rep)
}

func checkTable(ctx context.Context, conn *pgx.Conn, table string, rep *checks.Scoped) {
	schema, name, err := change.ParseTableName(table)
	if err != nil {
		rep.Fail("table "+table, err.Error(), "write tables as schema.table")
		return
	}
	var ident string
	var hasPK, canSelect bool
	err = conn.QueryRow(ctx, `SELECT c.relreplident::text,
			EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary),
			has_table_privilege(c.oid, 'SELECT')
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')`, schema, name).Scan(&ident, &hasPK, &canSelect)
	if err == pgx.ErrNoRows {
		rep.Fail("table "+table, "does not exist", fmt.Sprintf("create %s or remove it from tables (names are case-sensitive; quote mixed case as \"Name\")", table))
		return
	}
	if err != nil {
		rep.Fail("table "+table, "cannot inspect: "+err.Error(), "grant the role USAGE on the schema")
		return
	}
	if !canSelect {
		rep.Fail("table "+table, "no SELECT privilege", fmt.Sprintf("GRANT SELECT ON %s TO the cdcd role", quoteQualified(schema, name)))
	}
	switch {
	case ident == "n":
		rep.Fail("replica identity "+table, "REPLICA IDENTITY NOTHING: updates and deletes carry no key", fmt.Sprintf("ALTER TABLE %s REPLICA IDENTITY DEFAULT (with a primary key) or FULL", quoteQualified(schema, name)))
	case ident == "d" && !hasPK:
		rep.Fail("replica identity "+table, "no primary key and REPLICA IDENTITY DEFAULT: updates and deletes cannot be keyed (PostgreSQL even refuses them once the table is published)",
			fmt.Sprintf("add a primary key, or ALTER TABLE %s REPLICA IDENTITY FULL (or USING INDEX a unique not-null index)", quoteQualified(schema, name)))
	case ident == "f":
		rep.OK("replica identity "+table, "FULL (old rows complete; unchanged TOAST values taken from the old row)")
	case ident == "i":
		rep.OK("replica identity "+table, "USING INDEX")
	default:
		rep.OK("replica identity "+table, "DEFAULT with a primary key (unchanged TOAST values are published as a placeholder; use FULL to get them)")
	}
}

// checkPartition fails a partitioned table on a server that cannot publish it through its
// root, and a partition listed next to its partitioned ancestor: its changes arrive as the
// ancestor's (publish_via_partition_root), so listing both would only look like two streams.
func checkPartition(ctx context.Context, conn *pgx.Conn, table string, version int, configured map[string]bool, rep *checks.Scoped) {
	schema, name, err := change.ParseTableName(table)
	if err != nil {
		return
	}
	var kind string
	var ancestors []string
	err = conn.QueryRow(ctx, `WITH RECURSIVE up(relid) AS (
			SELECT i.inhparent FROM pg_inherits i WHERE i.inhrelid = to_regclass($1)
			UNION SELECT i.inhparent FROM pg_inherits i JOIN up ON i.inhrelid = up.relid)
		SELECT c.relkind::text, coalesce((SELECT array_agg(n.nspname || '.' || a.relname) FROM up
			JOIN pg_class a ON a.oid = up.relid JOIN pg_namespace n ON n.oid = a.relnamespace
			WHERE a.relkind = 'p'), '{}')
		FROM pg_class c WHERE c.oid = to_regclass($1)`, quoteQualified(schema, name)).Scan(&kind, &ancestors)
	if err != nil {
		return // checkTable reports a missing table
	}
	if kind == "p" && version < 130000 {
		rep.Fail("partitioned table "+table, "PostgreSQL before 13 cannot publish a partitioned table",
			"list its partitions in tables instead, or upgrade to PostgreSQL 13+")
	}
	for _, a := range ancestors {
		if configured[a] {
			rep.Fail("partition "+table, fmt.Sprintf("is a partition of %s, which tables also lists: its changes are published as %s's (publish_via_partition_root)", a, a),
				fmt.Sprintf("remove %s from tables; its rows are on %s's topic", table, a))
		}
	}
	if kind == "p" && version >= 130000 {
		rep.OK("partitioned table "+table, "published through its root (publish_via_partition_root): every partition's changes, including partitions attached later, arrive on its topic")
	}
}

// checkColumns checks that every published column has a type cdcd can carry (using the
// decoder's own type resolution), and says which generated columns the server does not
// publish.
func checkColumns(ctx context.Context, conn *pgx.Conn, table, publication string, version int, types *typeCatalog, rep *checks.Scoped) {
	schema, name, err := change.ParseTableName(table)
	if err != nil {
		return
	}
	generated := "''"
	if version >= 120000 {
		generated = "a.attgenerated::text"
	}
	// A publication's column list (PG 15+) leaves the other columns unpublished.
	published, args := "true", []any{quoteQualified(schema, name)}
	if version >= 150000 {
		args = append(args, publication)
		published = `coalesce(a.attnum = ANY((SELECT pr.prattrs FROM pg_publication_rel pr JOIN pg_publication p ON p.oid = pr.prpubid
			WHERE p.pubname = $2 AND pr.prrelid = a.attrelid)::int2[]), true)`
	}
	rows, err := conn.Query(ctx, `SELECT a.attname, a.atttypid, a.atttypmod, `+generated+`
		FROM pg_attribute a WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped AND `+published+`
		ORDER BY a.attnum`, args...)
	if err != nil {
		rep.Fail("columns of "+table, "cannot read its columns: "+err.Error(), "grant the role USAGE on the schema")
		return
	}
	type column struct {
		name   string
		oid    uint32
		typmod int32
		gen    string
	}
	cols, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (column, error) {
		var c column
		err := r.Scan(&c.name, &c.oid, &c.typmod, &c.gen)
		return c, err
	})
	if err != nil {
		rep.Fail("columns of "+table, "cannot read its columns: "+err.Error(), "grant the role USAGE on the schema")
		return
	}
	if len(cols) == 0 {
		return // a missing table: checkTable says so
	}
	// PostgreSQL 18 publishes stored generated columns when the publication says so.
	pubGenerated := false
	if version >= 180000 {
		var gencols string
		if err := conn.QueryRow(ctx, `SELECT pubgencols::text FROM pg_publication WHERE pubname = $1`, publication).Scan(&gencols); err == nil {
			pubGenerated = gencols == "s"
		}
	}
	var unpublished []string
	bad := false
	for _, c := range cols {
		if c.gen != "" && !(c.gen == "s" && pubGenerated) {
			unpublished = append(unpublished, c.name)
			continue
		}
		if _, err := types.resolve(ctx, c.oid, c.typmod); err != nil {
			bad = true
			if errors.Is(err, errUnsupportedType) {
				rep.Fail("column type "+table+"."+c.name, err.Error(),
					fmt.Sprintf("change the column's type (e.g. to jsonb), or stop capturing %s; cdcd would stop at the first change of the table", table))
			} else {
				rep.Fail("column type "+table+"."+c.name, "cannot resolve its type: "+err.Error(), "check the role's privileges on pg_type")
			}
		}
	}
	if len(unpublished) > 0 {
		detail := fmt.Sprintf("generated column(s) %s are not published by PostgreSQL before 18: records of %s will not have them", strings.Join(unpublished, ", "), table)
		fix := "compute them downstream, or upgrade to PostgreSQL 18 and publish them: ALTER PUBLICATION " + quoteIdent(publication) + " SET (publish_generated_columns = stored)"
		if version >= 180000 {
			detail = fmt.Sprintf("generated column(s) %s are not published by publication %s: records of %s will not have them", strings.Join(unpublished, ", "), publication, table)
			fix = "ALTER PUBLICATION " + quoteIdent(publication) + " SET (publish_generated_columns = stored) (PostgreSQL 18 publishes stored generated columns, never virtual ones)"
		}
		rep.Warn("generated columns "+table, detail, fix)
	} else if !bad {
		rep.OK("columns of "+table, fmt.Sprintf("%d columns, every type supported", len(cols)))
	}
}

func checkPublication(ctx context.Context, conn *pgx.Conn, publication string, tables []string, rep *checks.Scoped) {
	var allTables bool
	err := conn.QueryRow(ctx, `SELECT puballtables FROM pg_publication WHERE pubname = $1`, publication).Scan(&allTables)
	if err == pgx.ErrNoRows {
		var canCreate bool
		_ = conn.QueryRow(ctx, `SELECT has_database_privilege(current_database(), 'CREATE')`).Scan(&canCreate)
		if canCreate {
			rep.OK("publication "+publication, "does not exist yet; cdcd creates it for exactly the configured tables")
		} else {
			rep.Fail("publication "+publication, "does not exist and the role cannot create it",
				fmt.Sprintf("CREATE PUBLICATION %s FOR TABLE %s; (as the tables' owner) or GRANT CREATE ON DATABASE to the cdcd role", quoteIdent(publication), strings.Join(tables, ", ")))
		}
		return
	}
	if err != nil {
		rep.Fail("publication "+publication, "cannot inspect: "+err.Error(), "check the role's privileges")
		return
	}
	covered, err := publicationMembers(ctx, conn, publication)
	if err != nil {
		rep.Fail("publication "+publication, "cannot list its tables: "+err.Error(), "check the role's privileges")
		return
	}
	var missing, extra []string
	want := map[string]bool{}
	for _, t := range tables {
		want[normalizeTable(t)] = true
		if !covered[normalizeTable(t)] {
			missing = append(missing, t)
		}
	}
	for t := range covered {
		if !want[t] && !allTables {
			extra = append(extra, t)
		}
	}
	switch {
	case allTables:
		rep.Warn("publication "+publication, "is FOR ALL TABLES: the slot decodes every table's changes", "use a publication FOR TABLE the captured tables (cdcd creates one if you choose a new publication name)")
	case len(missing) > 0 || len(extra) > 0:
		rep.OK("publication "+publication, fmt.Sprintf("exists; cdcd will add %v and drop %v at start", missing, extra))
	default:
		rep.OK("publication "+publication, "covers exactly the configured tables")
	}
}

func checkSlot(ctx context.Context, conn *pgx.Conn, slot string, rep *checks.Scoped) {
	var plugin, db, walStatus string
	var active bool
	err := conn.QueryRow(ctx, `SELECT coalesce(plugin, ''), coalesce(database, ''), active, coalesce(wal_status, '')
		FROM pg_replication_slots WHERE slot_name = $1`, slot).Scan(&plugin, &db, &active, &walStatus)
	if err == pgx.ErrNoRows {
		var free int
		_ = conn.QueryRow(ctx, `SELECT current_setting('max_replication_slots')::int - (SELECT count(*) FROM pg_replication_slots)`).Scan(&free)
		if free < 1 {
			rep.Fail("slot "+slot, "does not exist and max_replication_slots is used up", "raise max_replication_slots (restart needed) or drop an unused slot")
		} else {
			rep.OK("slot "+slot, "does not exist yet; cdcd creates it (pgoutput) at first start")
		}
		return
	}
	if err != nil {
		rep.Fail("slot "+slot, "cannot inspect: "+err.Error(), "check the role's privileges")
		return
	}
	var curDB string
	_ = conn.QueryRow(ctx, `SELECT current_database()`).Scan(&curDB)
	switch {
	case plugin != "pgoutput":
		rep.Fail("slot "+slot, fmt.Sprintf("exists with plugin %q", plugin), fmt.Sprintf("choose another slot name, or drop it: SELECT pg_drop_replication_slot('%s')", slot))
	case db != curDB:
		rep.Fail("slot "+slot, fmt.Sprintf("belongs to database %q, not %q", db, curDB), "choose another slot name")
	case walStatus == "lost":
		rep.Fail("slot "+slot, "wal_status is lost: WAL it needed was removed (max_slot_wal_keep_size exceeded); changes are missing",
			fmt.Sprintf("drop the slot (SELECT pg_drop_replication_slot('%s')), reset the pipeline's offsets and re-snapshot", slot))
	case active:
		rep.Warn("slot "+slot, "is in use by another connection", "stop the other reader; a second cdcd on the same pipeline waits as a standby")
	default:
		rep.OK("slot "+slot, fmt.Sprintf("exists (pgoutput, wal_status %s)", walStatus))
	}
}

func quoteIdent(s string) string { return pgx.Identifier{s}.Sanitize() }

func quoteQualified(schema, name string) string { return pgx.Identifier{schema, name}.Sanitize() }

// CheckReplicationConnection opens and closes a replication connection, which pg_hba.conf
// treats separately from ordinary ones.
func CheckReplicationConnection(ctx context.Context, dsn string, rep *checks.Scoped) {
	conn, err := connectReplication(ctx, dsn)
	if err != nil {
		rep.Fail("replication connection", err.Error(), `allow it in pg_hba.conf: "host replication <role> <cdcd address>/32 scram-sha-256" (and for the database), then SELECT pg_reload_conf()`)
		return
	}
	_ = conn.Close(ctx)
	rep.OK("replication connection", "accepted")
}

// serverVersion spells server_version_num as PostgreSQL does: major.minor since 10 (150018 is
// 15.18), major.minor.patch before (90624 is 9.6.24).
func serverVersion(num int) string {
	if num >= 100000 {
		return fmt.Sprintf("%d.%d", num/10000, num%10000)
	}
	return fmt.Sprintf("%d.%d.%d", num/10000, num/100%100, num%100)
}

// SnapshotChecks is what `cdcd check` needs to know of a pipeline's snapshots.
type SnapshotChecks struct {
	// Snapshots: the pipeline snapshots at start (its snapshot mode is not never); without,
	// only on-demand requests snapshot, and what they would refuse is a warning.
	Snapshots bool
	// KeylessAccepted is the pipeline's snapshot.accept_inexact_keyless.
	KeylessAccepted []string
}

// CheckKeylessSnapshots flags each table without a key (no primary key or replica identity
// index: what the snapshot reads by page ranges) that snapshot.accept_inexact_keyless does not
// list, since its snapshot is refused: a failure when the pipeline snapshots at start, a
// warning when only on-demand snapshots would meet it. `cdcd check` runs it; the pipeline
// itself refuses such a table only when it snapshots it (a table whose snapshot completed
// under an earlier version is not read again).
func CheckKeylessSnapshots(ctx context.Context, conn *pgx.Conn, tables []string, snap SnapshotChecks, rep *checks.Scoped) {
	accepted := map[string]bool{}
	for _, t := range snap.KeylessAccepted {
		accepted[normalizeTable(t)] = true
	}
	for _, t := range tables {
		schema, name, err := change.ParseTableName(t)
		if err != nil {
			continue // checkTable reports it
		}
		var ident string
		var hasPK bool
		err = conn.QueryRow(ctx, `SELECT c.relreplident::text,
				EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)
			FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')`, schema, name).Scan(&ident, &hasPK)
		if errors.Is(err, pgx.ErrNoRows) || err == nil && (ident == "i" || hasPK && ident != "n") {
			continue // missing (checkTable reports it), or keyed
		}
		if err != nil {
			snapshot.KeylessUnknown(rep, t, err)
			continue
		}
		key := schema + "." + name
		snapshot.KeylessCheck{Table: t, NoKey: "has no key", Accepted: accepted[key], Snapshots: snap.Snapshots,
			Refused: "has no key (no primary key or replica identity index): the snapshot refuses it and stops the pipeline, since its chunks cannot be reconciled with changes written meanwhile",
			AddKey:  fmt.Sprintf("add a primary key to %s for an exact snapshot", quoteQualified(schema, name)),
			Fix: fmt.Sprintf("add a primary key (or ALTER TABLE %s REPLICA IDENTITY USING INDEX a unique index of NOT NULL columns), or accept an inexact snapshot by listing %s in the pipeline's snapshot.accept_inexact_keyless",
				quoteQualified(schema, name), key)}.Report(rep)
	}
}
