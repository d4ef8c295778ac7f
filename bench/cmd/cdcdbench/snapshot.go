package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"
)

// snapshot is scenario 3: an initial snapshot of -snapshot-rows existing rows by cdcd
// (`snapshot: initial`) and by Debezium (snapshot.mode=initial), with `COPY ... TO STDOUT
// (FORMAT binary)` to /dev/null as the limit. All three read the same table.
func (s *suite) snapshot(ctx context.Context) {
	o := s.o
	sc := s.add(&scenarioResult{ID: "3", Kind: "throughput", Title: fmt.Sprintf("initial snapshot of %s rows", human(o.snapRows))})
	name := safeName(fmt.Sprintf("bench_%s_snap", s.stamp))
	db := "cdcdbench_" + name
	var topics []string
	defer func() { s.cleanupPG(ctx, db, topics) }()
	err := func() error {
		if err := createDatabase(ctx, o.pgDSN, db); err != nil {
			return err
		}
		dsn, err := dbDSN(o.pgDSN, db)
		if err != nil {
			return err
		}
		logf("snapshot: writing %d rows", o.snapRows)
		if _, err := writeBacklog(ctx, dsn, backlogFirstID, o.snapRows, 10_000); err != nil {
			return err
		}
		if err := execSQL(ctx, dsn, "VACUUM ANALYZE public."+benchTable); err != nil {
			return err
		}
		logf("snapshot: limit: COPY (FORMAT binary) to /dev/null")
		sc.Limit = copyLimit(ctx, dsn, o.snapRows)
		logResult(sc, sc.Limit)
		return nil
	}()
	if err != nil {
		sc.CDCD, sc.Debezium = failed("cdcd", err), failed("Debezium", err)
		return
	}

	// cdcd: only when this build accepts `snapshot: initial`.
	cname := name + "_c"
	t, err := s.pgTool("cdcd", cname, db, "initial")
	if err != nil {
		sc.CDCD = failed("cdcd", err)
	} else {
		topics = append(topics, t.topic())
		ct := t.(*cdcdTool)
		refusal, err := cdcdRefuses(ctx, o, s.dir, cname, ct.cfgExcerpt)
		switch {
		case err != nil:
			sc.CDCD = failed("cdcd", err)
		case refusal != "" && strings.Contains(refusal, "snapshot"):
			sc.CDCD = notBuilt("cdcd", "`cdcd validate` refuses `snapshot: initial`: "+lineWith(refusal, "snapshot"))
		case refusal != "":
			sc.CDCD = failed("cdcd", fmt.Errorf("cdcd validate: %s", refusal))
		default:
			logf("snapshot: cdcd")
			sc.CDCD = measureCatchupOf(ctx, o, t, backlogFirstID, o.snapRows, max(o.catchupTimeout, 15*time.Minute))
			s.noteSettings(t, "snapshot")
			t.stop()
		}
		logResult(sc, sc.CDCD)
	}
	if o.noDebezium || ctx.Err() != nil {
		return
	}
	dname := name + "_d"
	t, err = s.pgTool("Debezium", dname, db, "initial")
	if err != nil {
		sc.Debezium = failed("Debezium", err)
		return
	}
	topics = append(topics, t.topic(), "__debezium-heartbeat."+dname)
	logf("snapshot: Debezium")
	sc.Debezium = measureCatchupOf(ctx, o, t, backlogFirstID, o.snapRows, max(o.catchupTimeout, 15*time.Minute))
	s.noteSettings(t, "snapshot")
	t.stop()
	logResult(sc, sc.Debezium)
}

// copyLimit reads the whole table with COPY (FORMAT binary) and discards it: what the server
// can hand out on one connection.
func copyLimit(ctx context.Context, dsn string, rows int) *toolResult {
	c, err := connect(ctx, dsn, nil)
	if err != nil {
		return failed("COPY binary", err)
	}
	defer c.Close(context.Background())
	cw := &countWriter{}
	t0 := time.Now()
	tag, err := c.PgConn().CopyTo(ctx, cw, "COPY public."+benchTable+" TO STDOUT (FORMAT binary)")
	took := time.Since(t0)
	if err != nil {
		return failed("COPY binary", err)
	}
	return &toolResult{Tool: "COPY binary", Rows: int(tag.RowsAffected()), Took: took, Bytes: cw.n, CPU: -1,
		Notes: []string{"one connection, client discards the bytes; server CPU not counted"}}
}

type countWriter struct{ n int64 }

func (w *countWriter) Write(p []byte) (int, error) { w.n += int64(len(p)); return len(p), nil }

var _ io.Writer = (*countWriter)(nil)

// lineWith is the first line of s that contains sub (or its first line).
func lineWith(s, sub string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			return strings.TrimSpace(l)
		}
	}
	return firstLine(s)
}
