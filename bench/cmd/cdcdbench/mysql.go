package main

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	gmysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
)

// mysql is scenario 5: a MariaDB binlog backlog of -mysql-rows inserts, caught up by cdcd (when
// its MySQL source is built), by Debezium's MySQL connector, and read raw by go-mysql's
// BinlogSyncer (the limit: events decoded, nothing published).
func (s *suite) mysql(ctx context.Context) {
	o := s.o
	sc := s.add(&scenarioResult{ID: "5", Kind: "throughput", Title: fmt.Sprintf("MariaDB binlog catch-up, %s inserts in %d-row transactions", human(o.mysqlRows), o.txRows)})
	name := safeName(fmt.Sprintf("bench_%s_my", s.stamp))
	db := "cdcdbench_" + name
	var topics []string
	admin, my, cleanup, err := s.mysqlBenchDB(ctx, db, &topics)
	if err != nil {
		sc.CDCD, sc.Debezium, sc.Limit = failed("cdcd", err), failed("Debezium", err), failed("BinlogSyncer", err)
		return
	}
	defer cleanup()
	addr := my.host + ":" + my.port
	serverID := 40000 + int(time.Now().Unix()%10000)

	// cdcd: start once (as for the slot on PostgreSQL); a build without the MySQL source
	// refuses the pipeline.
	var ct *cdcdTool
	logf("mysql: cdcd first start")
	httpAddr, err := freeAddr()
	if err == nil {
		cname := name + "_c"
		cfg := mysqlPipelineConfig(o, cname, strings.TrimSuffix(o.mysqlDSN, "/")+"/"+db, db, serverID+1, httpAddr)
		ct, err = newCDCDTool(o, s.dir, cname, cfg, httpAddr)
	}
	if err != nil {
		sc.CDCD = failed("cdcd", err)
	} else {
		ct.topicOverride = ct.name + "." + db + "." + benchTable
		topics = append(topics, ct.topic())
		if err := ct.start(ctx); err != nil {
			sc.CDCD = failed("cdcd", err)
		} else if err := ct.waitReady(ctx); err != nil {
			msg := err.Error()
			if strings.Contains(msg, "not available in this version") {
				sc.CDCD = notBuilt("cdcd", "`cdcd run` refuses a mysql pipeline: the mysql source is not available in this version of cdcd")
			} else {
				sc.CDCD = failed("cdcd", err)
			}
			ct.stop()
			ct = nil
		} else {
			ct.stop()
		}
	}
	// Debezium: a first start records the binlog position (snapshot.mode=no_data).
	var dt *dbzTool
	if !o.noDebezium {
		logf("mysql: Debezium first start (records the binlog position)")
		dname := name + "_d"
		rest := "127.0.0.1:" + o.connectPort
		if o.connectPort == "" {
			rest, _ = freeAddr()
		}
		conn, err := debeziumMySQLConnector(o, dname, db, benchTable, serverID+2)
		if err != nil {
			sc.Debezium = failed("Debezium", err)
		} else {
			dt = &dbzTool{paths: s.paths, dir: s.dir, name: dname, topic_: dname + "." + db + "." + benchTable,
				s: connectSettings{Worker: debeziumWorkerSettings(o, s.paths, rest, s.dir+"/"+dname+".offsets"), Connector: conn, JVM: jvmArgs(o)}}
			topics = append(topics, dt.topic(), dname, dname+".schema-history")
			if err := dt.start(ctx); err != nil {
				sc.Debezium = failed("Debezium", err)
				dt = nil
			} else if err := dt.waitReady(ctx); err != nil {
				sc.Debezium = failed("Debezium", err)
				if strings.Contains(err.Error(), "SHOW BINARY LOG STATUS") {
					sc.Debezium = &toolResult{Tool: "Debezium", Status: "not available: Debezium " + s.paths.DebeziumVersion +
						"'s MySQL connector does not support MariaDB (it needs SHOW BINARY LOG STATUS, which MariaDB 10.11 lacks); " +
						"Debezium's MariaDB connector (io.debezium:debezium-connector-mariadb) is not served by the Maven Central this machine reaches"}
				}
				dt.stop()
				dt = nil
			} else {
				// The connector reads the binlog position in its task start; give it a moment
				// to store it before stopping.
				time.Sleep(3 * time.Second)
				dt.stop()
			}
		}
	}

	// The backlog.
	file, pos, err := binlogPos(admin)
	if err != nil {
		sc.Limit = failed("BinlogSyncer", err)
		return
	}
	logf("mysql: writing %d rows in transactions of %d", o.mysqlRows, o.txRows)
	if err := writeMySQLBacklog(ctx, addr, my, db, o.mysqlRows, o.txRows); err != nil {
		err = fmt.Errorf("writing the MariaDB backlog: %w", err)
		sc.Limit = failed("BinlogSyncer", err)
		if sc.CDCD == nil {
			sc.CDCD = failed("cdcd", err)
		}
		if sc.Debezium == nil {
			sc.Debezium = failed("Debezium", err)
		}
		return
	}
	if !o.profiling {
		logf("mysql: limit: go-mysql BinlogSyncer from %s:%d", file, pos)
		sc.Limit = binlogLimit(ctx, my, serverID+3, file, pos, benchTable, o.mysqlRows)
		logResult(sc, sc.Limit)
	}
	if ct != nil {
		logf("mysql: cdcd catch-up")
		sc.CDCD = measureCatchupOf(ctx, o, ct, backlogFirstID, o.mysqlRows, o.catchupTimeout)
		s.noteSettings(ct, "MariaDB")
		ct.stop()
		logResult(sc, sc.CDCD)
	}
	if dt != nil && ctx.Err() == nil {
		logf("mysql: Debezium catch-up")
		sc.Debezium = measureCatchupOf(ctx, o, dt, backlogFirstID, o.mysqlRows, o.catchupTimeout)
		s.noteSettings(dt, "MariaDB")
		dt.stop()
		logResult(sc, sc.Debezium)
	}
}

// mysqlBenchDB connects to MariaDB as the admin and creates database db with the bench table;
// cleanup (unless -keep) drops it and deletes the topics listed in *topics by then.
func (s *suite) mysqlBenchDB(ctx context.Context, db string, topics *[]string) (*client.Conn, myAddr, func(), error) {
	o := s.o
	my, err := parseMySQLDSN(o.mysqlDSN)
	if err != nil {
		return nil, my, nil, err
	}
	addr := my.host + ":" + my.port
	admin, err := client.Connect(addr, my.user, my.password, "")
	if err != nil {
		return nil, my, nil, fmt.Errorf("connecting to MariaDB at %s: %w (is the stack up?)", addr, err)
	}
	cleanup := func() {
		defer admin.Close()
		if o.keep {
			return
		}
		if _, err := admin.Execute("DROP DATABASE IF EXISTS `" + db + "`"); err != nil {
			logf("cleanup: dropping MariaDB database %s: %v", db, err)
		}
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if err := deleteTopicsAndSubjects(cctx, o.kafka, o.registry, *topics); err != nil {
			logf("cleanup: %v", err)
		}
	}
	for _, q := range []string{"CREATE DATABASE `" + db + "`",
		"CREATE TABLE `" + db + "`." + benchTable + " (id bigint PRIMARY KEY, a int NOT NULL, b varchar(64) NOT NULL, c timestamp(6) NOT NULL)"} {
		if _, err := admin.Execute(q); err != nil {
			cleanup()
			return nil, my, nil, fmt.Errorf("%s: %w", q, err)
		}
	}
	return admin, my, cleanup, nil
}

func mysqlPipelineConfig(o options, name, dsn, db string, serverID int, httpAddr string) string {
	return mysqlTablePipelineConfig(o, name, dsn, db, benchTable, serverID, httpAddr)
}

// mysqlTablePipelineConfig is mysqlPipelineConfig for table db.table.
func mysqlTablePipelineConfig(o options, name, dsn, db, table string, serverID int, httpAddr string) string {
	return fmt.Sprintf(`kafka:
  brokers: [%q]
  topic_partitions: %d
schema_registry:
  url: %q
http:
  listen: %q
log:
  level: info
  format: text
shutdown_timeout: 10s
pipelines:
  - name: %s
    source:
      mysql:
        dsn: %q
        server_id: %d
        tables: [%s.%s]
    snapshot: never
    topics:
      prefix: %s
%s`, o.kafka, o.partitions, o.registry, httpAddr, name, dsn, serverID, db, table, name, o.pipelineExtra)
}

func binlogPos(c *client.Conn) (string, uint32, error) {
	r, err := c.Execute("SHOW MASTER STATUS")
	if err != nil {
		return "", 0, fmt.Errorf("SHOW MASTER STATUS: %w", err)
	}
	if r.RowNumber() == 0 {
		return "", 0, fmt.Errorf("SHOW MASTER STATUS: no rows (is the binlog enabled?)")
	}
	file, _ := r.GetString(0, 0)
	pos, _ := r.GetInt(0, 1)
	return file, uint32(pos), nil
}

// writeMySQLBacklog inserts rows [1, rows] in multi-row INSERTs of txRows rows (autocommit:
// one transaction each) over two connections.
func writeMySQLBacklog(ctx context.Context, addr string, my myAddr, db string, rows, txRows int) error {
	const writers = 2
	chunks := make(chan int)
	errs := make(chan error, writers)
	var wg sync.WaitGroup
	for range writers {
		c, err := client.Connect(addr, my.user, my.password, db)
		if err != nil {
			close(chunks)
			wg.Wait()
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			var b strings.Builder
			for first := range chunks {
				b.Reset()
				b.WriteString("INSERT INTO " + benchTable + " (id, a, b, c) VALUES ")
				for i := first; i < min(rows+1, first+txRows); i++ {
					if i > first {
						b.WriteByte(',')
					}
					b.WriteString("(" + strconv.Itoa(i) + "," + strconv.Itoa(i%1000) + ",'" + payload(int64(i)) + "',NOW(6))")
				}
				if _, err := c.Execute(b.String()); err != nil {
					errs <- err
					for range chunks {
					}
					return
				}
			}
		}()
	}
feed:
	for first := 1; first <= rows; first += txRows {
		select {
		case chunks <- first:
		case <-ctx.Done():
			break feed
		case err := <-errs:
			close(chunks)
			wg.Wait()
			return err
		}
	}
	close(chunks)
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
	}
	return ctx.Err()
}

// binlogLimit reads the binlog from file:pos with go-mysql's BinlogSyncer until it decoded rows
// inserted rows of table: the raw read, nothing encoded or published.
func binlogLimit(ctx context.Context, my myAddr, serverID int, file string, pos uint32, table string, rows int) *toolResult {
	port, _ := strconv.Atoi(my.port)
	cfg := replication.BinlogSyncerConfig{ServerID: uint32(serverID), Flavor: gmysql.MariaDBFlavor, Host: my.host, Port: uint16(port),
		User: my.user, Password: my.password, Logger: slog.New(slog.DiscardHandler),
		// As cdcd reads it: DATETIME and TIMESTAMP as time.Time, not formatted as text (the
		// reader's cheaper setting).
		ParseTime: true}
	var ru0 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	t0 := time.Now()
	syncer := replication.NewBinlogSyncer(cfg)
	defer syncer.Close()
	st, err := syncer.StartSync(gmysql.Position{Name: file, Pos: pos})
	if err != nil {
		return failed("BinlogSyncer", err)
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	got := 0
	var bytes int64
	for got < rows {
		ev, err := st.GetEvent(cctx)
		if err != nil {
			return failed("BinlogSyncer", fmt.Errorf("after %d of %d rows: %w", got, rows, err))
		}
		bytes += int64(len(ev.RawData))
		if re, ok := ev.Event.(*replication.RowsEvent); ok && string(re.Table.Table) == table {
			switch ev.Header.EventType {
			case replication.WRITE_ROWS_EVENTv0, replication.WRITE_ROWS_EVENTv1, replication.WRITE_ROWS_EVENTv2:
				got += len(re.Rows)
			}
		}
	}
	took := time.Since(t0)
	var ru1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	cpu := tvSec(ru1.Utime) + tvSec(ru1.Stime) - tvSec(ru0.Utime) - tvSec(ru0.Stime)
	return &toolResult{Tool: "BinlogSyncer", Rows: rows, Took: took, Bytes: bytes, CPU: cpu,
		Notes: []string{"go-mysql " + "v1.13.0" + " decoding rows events in the harness, ParseTime on as cdcd reads them (CPU = the harness's own while reading)"}}
}

func tvSec(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
