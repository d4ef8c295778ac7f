package encode

import (
	"strconv"
	"strings"

	"github.com/cdcd-dev/cdcd/change"
)

// In Debezium's modes (typeModes.debezium) the envelope's source block carries, after cdcd's
// fields, the fields Debezium's connector of the source adds, with its names and types.

// debeziumSourceFields are the fields appended to sourceSchema for PostgreSQL and for MySQL.
// Keep appendDebeziumSource in step.
var (
	debeziumSourcePostgres = []any{
		optional("ts_us", "long"),
		optional("ts_ns", "long"),
		optional("xmin", "long"),
	}
	debeziumSourceMySQL = []any{
		optional("ts_us", "long"),
		optional("ts_ns", "long"),
		optional("server_id", "long"),
		optional("file", "string"),
		optional("pos", "long"),
		optional("row", "int"),
		optional("thread", "long"),
		optional("query", "string"),
	}
)

// sourceSchemaFor is the source block's schema under modes m.
func sourceSchemaFor(m typeModes) jobj {
	if !m.debezium() {
		return sourceSchema
	}
	extra := debeziumSourcePostgres
	if m.mysql {
		extra = debeziumSourceMySQL
	}
	s := make(jobj, len(sourceSchema))
	copy(s, sourceSchema)
	for i, kv := range s {
		if kv.k == "fields" {
			fields := kv.v.([]any)
			s[i].v = append(append(make([]any, 0, len(fields)+len(extra)), fields...), extra...)
		}
	}
	return s
}

// appendDebeziumSource writes the fields of sourceSchemaFor beyond sourceSchema's.
//
// PostgreSQL: ts_us and ts_ns (the commit time), xmin (null: Debezium fills it only when
// xmin.fetch.interval.ms is set). MySQL: ts_us and ts_ns; file and pos, the binlog
// coordinates where the event's transaction starts (where cdcd restarts to read it again;
// Debezium's pos is that of the rows event); row, the change's index in its transaction
// (Debezium's: in its rows event); server_id, thread and query null (cdcd does not read them).
func appendDebeziumSource(v []byte, ev *change.Event, mysql bool) []byte {
	if ev.CommitTime.IsZero() {
		v = append(v, unionNull, unionNull)
	} else {
		v = append(v, unionValue)
		v = appendLong(v, ev.CommitTime.UnixMicro())
		v = append(v, unionValue)
		v = appendLong(v, ev.CommitTime.UnixNano())
	}
	if !mysql {
		return append(v, unionNull) // xmin
	}
	v = append(v, unionNull) // server_id
	file, pos, ok := binlogStart(ev.Pos.Resume)
	if ok {
		v = append(v, unionValue)
		v = appendString(v, file)
		v = append(v, unionValue)
		v = appendLong(v, pos)
		v = append(v, unionValue)
		v = appendLong(v, int64(ev.Pos.Index))
	} else {
		v = append(v, unionNull, unionNull, unionNull)
	}
	return append(v, unionNull, unionNull) // thread, query
}

// binlogStart reads the binlog file and offset of a MySQL position's resume token
// ("binlog1;flavor;file;pos;gtids", see source/mysql's Token); ok is false for any other
// text.
func binlogStart(resume string) (file string, pos int64, ok bool) {
	rest, found := strings.CutPrefix(resume, "binlog1;")
	if !found {
		return "", 0, false
	}
	_, rest, found = strings.Cut(rest, ";") // flavor
	if !found {
		return "", 0, false
	}
	file, rest, found = strings.Cut(rest, ";")
	if !found || file == "" {
		return "", 0, false
	}
	p, _, found := strings.Cut(rest, ";")
	if !found {
		return "", 0, false
	}
	n, err := strconv.ParseUint(p, 10, 32)
	if err != nil {
		return "", 0, false
	}
	return file, int64(n), true
}
