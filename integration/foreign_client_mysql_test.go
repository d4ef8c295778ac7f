package integration

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// The MariaDB side of the foreign-client test: the same Python client decodes the edge
// values of the MySQL types (TIME of ±838:59:59, which is beyond what Avro's time-micros
// means and what fastavro accepts, DATETIME and TIMESTAMP at their range ends, DECIMAL(65,30),
// BIGINT UNSIGNED's maximum, YEAR) written with time_precision: adaptive_time_microseconds and
// decimal_handling: precise, Debezium's MySQL defaults.

var mysqlTortureCols = []tortureCol{
	{"ti", "TINYINT", []string{"-128", "127", "0"}, "%[1]s", "text"},
	{"biu", "BIGINT UNSIGNED", []string{"18446744073709551615", "0", "1"}, "%[1]s", "decimal"},
	{"dec65", "DECIMAL(65,30)", []string{"'-12345678901234567890123456789012345.123456789012345678901234567890'", "'0.000000000000000000000000000001'", "0"}, "%[1]s", "decimal"},
	{"dec52", "DECIMAL(5,2)", []string{"-999.99", "999.99", "0.01"}, "%[1]s", "decimal"},
	{"f", "FLOAT", []string{"-3.40282e38", "1.5", "0"}, "%[1]s", "float4"},
	{"d", "DOUBLE", []string{"1.7976931348623157e308", "-2.25e-300", "0"}, "%[1]s", "float8"},
	{"b1", "BIT(1)", []string{"b'1'", "b'0'"}, "IF(%[1]s IS NULL, NULL, IF(%[1]s = 1, 'true', 'false'))", "text"},
	{"b12", "BIT(12)", []string{"b'111111111111'", "b'000000000001'"}, "LOWER(LPAD(HEX(%[1]s), 4, '0'))", "text"},
	{"y", "YEAR", []string{"1901", "2155", "2000"}, "%[1]s", "text"},
	{"dt", "DATE", []string{"'1000-01-01'", "'9999-12-31'", "'1970-01-01'"}, "DATEDIFF(%[1]s, '1970-01-01')", "text"},
	{"dtm", "DATETIME", []string{"'1000-01-01 00:00:00'", "'9999-12-31 23:59:59'", "'1969-12-31 23:59:59'"},
		"TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', %[1]s) DIV 1000", "text"},
	{"dtm3", "DATETIME(3)", []string{"'1000-01-01 00:00:00.001'", "'9999-12-31 23:59:59.999'"},
		"TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', %[1]s) DIV 1000", "text"},
	{"dtm6", "DATETIME(6)", []string{"'1000-01-01 00:00:00.000001'", "'9999-12-31 23:59:59.999999'", "'1969-12-31 23:59:59.999999'"},
		"TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', %[1]s)", "text"},
	{"ts", "TIMESTAMP NULL", []string{"'1970-01-01 00:00:01'", "'2038-01-19 03:14:07'"}, "DATE_FORMAT(%[1]s, '%%Y-%%m-%%dT%%H:%%i:%%sZ')", "text"},
	{"ts6", "TIMESTAMP(6) NULL", []string{"'1970-01-01 00:00:01.000001'", "'2038-01-19 03:14:07.999999'"}, "DATE_FORMAT(%[1]s, '%%Y-%%m-%%dT%%H:%%i:%%s.%%fZ')", "text"},
	{"tm", "TIME", []string{"'-838:59:59'", "'838:59:59'", "'24:00:00'"}, "ROUND(TIME_TO_SEC(%[1]s) * 1000000)", "text"},
	{"tm6", "TIME(6)", []string{"'-838:59:58.999999'", "'100:00:00.000001'", "'-00:00:00.000001'"}, "ROUND(TIME_TO_SEC(%[1]s) * 1000000)", "text"},
	{"vc", "VARCHAR(20)", []string{"'héllo wörld 😀'", "''"}, "%[1]s", "text"},
	{"e", "ENUM('small','medium','large')", []string{"'medium'", "'large'"}, "%[1]s", "text"},
	{"st", "SET('a','b','c')", []string{"'a,c'", "''"}, "%[1]s", "text"},
	{"vb", "VARBINARY(10)", []string{"x'00ff'", "x''"}, "LOWER(HEX(%[1]s))", "text"},
}

const mysqlTortureRows = 4 // the last row is all NULL

func TestForeignClientDecodesMySQLTypes(t *testing.T) {
	var ddl strings.Builder
	ddl.WriteString("CREATE TABLE torture (id INT NOT NULL PRIMARY KEY")
	for _, c := range mysqlTortureCols {
		fmt.Fprintf(&ddl, ", %s %s", c.name, c.typ)
	}
	ddl.WriteString(") DEFAULT CHARSET utf8mb4")
	s, ctx, db, dsn, conn := mysqlSetup(t, 6*time.Minute, "cdcd_foreign", ddl.String())
	py := pythonClient(t, ctx)
	name := uniqueName("myforeign")
	d := startMySQLDaemon(t, mysqlPipelineYAML(s, name, dsn, nextServerID(), []string{db + ".torture"},
		"    time_precision: adaptive_time_microseconds\n    decimal_handling: precise\n"))
	d.waitReady(60 * time.Second)
	mysqlExec(t, conn, "SET time_zone = '+00:00'")
	for row := 1; row <= mysqlTortureRows; row++ {
		var q strings.Builder
		fmt.Fprintf(&q, "INSERT INTO torture VALUES (%d", row)
		for _, c := range mysqlTortureCols {
			v := "NULL"
			if row <= len(c.values) {
				v = c.values[row-1]
			}
			fmt.Fprintf(&q, ", %s", v)
		}
		q.WriteString(")")
		mysqlExec(t, conn, q.String())
	}

	var sel strings.Builder
	sel.WriteString("SELECT id")
	for _, c := range mysqlTortureCols {
		fmt.Fprintf(&sel, ", CAST((%s) AS CHAR)", fmt.Sprintf(c.expect, c.name))
	}
	sel.WriteString(" FROM torture ORDER BY id")
	res, err := conn.Execute(sel.String())
	if err != nil {
		t.Fatalf("%v\n%s", err, sel.String())
	}
	want := map[string][]*string{}
	for r := range res.RowNumber() {
		id, _ := res.GetString(r, 0)
		vals := make([]*string, len(mysqlTortureCols))
		for i := range vals {
			if null, _ := res.IsNull(r, i+1); !null {
				v, _ := res.GetString(r, i+1)
				vals[i] = &v
			}
		}
		want[id] = vals
	}
	if len(want) != mysqlTortureRows {
		t.Fatalf("read %d rows back, want %d", len(want), mysqlTortureRows)
	}

	seen := 0
	for _, rec := range runForeignClient(t, ctx, py, s, name+"."+db+".torture", mysqlTortureRows) {
		id, _ := rec.After["id"].(string)
		w, ok := want[id]
		if rec.Op != "c" || !ok {
			t.Errorf("unexpected record op %s id %q", rec.Op, id)
			continue
		}
		seen++
		if len(rec.After) != len(mysqlTortureCols)+1 {
			t.Errorf("row %s: the client decoded %d columns, want %d", id, len(rec.After), len(mysqlTortureCols)+1)
		}
		for i, c := range mysqlTortureCols {
			if msg := compareForeign(c.cmp, rec.After[c.name], w[i]); msg != "" {
				t.Errorf("row %s column %s (%s): %s", id, c.name, c.typ, msg)
			}
		}
	}
	if seen != mysqlTortureRows {
		t.Fatalf("the client printed %d rows, want %d", seen, mysqlTortureRows)
	}
}
