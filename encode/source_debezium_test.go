package encode

import (
	"fmt"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/change"
)

func TestDebeziumSourceFields(t *testing.T) {
	commit := time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)
	tbl := &change.Table{Database: "shop", Schema: "public", Name: "t", KeyColumns: []int{0},
		Columns: []change.Column{{Name: "id", Kind: change.KindInt64, SourceType: "bigint"}}}
	for _, c := range []struct {
		name, connector, time string
		pos                   change.Position
		txID                  string
		want                  map[string]any // source fields; nil: the field is absent
	}{
		{"postgres avro", "postgresql", "", change.Position{Tx: 0x16B3748, Index: 2}, "771",
			map[string]any{"txId": int64(771), "lsn": int64(0x16B3748), "ts_us": nil, "xmin": nil, "sequence": `{"tx":23803720,"index":2}`}},
		{"postgres adaptive", "postgresql", TimeAdaptive, change.Position{Tx: 0x16B3748, Index: 2}, "771",
			map[string]any{"txId": int64(771), "lsn": int64(0x16B3748), "ts_ms": commit.UnixMilli(), "ts_us": commit.UnixMicro(),
				"ts_ns": commit.UnixNano(), "xmin": "<nil>"}},
		{"mysql adaptive_time_microseconds", "mysql", TimeAdaptiveMicroseconds,
			change.Position{Tx: 42<<32 | 4711, Index: 3, Resume: "binlog1;mysql;mysql-bin.000042;4711;3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5"},
			"3E11FA47-71CA-11E1-9E33-C80AA9429562:6",
			map[string]any{"gtid": "3E11FA47-71CA-11E1-9E33-C80AA9429562:6", "file": "mysql-bin.000042", "pos": int64(4711), "row": 3,
				"server_id": "<nil>", "thread": "<nil>", "query": "<nil>", "ts_us": commit.UnixMicro(), "lsn": "<nil>"}},
		{"mysql without a binlog token", "mysql", TimeConnect, change.Position{Tx: 1}, "",
			map[string]any{"file": "<nil>", "pos": "<nil>", "row": "<nil>"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			reg := newFakeRegistry()
			e, err := New(Config{Pipeline: "p", Connector: c.connector, TimePrecision: c.time}, reg)
			if err != nil {
				t.Fatal(err)
			}
			var rec Record
			ev := &change.Event{Op: change.OpCreate, Table: tbl, After: []change.Value{{Int: 1}}, Pos: c.pos, TxID: c.txID, CommitTime: commit}
			if err := e.Encode(ctx, ev, &rec); err != nil {
				t.Fatal(err)
			}
			src := decodeFramed(t, reg, rec.Value)["source"].(map[string]any)
			for k, w := range c.want {
				g, present := src[k]
				switch {
				case w == nil:
					if present {
						t.Errorf("source.%s = %v, want no such field", k, g)
					}
				case !present:
					t.Errorf("source has no %s", k)
				case w == "<nil>":
					if g != nil {
						t.Errorf("source.%s = %v, want null", k, g)
					}
				case fmt.Sprintf("%T %v", g, g) != fmt.Sprintf("%T %v", w, w):
					t.Errorf("source.%s = %T %v, want %T %v", k, g, g, w, w)
				}
			}
		})
	}
}
