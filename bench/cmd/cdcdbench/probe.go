package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// slotProbe is the latency limit of the PostgreSQL side: a bare pgoutput consumer of its own
// slot that stamps each inserted row on receipt, with nothing after it (no encoding, no
// Kafka). At the same write load, cdcd's and Debezium's latency minus the probe's is what the
// tools and Kafka add.
type slotProbe struct {
	firstID int64
	n       int
	// bare, if set, gets every row on receipt (measureBare).
	bare *barePipeline

	mu      sync.Mutex
	recv    []int64
	srcTime []int64
	got     int
	err     error
}

// runProbe streams slot (created here, temporary) of publication until every row arrived or
// ctx ends; ready is closed once the stream started.
func (p *slotProbe) run(ctx context.Context, dsn, slot, publication string, ready chan<- struct{}) error {
	p.recv, p.srcTime = make([]int64, p.n), make([]int64, p.n)
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		return err
	}
	cfg.RuntimeParams["replication"] = "database"
	cfg.RuntimeParams["application_name"] = "cdcdbench-probe"
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("probe: connecting: %w", err)
	}
	defer conn.Close(context.Background())
	res, err := pglogrepl.CreateReplicationSlot(ctx, conn, slot, "pgoutput", pglogrepl.CreateReplicationSlotOptions{Temporary: true})
	if err != nil {
		return fmt.Errorf("probe: creating slot %s: %w", slot, err)
	}
	start, err := pglogrepl.ParseLSN(res.ConsistentPoint)
	if err != nil {
		return err
	}
	if err := pglogrepl.StartReplication(ctx, conn, slot, start, pglogrepl.StartReplicationOptions{
		PluginArgs: []string{"proto_version '1'", "publication_names '" + publication + "'"}}); err != nil {
		return fmt.Errorf("probe: starting replication: %w", err)
	}
	close(ready)
	var (
		flushed    = start
		nextStatus = time.Now().Add(time.Second)
		idCol      = -1
		cCol       = -1
	)
	for !p.done() {
		if time.Now().After(nextStatus) {
			if err := pglogrepl.SendStandbyStatusUpdate(ctx, conn, pglogrepl.StandbyStatusUpdate{WALWritePosition: flushed, WALFlushPosition: flushed, WALApplyPosition: flushed}); err != nil {
				return fmt.Errorf("probe: standby status: %w", err)
			}
			nextStatus = time.Now().Add(time.Second)
		}
		rctx, cancel := context.WithDeadline(ctx, nextStatus)
		msg, err := conn.ReceiveMessage(rctx)
		cancel()
		now := time.Now().UnixNano()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if pgconn.Timeout(err) || errors.Is(err, context.DeadlineExceeded) {
				continue
			}
			return fmt.Errorf("probe: receiving: %w", err)
		}
		cd, ok := msg.(*pgproto3.CopyData)
		if !ok || len(cd.Data) == 0 {
			continue
		}
		switch cd.Data[0] {
		case pglogrepl.PrimaryKeepaliveMessageByteID:
			ka, err := pglogrepl.ParsePrimaryKeepaliveMessage(cd.Data[1:])
			if err == nil && ka.ReplyRequested {
				nextStatus = time.Time{}
			}
		case pglogrepl.XLogDataByteID:
			xld, err := pglogrepl.ParseXLogData(cd.Data[1:])
			if err != nil {
				return err
			}
			m, err := pglogrepl.Parse(xld.WALData)
			if err != nil {
				return err
			}
			switch m := m.(type) {
			case *pglogrepl.RelationMessage:
				for i, c := range m.Columns {
					switch c.Name {
					case "id":
						idCol = i
					case "c":
						cCol = i
					}
				}
			case *pglogrepl.InsertMessage:
				if idCol < 0 || cCol < 0 || m.Tuple == nil {
					continue
				}
				id, err := strconv.ParseInt(string(m.Tuple.Columns[idCol].Data), 10, 64)
				if err != nil {
					continue
				}
				ts, _ := time.Parse("2006-01-02 15:04:05.999999-07", string(m.Tuple.Columns[cCol].Data))
				if p.bare != nil {
					p.bare.add(id, ts)
				}
				p.note(id, now, ts)
			case *pglogrepl.CommitMessage:
				flushed = m.TransactionEndLSN
			}
		}
	}
	return nil
}

func (p *slotProbe) note(id, now int64, ts time.Time) {
	i := id - p.firstID
	if i < 0 || i >= int64(p.n) {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.recv[i] == 0 {
		p.recv[i] = now
		if !ts.IsZero() {
			p.srcTime[i] = ts.UnixNano()
		}
		p.got++
	}
}

func (p *slotProbe) received() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.got
}

func (p *slotProbe) done() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.got >= p.n
}

// measureProbe is measureSteady with the slot probe in place of a tool.
func measureProbe(ctx context.Context, o options, dsn, slot, publication string, firstID int64, rate, txRows int) *toolResult {
	const tool = "bare slot consumer"
	wr := &latencyWriter{dsn: dsn, firstID: firstID, rate: rate, dur: o.latDur, conns: o.latConns, txRows: txRows, hardStop: true}
	p := &slotProbe{firstID: firstID, n: wr.total()}
	cctx, cancel := context.WithTimeout(ctx, o.latDur+2*time.Minute)
	defer cancel()
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- p.run(cctx, dsn, slot, publication, ready) }()
	select {
	case <-ready:
	case err := <-done:
		return failed(tool, err)
	}
	if err := wr.run(ctx); err != nil {
		cancel()
		<-done
		return failed(tool, err)
	}
	acked := wr.acked()
	var err error
	deadline := time.After(30 * time.Second)
	tk := time.NewTicker(100 * time.Millisecond)
	defer tk.Stop()
wait:
	for {
		select {
		case err = <-done:
			break wait
		case <-tk.C:
			if p.received() >= acked && acked < p.n {
				cancel()
				err = <-done
				break wait
			}
		case <-deadline:
			cancel()
			err = <-done
			if err == nil {
				err = fmt.Errorf("only %d of %d rows arrived", p.received(), acked)
			}
			break wait
		}
	}
	if err != nil {
		return failed(tool, err)
	}
	r := &toolResult{Tool: tool, Rows: acked, Took: wr.finished.Sub(wr.started), CPU: -1}
	r.Achieved = float64(acked) / r.Took.Seconds()
	r.setLatencies(p.recv, p.srcTime, wr.ack)
	r.Notes = []string{"pglogrepl on a temporary pgoutput slot, rows stamped on receipt: PostgreSQL's part of the latency"}
	if acked < p.n {
		r.Notes = append(r.Notes, fmt.Sprintf("the writer reached only %d of %d rows within %s (+5 s)", acked, p.n, o.latDur))
	}
	r.Notes = append(r.Notes, r.writerNotes(wr.late)...)
	return r
}
