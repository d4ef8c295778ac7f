package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	gmysql "github.com/go-mysql-org/go-mysql/mysql"
)

// compositeTable is scenario 7's second table: the same rows as benchTable under the composite
// key (a int, b varchar(64)), a repeating (1000 values) and b unique. compositeLabel is its cdcd
// result's tool in the report.
const (
	compositeTable = benchTable + "_ck"
	compositeLabel = "cdcd, composite key (a int, b varchar)"
)

// mysqlSnapshot is scenario 7: an initial snapshot of -mysql-snapshot-rows existing MariaDB rows
// by cdcd (`snapshot: initial`), with a plain `SELECT *` of the table on one connection, the
// rows read and discarded, as the limit. Debezium 3.6.1's MySQL connector does not run against
// MariaDB (scenario 5 says why). Then cdcd snapshots the same rows in a table keyed by
// (a int, b varchar) (compositeTable), a pipeline of its own, reported beside the one-column
// key's (the target: at most 1.5× slower).
func (s *suite) mysqlSnapshot(ctx context.Context) {
	o := s.o
	rows := o.mysqlSnapRows
	sc := s.add(&scenarioResult{ID: "7", Kind: "throughput", Title: fmt.Sprintf("MariaDB initial snapshot of %s rows", human(rows))})
	sc.Debezium = &toolResult{Tool: "Debezium", Status: "not available: Debezium's MySQL connector does not support MariaDB (scenario 5)"}
	fail := func(err error) { sc.CDCD, sc.Limit = failed("cdcd", err), failed("SELECT", err) }
	name := safeName(fmt.Sprintf("bench_%s_mysnap", s.stamp))
	db := "cdcdbench_" + name
	var topics []string
	admin, my, cleanup, err := s.mysqlBenchDB(ctx, db, &topics)
	if err != nil {
		fail(err)
		return
	}
	defer cleanup()
	addr := my.host + ":" + my.port
	table := "`" + db + "`." + benchTable
	logf("mysql snapshot: writing %d rows", rows)
	// The sequence engine fills the table server-side, in 500k-row statements.
	for first := 0; first < rows; first += 500_000 {
		last := min(rows, first+500_000) - 1
		q := fmt.Sprintf("INSERT INTO %s SELECT seq + %d, seq %% 1000, CONCAT('row-', seq, '-', MD5(seq)), NOW(6) FROM `%s`.seq_%d_to_%d",
			table, backlogFirstID, db, first, last)
		if _, err := admin.Execute(q); err != nil {
			fail(fmt.Errorf("filling the table: %w", err))
			return
		}
	}
	ckTable := "`" + db + "`." + compositeTable
	ckCreate := "CREATE TABLE " + ckTable + " (id bigint NOT NULL, a int NOT NULL, b varchar(64) NOT NULL, c timestamp(6) NOT NULL, PRIMARY KEY (a, b))"
	if _, err := admin.Execute(ckCreate); err != nil {
		fail(fmt.Errorf("%s: %w", ckCreate, err))
		return
	}
	for first := 0; first < rows; first += 500_000 {
		q := fmt.Sprintf("INSERT INTO %s SELECT id, a, b, c FROM %s WHERE id >= %d AND id < %d",
			ckTable, table, first+backlogFirstID, min(rows, first+500_000)+backlogFirstID)
		if _, err := admin.Execute(q); err != nil {
			fail(fmt.Errorf("filling the composite-key table: %w", err))
			return
		}
	}
	for _, t := range []string{table, ckTable} {
		if _, err := admin.Execute("ANALYZE TABLE " + t); err != nil {
			fail(err)
			return
		}
	}
	logf("mysql snapshot: limit: SELECT * on one connection")
	sc.Limit = selectLimit(ctx, addr, my, table, rows)
	logResult(sc, sc.Limit)

	httpAddr, err := freeAddr()
	if err != nil {
		sc.CDCD = failed("cdcd", err)
		return
	}
	cname := name + "_c"
	cfg := mysqlPipelineConfig(o, cname, strings.TrimSuffix(o.mysqlDSN, "/")+"/"+db, db, 45000+int(time.Now().Unix()%10000), httpAddr)
	cfg = strings.Replace(cfg, "    snapshot: never\n", "    snapshot: initial\n", 1)
	ct, err := newCDCDTool(o, s.dir, cname, cfg, httpAddr)
	if err != nil {
		sc.CDCD = failed("cdcd", err)
		return
	}
	ct.topicOverride = ct.name + "." + db + "." + benchTable
	topics = append(topics, ct.topic())
	logf("mysql snapshot: cdcd")
	sc.CDCD = measureCatchupOf(ctx, o, ct, backlogFirstID, rows, max(o.catchupTimeout, 15*time.Minute))
	s.noteSettings(ct, "MariaDB snapshot")
	ct.stop()
	logResult(sc, sc.CDCD)
	if ctx.Err() != nil {
		return
	}

	// The same rows under the composite key: a pipeline of its own on the second table.
	logf("mysql snapshot: limit, composite key: SELECT * on one connection")
	lim := selectLimit(ctx, addr, my, ckTable, rows)
	lim.Tool = "SELECT, composite key"
	logResult(sc, lim)
	ck := s.compositeSnapshot(ctx, db, name+"_k", httpAddr, rows, &topics)
	sc.Also = append(sc.Also, ck, lim)
	logResult(sc, ck)
}

// compositeSnapshot runs cdcd's initial snapshot of db.compositeTable (rows rows) in a pipeline
// named name and measures it as scenario 7's one-column run.
func (s *suite) compositeSnapshot(ctx context.Context, db, name, httpAddr string, rows int, topics *[]string) *toolResult {
	o := s.o
	cfg := mysqlTablePipelineConfig(o, name, strings.TrimSuffix(o.mysqlDSN, "/")+"/"+db, db, compositeTable, 55000+int(time.Now().Unix()%10000), httpAddr)
	cfg = strings.Replace(cfg, "    snapshot: never\n", "    snapshot: initial\n", 1)
	ct, err := newCDCDTool(o, s.dir, name, cfg, httpAddr)
	if err != nil {
		return failed(compositeLabel, err)
	}
	ct.topicOverride = ct.name + "." + db + "." + compositeTable
	ct.keyFormat = formatAvroComposite
	*topics = append(*topics, ct.topic())
	logf("mysql snapshot: cdcd, composite key")
	r := measureCatchupOf(ctx, o, ct, backlogFirstID, rows, max(o.catchupTimeout, 15*time.Minute))
	ct.stop()
	r.Tool = compositeLabel
	return r
}

// selectLimit reads the whole table with one streaming SELECT and discards the rows: what the
// server hands out on one connection (text protocol, as cdcd's snapshot reads it).
func selectLimit(ctx context.Context, addr string, my myAddr, table string, rows int) *toolResult {
	c, err := client.Connect(addr, my.user, my.password, "")
	if err != nil {
		return failed("SELECT", err)
	}
	defer c.Close()
	var got int
	var bytes int64
	var r gmysql.Result
	t0 := time.Now()
	err = c.ExecuteSelectStreaming("SELECT * FROM "+table, &r, func(row []gmysql.FieldValue) error {
		got++
		for _, v := range row {
			bytes += int64(len(v.AsString()))
		}
		return ctx.Err()
	}, nil)
	took := time.Since(t0)
	if err != nil {
		return failed("SELECT", err)
	}
	if got != rows {
		return failed("SELECT", fmt.Errorf("read %d rows, want %d", got, rows))
	}
	return &toolResult{Tool: "SELECT", Rows: got, Took: took, Bytes: bytes, CPU: -1,
		Notes: []string{"`SELECT *` on one connection (go-mysql, streaming), rows discarded; server CPU not counted"}}
}
