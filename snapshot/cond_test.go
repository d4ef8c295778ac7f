package snapshot

import (
	"errors"
	"strconv"
	"strings"
	"testing"
)

var pgDialect = Dialect{
	Ident: func(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` },
	String: func(s string, args *[]string) string {
		*args = append(*args, s)
		return "$" + strconv.Itoa(len(*args))
	},
}

func TestParseConditionAccepts(t *testing.T) {
	for in, want := range map[string]string{
		"k < 5000":                                         `"k" < 5000`,
		"k >= -1.5e3 AND name = 'o''brien'":                `("k" >= -1.5e3 AND "name" = $1)`,
		`NOT (a IS NULL OR "B c" != 'x')`:                  `(NOT ("a" IS NULL OR "B c" <> $1))`,
		"region IN ('eu', 'us') and k not between 1 and 2": `("region" IN ($1, $2) AND "k" NOT BETWEEN 1 AND 2)`,
		"created_at > '2024-01-01' OR ok = TRUE":           `("created_at" > $1 OR "ok" = TRUE)`,
		"`x` LIKE 'a%' AND y IS NOT NULL":                  `("x" LIKE $1 AND "y" IS NOT NULL)`,
	} {
		c, err := ParseCondition(in)
		if err != nil {
			t.Errorf("%q: %v", in, err)
			continue
		}
		var args []string
		if got := c.SQL(pgDialect, &args); got != want {
			t.Errorf("%q: got %s, want %s", in, got, want)
		}
	}
}

func TestParseConditionRefuses(t *testing.T) {
	for _, in := range []string{
		"",
		"k < 5000; DROP TABLE a",
		"k < 5000 --",
		"k < (SELECT max(k) FROM a)",
		"k < now()",
		"created_at > now() - interval '1 day'",
		"pg_sleep(10) IS NULL",
		"k = 1::int",
		"1 = 1",
		"k = other_column",
		"k IN (SELECT 1)",
		"name = 'a\\' OR 1=1 -- '",
		"k < 5 /* x */",
		"k = 'unterminated",
		"true",
		"k = 1 OR",
		strings.Repeat("(", 100) + "k = 1" + strings.Repeat(")", 100),
		"k = 1e",
		"k = 0x10",
		"k LIKE 5",
	} {
		if c, err := ParseCondition(in); err == nil {
			var args []string
			t.Errorf("%q was accepted: %s", in, c.SQL(pgDialect, &args))
		} else if !errors.Is(err, ErrConditionSyntax) {
			t.Errorf("%q: error %v does not wrap ErrConditionSyntax", in, err)
		}
	}
}

func FuzzParseCondition(f *testing.F) {
	f.Add("k < 5000 AND name IN ('a', 'b')")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCondition(s)
		if err != nil {
			return
		}
		var args []string
		out := c.SQL(pgDialect, &args)
		// Every string is a parameter: outside quoted names the text holds no quote.
		bare := out
		for _, col := range c.Columns() {
			bare = strings.ReplaceAll(bare, pgDialect.Ident(col), "")
		}
		if strings.ContainsAny(bare, "';\"") {
			t.Fatalf("%q rendered %q", s, out)
		}
	})
}
