package main

import (
	"github.com/cdcd-dev/cdcd/change"
	"github.com/cdcd-dev/cdcd/config"
	"github.com/cdcd-dev/cdcd/source/postgres"
)

// publishShapes are the pipeline's column selections and row filters keyed by schema.table
// (quotes removed), for the publication cdcd creates.
func publishShapes(p *config.Pipeline) map[string]postgres.PublishShape {
	out := map[string]postgres.PublishShape{}
	for t, sh := range p.Shape {
		if s, n, err := change.ParseTableName(t); err == nil {
			out[s+"."+n] = postgres.PublishShape{Include: sh.Columns.Include, Exclude: sh.Columns.Exclude, Filter: sh.Filter}
		}
	}
	return out
}
