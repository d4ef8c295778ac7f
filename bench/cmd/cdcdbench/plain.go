package main

import (
	"context"
	"fmt"
)

// plainPair is scenario 1 again without TLS: a second cdcd pipeline (its own slot,
// publication and topic) and a second pg_recvlogical slot, on connections with
// sslmode=disable, draining the same backlog after the TLS pair did. The stack's PostgreSQL
// negotiates TLS by default, and the walsender then sends every message as a TLS record of
// its own: the pair says what that costs each reader.
type plainPair struct {
	tool      streamTool
	dsn       string
	recvSlot  string // "" when the pg_recvlogical baseline is off
	pubOfRecv string
	recvBin   string
	rows      int
}

// preparePlainPair makes the second pipeline's slot and publication (first start until
// ready, then stop) and the second pg_recvlogical slot, before the backlog is written.
func (s *suite) preparePlainPair(ctx context.Context, name, db, dsn string, baseline bool) (*plainPair, error) {
	plainDSN, err := withoutTLS(dsn)
	if err != nil {
		return nil, err
	}
	t, err := s.pgToolAt("cdcd", name+"_plain", db, plainDSN, "never")
	if err != nil {
		return nil, err
	}
	logf("cdcd without TLS: creating the slot and publication (start until ready, then stop)")
	if err := t.start(ctx); err != nil {
		return nil, err
	}
	if err := t.waitReady(ctx); err != nil {
		t.stop()
		return nil, fmt.Errorf("first start without TLS: %w", err)
	}
	t.stop()
	p := &plainPair{tool: t, dsn: plainDSN, rows: s.o.rows}
	if baseline {
		p.recvSlot, p.pubOfRecv, p.recvBin = name+"_recvplain", name, s.env.recvlogical
		if err := createRecvSlot(ctx, dsn, p.recvSlot); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// run drains the backlog (up to endLSN) with pg_recvlogical, then with cdcd, both without TLS.
func (p *plainPair) run(ctx context.Context, o options, endLSN string) []*toolResult {
	var out []*toolResult
	if p.recvSlot != "" {
		logf("limit: pg_recvlogical without TLS draining the backlog")
		b, err := runRecvlogical(ctx, p.recvBin, p.dsn, p.recvSlot, p.pubOfRecv, endLSN, p.rows)
		if err != nil {
			out = append(out, failed(labelRecvNoTLS, err))
		} else {
			out = append(out, &toolResult{Tool: labelRecvNoTLS, Rows: p.rows, Took: b.Took, CPU: b.RecvCPU, PeakRSSKB: -1,
				Notes: []string{fmt.Sprintf("walsender CPU %.1f s; sslmode=disable; output to /dev/null; proto_version=1", b.WalsenderCPU)}})
		}
		if err := dropSlot(ctx, p.dsn, p.recvSlot); err != nil {
			logf("%v", err)
		}
	}
	logf("cdcd without TLS: catch-up of %d rows", p.rows)
	r := measureCatchupOf(ctx, o, p.tool, backlogFirstID, p.rows, o.catchupTimeout)
	r.Tool = labelCDCDNoTLS
	if r.ok() {
		r.Notes = append(r.Notes, "sslmode=disable")
	}
	p.tool.stop()
	return append(out, r)
}
