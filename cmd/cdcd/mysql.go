package main

import (
	"context"
	"time"

	"github.com/cdcd-dev/cdcd/config"
	"github.com/cdcd-dev/cdcd/pipeline"
	"github.com/cdcd-dev/cdcd/source/mysql"
)

// newMySQLSource builds the binlog source of a MySQL/MariaDB pipeline and the watchers that
// live as long as the process (binlog retention metrics).
func newMySQLSource(p *config.Pipeline, d deps, drain time.Duration) (pipeline.Source, []func(context.Context), error) {
	_ = drain // the binlog needs no final acknowledgement
	my := p.Source.MySQL
	src, err := mysql.New(mysql.Config{
		Pipeline: p.Name, DSN: my.DSN, ServerID: my.ServerID, Tables: my.Tables, Flavor: my.Flavor, Log: d.log,
	})
	if err != nil {
		return nil, nil, err
	}
	return src, nil, nil
}
