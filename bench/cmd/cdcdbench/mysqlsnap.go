package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	gmysql "github.com/go-mysql-org/go-mysql/mysql"
)

// mysqlSnapshot is scenario 7: an initial snapshot of -mysql-snapshot-rows existing MariaDB rows
// by cdcd (`snapshot: initial`), with a plain `SELECT *` of the table on one connection, the
// rows read and discarded, as the limit. Debezium 3.6.1's MySQL connector does not run against
// MariaDB (scenario 5 says why).
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
	if _, err := admin.Execute("ANALYZE TABLE " + table); err != nil {
		fail(err)
		return
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
