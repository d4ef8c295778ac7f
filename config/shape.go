package config

import (
	"fmt"
	"slices"

	"github.com/cdcd-dev/cdcd/change"
	"github.com/cdcd-dev/cdcd/shape"
	"github.com/cdcd-dev/cdcd/snapshot"
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
		for col, spec := range sh.Mask {
			mk := k + ".mask." + col
			if _, _, err := shape.ParseMask(spec); err != nil {
				ps.add(mk, err.Error(), "write hash, redact or truncate(n)")
			} else if spec == "hash" && p.MaskKey == "" {
				ps.add(mk, "hash needs a key", "set the pipeline's mask_key: ${file:/run/secrets/cdcd_mask_key} (at least 16 random characters)")
			}
			if !c.Keeps(col) {
				ps.add(mk, fmt.Sprintf("column %s is masked but left out by columns", quote(col)), "mask only columns the shaping keeps")
			}
		}
		if sh.Filter != "" {
			if _, err := snapshot.ParseCondition(sh.Filter); err != nil {
				ps.add(k+".filter", err.Error(), "compare columns with literals, e.g. region IN ('eu', 'us') AND deleted_at IS NULL")
			}
		}
		for i, col := range sh.Key {
			kk := fmt.Sprintf("%s.key[%d]", k, i)
			switch {
			case col == "" || slices.Index(sh.Key, col) != i:
				ps.add(kk, fmt.Sprintf("key column %s is empty or listed twice", quote(col)), "name each key column once")
			case !c.Keeps(col):
				ps.add(kk, fmt.Sprintf("key column %s is left out by columns", quote(col)), "key by columns the shaping keeps")
			case sh.Mask[col] != "" && !(sh.Mask[col] == "hash" && sh.HashKey):
				ps.add(kk, fmt.Sprintf("key column %s is masked: a masked key would merge or split keys", quote(col)), "key by another column, or do not mask it")
			}
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
func (p *Pipeline) ShapeRules() shape.Rules {
	if len(p.Shape) == 0 && len(p.Outbox) == 0 {
		return nil
	}
	var key []byte
	if p.MaskKey != "" {
		key = []byte(p.MaskKey)
	}
	out := shape.Rules{}
	for t, sh := range p.Shape {
		s, n, err := change.ParseTableName(t)
		if err != nil {
			continue
		}
		out[s+"."+n] = shape.Columns{Include: sh.Columns.Include, Exclude: sh.Columns.Exclude, Mask: sh.Mask, MaskKey: key, Key: sh.Key, Filter: sh.Filter, HashKey: sh.HashKey}
	}
	p.addOutboxRules(out)
	return out
}

// validateMaskKey checks the pipeline's mask_key.
func validateMaskKey(ps *problems, at func(string) string, p *Pipeline) {
	if p.MaskKey != "" && len(p.MaskKey) < MinSignalKeyLen {
		ps.add(at("mask_key"), fmt.Sprintf("mask_key is %d characters long: too easy to guess, and hashes of short values could be reversed by trying values", len(p.MaskKey)),
			fmt.Sprintf("use at least %d random characters, from a file: mask_key: ${file:/run/secrets/cdcd_mask_key}", MinSignalKeyLen))
	}
}
