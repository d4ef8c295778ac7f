package verify

import (
	"fmt"
	"strings"
	"testing"

	"github.com/cdcd-dev/cdcd/snapshot"
)

// Repair requests travel as snapshot conditions: each must parse in the grammar the pipeline
// accepts, stay within its length, and name every key once.
func TestRepairConditionsParseAndCoverEveryKey(t *testing.T) {
	var one, two [][]string
	for i := range 2000 {
		one = append(one, []string{fmt.Sprint(i)})
		two = append(two, []string{fmt.Sprint(i), fmt.Sprintf("o'k %d", i)})
	}
	for _, c := range []struct {
		cols []string
		keys [][]string
	}{{[]string{"id"}, one}, {[]string{"a", "b c"}, two}, {[]string{"id"}, [][]string{{"it's"}}}} {
		conds := RepairConditions(c.cols, c.keys)
		seen := 0
		for _, cond := range conds {
			if len(cond) > snapshot.MaxConditionLen {
				t.Fatalf("condition of %d bytes", len(cond))
			}
			if _, err := snapshot.ParseCondition(cond); err != nil {
				t.Fatalf("%v does not parse: %v\n%.200s", c.cols, err, cond)
			}
			if len(c.cols) == 1 {
				seen += strings.Count(cond, ",") + 1
			} else {
				seen += strings.Count(cond, " OR ") + 1
			}
		}
		if seen != len(c.keys) {
			t.Errorf("%v: %d keys in %d conditions, want %d", c.cols, seen, len(conds), len(c.keys))
		}
	}
}
