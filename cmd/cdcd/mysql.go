package main

import (
	"context"
	"time"

	"github.com/cdcd-dev/cdcd/config"
	"github.com/cdcd-dev/cdcd/pipeline"
	"github.com/cdcd-dev/cdcd/source/mysql"
)

// newMySQLSource builds the binlog source of a MySQL/MariaDB pipeline and the watchers that
// live as long as the process (binlog lag and retention metrics).
func newMySQLSource(p *config.Pipeline, d deps, drain time.Duration) (pipeline.Source, []func(context.Context), error) {
	_ = drain // the binlog needs no final acknowledgement: the server keeps binlogs by time
	my := p.Source.MySQL
	src, err := mysql.New(mysql.Config{
		Pipeline: p.Name, DSN: my.DSN, ServerID: my.ServerID, Tables: my.Tables, Flavor: my.Flavor,
		HeartbeatInterval: my.HeartbeatInterval.D, Log: d.log, Snapshot: snapshotConfig(p, d),
		SignalTable: my.SignalTable, SnapshotConsistency: my.SnapshotConsistency, XARecover: my.XARecover,
	})
	if err != nil {
		return nil, nil, err
	}
	if d.metrics != nil && d.metrics.Snapshot != nil {
		src.SetSnapshotMetrics(d.metrics.Snapshot)
	}
	var watch []func(context.Context)
	if d.mysql != nil {
		mon := mysql.MonitorConfig{Pipeline: p.Name, DSN: my.DSN, Source: src, Metrics: d.mysql, Log: d.log}
		watch = append(watch, func(ctx context.Context) { mysql.Monitor(ctx, mon) })
	}
	return src, watch, nil
}
