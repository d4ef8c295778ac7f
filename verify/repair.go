package verify

import (
	"regexp"
	"strings"

	"github.com/cdcd-dev/cdcd/snapshot"
)

// numeric is a key text written as a number literal of the snapshot condition grammar (a
// string literal compares as text, which MySQL's hex-encoded literals do not do for numbers).
var numeric = regexp.MustCompile(`^-?[0-9]+(\.[0-9]+)?$`)

// RepairConditions writes the keys (text values of the key columns, in key order) as on-demand
// snapshot conditions in the grammar `cdcd snapshot --where` accepts (snapshot.ParseCondition):
// col IN (...) for a one-column key, (a = x AND b = y) OR ... otherwise; as many conditions as
// it takes to keep each within snapshot.MaxConditionLen.
func RepairConditions(columns []string, keys [][]string) []string {
	cols := make([]string, len(columns))
	for i, c := range columns {
		cols[i] = `"` + strings.ReplaceAll(c, `"`, `""`) + `"`
	}
	lit := func(v string) string {
		if numeric.MatchString(v) {
			return v
		}
		return "'" + strings.ReplaceAll(v, "'", "''") + "'"
	}
	var out []string
	var parts []string
	size := 0
	flush := func() {
		if len(parts) == 0 {
			return
		}
		if len(cols) == 1 {
			out = append(out, cols[0]+" IN ("+strings.Join(parts, ", ")+")")
		} else {
			out = append(out, strings.Join(parts, " OR "))
		}
		parts, size = nil, 0
	}
	for _, k := range keys {
		var p string
		if len(cols) == 1 {
			p = lit(k[0])
		} else {
			eqs := make([]string, len(k))
			for i, v := range k {
				eqs[i] = cols[i] + " = " + lit(v)
			}
			p = "(" + strings.Join(eqs, " AND ") + ")"
		}
		if size+len(p)+len(cols[0])+16 > snapshot.MaxConditionLen {
			flush()
		}
		parts = append(parts, p)
		size += len(p) + 4
	}
	flush()
	return out
}
