package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

const benchTable = "bench_rows"

// dbDSN is the admin DSN pointed at database db.
func dbDSN(adminDSN, db string) (string, error) {
	u, err := url.Parse(adminDSN)
	if err != nil || u.Scheme == "" {
		return "", fmt.Errorf("-pg-dsn must be a postgres:// URL, got %q", adminDSN)
	}
	u.Path = "/" + db
	return u.String(), nil
}

// withoutTLS is dsn with sslmode=disable: the same server over a plain connection.
func withoutTLS(dsn string) (string, error) {
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme == "" {
		return "", fmt.Errorf("a postgres:// URL is needed, got %q", dsn)
	}
	q := u.Query()
	q.Set("sslmode", "disable")
	u.RawQuery = q.Encode()
	return u.String(), nil
}

func connect(ctx context.Context, dsn string, params map[string]string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, err
	}
	cfg.RuntimeParams["application_name"] = "cdcdbench"
	for k, v := range params {
		cfg.RuntimeParams[k] = v
	}
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	c, err := pgx.ConnectConfig(cctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", dsn, err)
	}
	return c, nil
}

// createDatabase creates db and the benchmark table in it.
func createDatabase(ctx context.Context, adminDSN, db string) error {
	admin, err := connect(ctx, adminDSN, nil)
	if err != nil {
		return err
	}
	defer admin.Close(context.Background())
	cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if _, err := admin.Exec(cctx, "CREATE DATABASE "+pgx.Identifier{db}.Sanitize()); err != nil {
		return fmt.Errorf("creating database %s: %w", db, err)
	}
	dsn, err := dbDSN(adminDSN, db)
	if err != nil {
		return err
	}
	c, err := connect(ctx, dsn, nil)
	if err != nil {
		return err
	}
	defer c.Close(context.Background())
	_, err = c.Exec(cctx, `CREATE TABLE public.`+benchTable+` (id bigint PRIMARY KEY, a int NOT NULL, b text NOT NULL, c timestamptz NOT NULL)`)
	if err != nil {
		return fmt.Errorf("creating table: %w", err)
	}
	return nil
}

// createRecvSlot creates the baseline's pgoutput slot.
func createRecvSlot(ctx context.Context, dsn, slot string) error {
	c, err := connect(ctx, dsn, nil)
	if err != nil {
		return err
	}
	defer c.Close(context.Background())
	cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	_, err = c.Exec(cctx, "SELECT pg_create_logical_replication_slot($1, 'pgoutput')", slot)
	if err != nil {
		return fmt.Errorf("creating slot %s: %w", slot, err)
	}
	return nil
}

// walPos is the server's current WAL insert position as text and as a number.
func walPos(ctx context.Context, c *pgx.Conn) (string, uint64, error) {
	var s string
	var n int64
	err := c.QueryRow(ctx, "SELECT pg_current_wal_lsn()::text, (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint").Scan(&s, &n)
	return s, uint64(n), err
}

// payload is a ~40-byte text value for column b.
func payload(id int64) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	var b [40]byte
	x := uint64(id)*0x9E3779B97F4A7C15 + 1
	for i := range b {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		b[i] = alphabet[x%uint64(len(alphabet))]
	}
	return string(b[:])
}

// backlogResult is what writing the backlog took.
type backlogResult struct {
	took     time.Duration
	walBytes uint64
	endLSN   string
}

// writeBacklog inserts rows [firstID, firstID+rows) with COPY, txRows per transaction, over
// two connections (the table has no ordering requirement). synchronous_commit is off for these
// sessions only: it speeds up writing and changes nothing about what is decoded.
func writeBacklog(ctx context.Context, dsn string, firstID int64, rows, txRows int) (backlogResult, error) {
	var res backlogResult
	c, err := connect(ctx, dsn, nil)
	if err != nil {
		return res, err
	}
	defer c.Close(context.Background())
	_, startLSN, err := walPos(ctx, c)
	if err != nil {
		return res, err
	}
	wctx, cancel := context.WithTimeout(ctx, 15*time.Minute)
	defer cancel()
	t0 := time.Now()
	const writers = 2
	type chunk struct {
		first int64
		n     int
	}
	chunks := make(chan chunk)
	errs := make(chan error, writers)
	var wg sync.WaitGroup
	for range writers {
		wc, err := connect(ctx, dsn, map[string]string{"synchronous_commit": "off"})
		if err != nil {
			cancel()
			wg.Wait()
			return res, err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer wc.Close(context.Background())
			now := time.Now()
			for ch := range chunks {
				i := 0
				_, err := wc.CopyFrom(wctx, pgx.Identifier{"public", benchTable}, []string{"id", "a", "b", "c"},
					pgx.CopyFromFunc(func() ([]any, error) {
						if i == ch.n {
							return nil, nil
						}
						id := ch.first + int64(i)
						i++
						return []any{id, int32(id % 1000), payload(id), now}, nil
					}))
				if err != nil {
					errs <- fmt.Errorf("COPY of rows %d..%d: %w", ch.first, ch.first+int64(ch.n)-1, err)
					cancel()
					for range chunks {
					}
					return
				}
			}
		}()
	}
feed:
	for off := 0; off < rows; off += txRows {
		select {
		case chunks <- chunk{first: firstID + int64(off), n: min(txRows, rows-off)}:
		case <-wctx.Done():
			break feed
		}
	}
	close(chunks)
	wg.Wait()
	select {
	case err := <-errs:
		return res, err
	default:
	}
	if err := wctx.Err(); err != nil {
		return res, fmt.Errorf("writing the backlog: %w", err)
	}
	res.took = time.Since(t0)
	var endLSN uint64
	res.endLSN, endLSN, err = walPos(ctx, c)
	if err != nil {
		return res, err
	}
	// The backlog was committed asynchronously: one synchronous commit (a transaction with an
	// xid) flushes all WAL before it, so walsenders can decode the whole backlog now.
	if _, err := c.Exec(ctx, "SELECT txid_current()"); err != nil {
		return res, err
	}
	res.walBytes = endLSN - startLSN
	return res, nil
}

// slotActivePID returns the walsender pid streaming from slot, or 0.
func slotActivePID(ctx context.Context, c *pgx.Conn, slot string) int {
	var pid *int32
	qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := c.QueryRow(qctx, "SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1", slot).Scan(&pid); err != nil || pid == nil {
		return 0
	}
	return int(*pid)
}

// dropDatabase terminates the database's walsenders, drops its slots and the database.
func dropDatabase(ctx context.Context, adminDSN, db string) error {
	admin, err := connect(ctx, adminDSN, nil)
	if err != nil {
		return err
	}
	defer admin.Close(context.Background())
	cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	var errs []error
	for attempt := 0; ; attempt++ {
		rows, err := admin.Query(cctx, "SELECT slot_name, active_pid FROM pg_replication_slots WHERE database = $1", db)
		if err != nil {
			return fmt.Errorf("listing slots of %s: %w", db, err)
		}
		type slot struct {
			name string
			pid  *int32
		}
		var slots []slot
		for rows.Next() {
			var s slot
			if err := rows.Scan(&s.name, &s.pid); err != nil {
				rows.Close()
				return err
			}
			slots = append(slots, s)
		}
		rows.Close()
		if len(slots) == 0 {
			break
		}
		busy := false
		for _, s := range slots {
			if s.pid != nil {
				busy = true
				_, _ = admin.Exec(cctx, "SELECT pg_terminate_backend($1)", *s.pid)
				continue
			}
			if _, err := admin.Exec(cctx, "SELECT pg_drop_replication_slot($1)", s.name); err != nil {
				var pgErr *pgconn.PgError
				if errors.As(err, &pgErr) && pgErr.Code == "55006" { // in use: retry
					busy = true
					continue
				}
				errs = append(errs, fmt.Errorf("dropping slot %s: %w", s.name, err))
			}
		}
		if !busy || attempt > 100 {
			if busy {
				errs = append(errs, fmt.Errorf("slots of %s still active after terminating their walsenders", db))
			}
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := admin.Exec(cctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{db}.Sanitize()+" WITH (FORCE)"); err != nil {
		errs = append(errs, fmt.Errorf("dropping database %s: %w", db, err))
	}
	return errors.Join(errs...)
}

// latencyWriter commits rows at a fixed rate over several connections, txRows rows per
// transaction (1: single-row transactions).
type latencyWriter struct {
	dsn     string
	firstID int64
	rate    int
	dur     time.Duration
	conns   int
	txRows  int
	// hardStop: stop sending when the duration (plus 5 s) is over, even if not every row was
	// sent (a load the machine cannot sustain); only the acknowledged rows count then.
	hardStop bool

	// per row (index = id - firstID), nanoseconds since the Unix epoch
	sched, ack []int64
	sent       int
	started    time.Time
	finished   time.Time
	late       int // rows that started more than 10ms after their scheduled time
}

func (w *latencyWriter) total() int { return int(float64(w.rate) * w.dur.Seconds()) }

// run writes until every row is committed, the context ends, or an insert fails.
func (w *latencyWriter) run(ctx context.Context) error {
	n := w.total()
	w.sched = make([]int64, n)
	w.ack = make([]int64, n)
	conns := make([]*pgx.Conn, 0, w.conns)
	defer func() {
		for _, c := range conns {
			c.Close(context.Background())
		}
	}()
	const insert = "INSERT INTO public." + benchTable + " (id, a, b, c) VALUES ($1, $2, $3, clock_timestamp())"
	for range w.conns {
		c, err := connect(ctx, w.dsn, nil)
		if err != nil {
			return err
		}
		if _, err := c.Prepare(ctx, "ins", insert); err != nil {
			return fmt.Errorf("preparing the insert: %w", err)
		}
		conns = append(conns, c)
	}
	limit := w.dur + 2*time.Minute
	if w.hardStop {
		limit = w.dur + 5*time.Second
	}
	wctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	jobs := make(chan int, n)
	var (
		wg      sync.WaitGroup
		errOnce sync.Once
		werr    error
		lateMu  sync.Mutex
	)
	w.started = time.Now()
	start := w.started.UnixNano()
	interval := float64(time.Second) / float64(w.rate)
	k := max(1, w.txRows)
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			late := 0
			for first := range jobs {
				if wctx.Err() != nil {
					continue
				}
				last := min(n, first+k) - 1
				sched := start + int64(float64(last)*interval)
				if time.Now().UnixNano()-sched > int64(10*time.Millisecond) {
					late++
				}
				err := func() error {
					tx, err := c.Begin(wctx)
					if err != nil {
						return err
					}
					defer tx.Rollback(context.Background()) //nolint:errcheck // no-op after commit
					for i := first; i <= last; i++ {
						w.sched[i] = start + int64(float64(i)*interval)
						id := w.firstID + int64(i)
						if _, err := tx.Exec(wctx, "ins", id, int32(id%1000), payload(id)); err != nil {
							return fmt.Errorf("insert of id %d: %w", id, err)
						}
					}
					return tx.Commit(wctx)
				}()
				if err != nil {
					errOnce.Do(func() { werr = err })
					cancel()
					continue
				}
				ack := time.Now().UnixNano()
				for i := first; i <= last; i++ {
					w.ack[i] = ack
				}
			}
			lateMu.Lock()
			w.late += late
			lateMu.Unlock()
		}()
	}
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	sent := 0
pace:
	for sent < n {
		select {
		case <-wctx.Done():
			break pace
		case now := <-tick.C:
			// a transaction is sent once its last row is due
			due := min(n, int(float64(now.UnixNano()-start)/interval)+1)
			for sent < n && (min(n, sent+k) <= due) {
				jobs <- sent
				sent = min(n, sent+k)
			}
		}
	}
	close(jobs)
	wg.Wait()
	w.sent = sent
	w.finished = time.Now()
	if w.hardStop && ctx.Err() == nil && errors.Is(wctx.Err(), context.DeadlineExceeded) {
		if werr != nil && errors.Is(werr, context.DeadlineExceeded) {
			werr = nil // the hard stop cut a transaction short: it is not acknowledged
		}
		if werr == nil {
			return nil
		}
	}
	if werr != nil {
		return werr
	}
	if sent < n {
		return fmt.Errorf("latency writer stopped after %d of %d rows: %w", sent, n, wctx.Err())
	}
	return nil
}

// safeName keeps lowercase letters, digits and '_' (slot, database and pipeline names).
func safeName(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

// acked is the number of rows whose transaction was acknowledged.
func (w *latencyWriter) acked() int {
	n := 0
	for _, a := range w.ack {
		if a != 0 {
			n++
		}
	}
	return n
}
