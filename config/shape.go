package config

import (
	"fmt"

	"github.com/cdcd-dev/cdcd/change"
)

// validateShape checks each table's shaping: a captured table, include or exclude (not both),
// each column named once.
func validateShape(ps *problems, at func(string) string, p *Pipeline, tables map[string]bool) {
	for t, sh := range p.Shape {
		k := at("shape." + t)
		if !tables[t] {
			ps.add(k, fmt.Sprintf("table %s is not captured by this pipeline", quote(t)), "shape only tables listed in the source's tables, spelled as there")
			continue
		}
		c := sh.Columns
		if len(c.Include) > 0 && len(c.Exclude) > 0 {
			ps.add(k+".columns", "has both include and exclude", "keep one: include lists the columns to publish, exclude the ones to leave out")
		}
		for _, list := range [][]string{c.Include, c.Exclude} {
			seen := map[string]bool{}
			for _, col := range list {
				if col == "" || seen[col] {
					ps.add(k+".columns", fmt.Sprintf("column %s is empty or listed twice", quote(col)), "name each column once, as the database spells it")
				}
				seen[col] = true
			}
		}
	}
}

// ShapeRules is the pipeline's shaping keyed by schema.table as the source names tables
// (quotes removed).
func (p *Pipeline) ShapeRules() map[string]ColumnSelection {
	if len(p.Shape) == 0 {
		return nil
	}
	out := map[string]ColumnSelection{}
	for t, sh := range p.Shape {
		s, n, err := change.ParseTableName(t)
		if err != nil {
			continue
		}
		out[s+"."+n] = sh.Columns
	}
	return out
}
