// Package dlq classifies publish failures and turns poison changes into dead-letter records,
// and back.
//
// A dead letter keeps the whole change, losslessly, as JSON: the table's columns with their
// types, and every value of the old and new row. Replay rebuilds the change from it and encodes
// it with the schemas of the day. Values are written as:
//
//	bool, integers            JSON true/false and numbers (64-bit integers exact)
//	float, double             numbers; "NaN", "Infinity", "-Infinity" as strings
//	decimal, text-like kinds  strings
//	bytes                     base64 strings
//	date                      "YYYY-MM-DD"; "infinity"/"-infinity"; days since 1970 as a number outside years 1..9999
//	time                      "HH:MM:SS.ffffff"
//	timestamp                 "YYYY-MM-DDTHH:MM:SS.ffffff" (timestamptz with "Z"); ±infinity as above; microseconds outside years 1..9999
//	array                     JSON array of the element values
//	unchanged TOAST value     {"unchanged_toast": true}
//	value the source could not decode: {"undecodable": "<the source's text>"}
//	column absent from the old row: left out
package dlq

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/cdcd-dev/cdcd/change"
)

// Column is a column's description in a dead letter.
type Column struct {
	Name       string `json:"name"`
	Kind       string `json:"kind"`
	Elem       string `json:"elem,omitempty"`
	Nullable   bool   `json:"nullable"`
	Key        bool   `json:"key,omitempty"`
	Precision  int    `json:"precision,omitempty"`
	Scale      int    `json:"scale,omitempty"`
	SourceType string `json:"source_type"`
}

// Letter is the JSON value of a dead-letter record.
type Letter struct {
	Pipeline     string          `json:"pipeline"`
	Database     string          `json:"database"`
	Schema       string          `json:"schema"`
	Table        string          `json:"table"`
	TableVersion int             `json:"table_version"`
	FullIdentity bool            `json:"full_identity,omitempty"`
	Op           string          `json:"op"`
	Position     change.Position `json:"position"`
	CommitTime   time.Time       `json:"commit_time"`
	TxID         string          `json:"tx_id,omitempty"`
	Columns      []Column        `json:"columns"`
	Before       json.RawMessage `json:"before"`
	After        json.RawMessage `json:"after"`
	Error        LetterError     `json:"error"`
	// Outbox is set when the change is an outbox event (outbox.go).
	Outbox *LetterOutbox `json:"outbox,omitempty"`
}

// LetterError is why the change was dead-lettered.
type LetterError struct {
	Class   string `json:"class"`
	Message string `json:"message"`
}

// Marshal renders a change and its failure as a dead letter's key and value.
func Marshal(pipeline string, ev *change.Event, class, msg string) (key, value []byte, err error) {
	t := ev.Table
	l := Letter{Pipeline: pipeline, Database: t.Database, Schema: t.Schema, Table: t.Name, TableVersion: t.Version,
		FullIdentity: t.FullIdentity, Op: ev.Op.String(), Position: ev.Pos, CommitTime: ev.CommitTime.UTC(), TxID: ev.TxID,
		Error: LetterError{Class: class, Message: msg}, Outbox: letterOutbox(ev.Outbox)}
	for _, c := range t.Columns {
		dc := Column{Name: c.Name, Kind: c.Kind.String(), Nullable: c.Nullable, Key: c.Key, Precision: c.Precision, Scale: c.Scale, SourceType: c.SourceType}
		if c.Kind == change.KindArray {
			dc.Elem = c.Elem.String()
		}
		l.Columns = append(l.Columns, dc)
	}
	if l.Before, err = rowJSON(t, ev.Before, nil); err != nil {
		return nil, nil, err
	}
	if l.After, err = rowJSON(t, ev.After, nil); err != nil {
		return nil, nil, err
	}
	row := ev.After
	if row == nil {
		row = ev.Before
	}
	if len(t.KeyColumns) > 0 && row != nil {
		if key, err = rowJSON(t, row, t.KeyColumns); err != nil {
			return nil, nil, err
		}
	}
	value, err = json.Marshal(l)
	return key, value, err
}

func rowJSON(t *change.Table, row []change.Value, only []int) (json.RawMessage, error) {
	if row == nil {
		return json.RawMessage("null"), nil
	}
	idx := only
	if idx == nil {
		idx = make([]int, len(t.Columns))
		for i := range idx {
			idx[i] = i
		}
	}
	var b bytes.Buffer
	b.WriteByte('{')
	first := true
	for _, i := range idx {
		if i >= len(row) || row[i].State == change.Absent {
			continue
		}
		if !first {
			b.WriteByte(',')
		}
		first = false
		name, _ := json.Marshal(t.Columns[i].Name)
		b.Write(name)
		b.WriteByte(':')
		v, err := valueJSON(t.Columns[i].Kind, t.Columns[i].Elem, row[i])
		if err != nil {
			return nil, fmt.Errorf("column %s: %w", t.Columns[i].Name, err)
		}
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func valueJSON(k, elem change.Kind, v change.Value) ([]byte, error) {
	switch v.State {
	case change.Null:
		return []byte("null"), nil
	case change.Unchanged:
		return []byte(`{"unchanged_toast":true}`), nil
	case change.Undecodable:
		raw, _ := json.Marshal(v.Str)
		return append(append([]byte(`{"undecodable":`), raw...), '}'), nil
	}
	switch k {
	case change.KindBool:
		return strconv.AppendBool(nil, v.Int != 0), nil
	case change.KindInt16, change.KindInt32, change.KindInt64:
		return strconv.AppendInt(nil, v.Int, 10), nil
	case change.KindUint64:
		return strconv.AppendUint(nil, v.Uint, 10), nil
	case change.KindFloat32, change.KindFloat64:
		switch {
		case math.IsNaN(v.Float):
			return []byte(`"NaN"`), nil
		case math.IsInf(v.Float, 1):
			return []byte(`"Infinity"`), nil
		case math.IsInf(v.Float, -1):
			return []byte(`"-Infinity"`), nil
		}
		bits := 64
		if k == change.KindFloat32 {
			bits = 32
		}
		return strconv.AppendFloat(nil, v.Float, 'g', -1, bits), nil
	case change.KindBytes:
		return json.Marshal(base64.StdEncoding.EncodeToString(v.Bytes))
	case change.KindDate:
		switch v.Int {
		case change.DateInfinity:
			return []byte(`"infinity"`), nil
		case change.DateNegInfinity:
			return []byte(`"-infinity"`), nil
		}
		t := time.Unix(v.Int*86400, 0).UTC()
		if t.Year() < 1 || t.Year() > 9999 {
			return strconv.AppendInt(nil, v.Int, 10), nil
		}
		return json.Marshal(t.Format(dateLayout))
	case change.KindTime:
		d := time.Duration(v.Int) * time.Microsecond
		return json.Marshal(fmt.Sprintf("%02d:%02d:%02d.%06d", int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60, v.Int%1e6))
	case change.KindDuration:
		return json.Marshal(change.FormatDuration(v.Int))
	case change.KindTimestamp, change.KindTimestampTZ:
		switch v.Int {
		case change.TimestampInfinity:
			return []byte(`"infinity"`), nil
		case change.TimestampNegInfinity:
			return []byte(`"-infinity"`), nil
		}
		t := time.UnixMicro(v.Int).UTC()
		if t.Year() < 1 || t.Year() > 9999 {
			return strconv.AppendInt(nil, v.Int, 10), nil
		}
		layout := tsLayout
		if k == change.KindTimestampTZ {
			layout = tsTZLayout
		}
		return json.Marshal(t.Format(layout))
	case change.KindArray:
		var b bytes.Buffer
		b.WriteByte('[')
		for i, e := range v.Arr {
			if i > 0 {
				b.WriteByte(',')
			}
			ej, err := valueJSON(elem, 0, e)
			if err != nil {
				return nil, err
			}
			b.Write(ej)
		}
		b.WriteByte(']')
		return b.Bytes(), nil
	case change.KindInvalid:
		return nil, errors.New("column has no type")
	}
	// decimal and every text-like kind
	return json.Marshal(v.Str)
}

const (
	dateLayout = "2006-01-02"
	tsLayout   = "2006-01-02T15:04:05.000000"
	tsTZLayout = "2006-01-02T15:04:05.000000Z"
)

var kindByName = func() map[string]change.Kind {
	m := map[string]change.Kind{}
	for k := change.KindBool; k <= change.KindArray; k++ {
		m[k.String()] = k
	}
	return m
}()

// Event rebuilds the change a dead letter holds.
func (l *Letter) Event() (*change.Event, error) {
	t := &change.Table{Database: l.Database, Schema: l.Schema, Name: l.Table, Version: l.TableVersion, FullIdentity: l.FullIdentity}
	for i, c := range l.Columns {
		k, ok := kindByName[c.Kind]
		if !ok {
			return nil, fmt.Errorf("column %s: unknown kind %q", c.Name, c.Kind)
		}
		col := change.Column{Name: c.Name, Kind: k, Nullable: c.Nullable, Key: c.Key, Precision: c.Precision, Scale: c.Scale, SourceType: c.SourceType}
		if k == change.KindArray {
			if col.Elem, ok = kindByName[c.Elem]; !ok {
				return nil, fmt.Errorf("column %s: unknown element kind %q", c.Name, c.Elem)
			}
		}
		t.Columns = append(t.Columns, col)
		if c.Key {
			t.KeyColumns = append(t.KeyColumns, i)
		}
	}
	if len(l.Op) != 1 {
		return nil, fmt.Errorf("unknown op %q", l.Op)
	}
	ev := &change.Event{Op: change.Op(l.Op[0]), Table: t, Pos: l.Position, CommitTime: l.CommitTime, TxID: l.TxID}
	var err error
	if ev.Before, err = parseRow(t, l.Before); err != nil {
		return nil, fmt.Errorf("before: %w", err)
	}
	if ev.After, err = parseRow(t, l.After); err != nil {
		return nil, fmt.Errorf("after: %w", err)
	}
	if l.Outbox != nil {
		if ev.Outbox, err = l.Outbox.event(ev); err != nil {
			return nil, err
		}
	}
	return ev, nil
}

func parseRow(t *change.Table, raw json.RawMessage) ([]change.Value, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var m map[string]json.RawMessage
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	if err := d.Decode(&m); err != nil {
		return nil, err
	}
	row := make([]change.Value, len(t.Columns))
	for i, c := range t.Columns {
		r, ok := m[c.Name]
		if !ok {
			row[i] = change.Value{State: change.Absent}
			continue
		}
		v, err := parseValue(c.Kind, c.Elem, r)
		if err != nil {
			return nil, fmt.Errorf("column %s: %w", c.Name, err)
		}
		row[i] = v
	}
	return row, nil
}

func parseValue(k, elem change.Kind, raw json.RawMessage) (change.Value, error) {
	s := string(raw)
	switch {
	case s == "null":
		return change.NullValue, nil
	case s == `{"unchanged_toast":true}`:
		return change.Value{State: change.Unchanged}, nil
	case strings.HasPrefix(s, `{"undecodable":`):
		var u struct {
			Undecodable string `json:"undecodable"`
		}
		err := json.Unmarshal(raw, &u)
		return change.Value{State: change.Undecodable, Str: u.Undecodable}, err
	}
	var str string
	isStr := len(s) > 0 && s[0] == '"'
	if isStr {
		if err := json.Unmarshal(raw, &str); err != nil {
			return change.Value{}, err
		}
	}
	switch k {
	case change.KindBool:
		return change.Value{Int: map[bool]int64{true: 1}[s == "true"]}, nil
	case change.KindInt16, change.KindInt32, change.KindInt64:
		n, err := strconv.ParseInt(s, 10, 64)
		return change.Value{Int: n}, err
	case change.KindUint64:
		n, err := strconv.ParseUint(s, 10, 64)
		return change.Value{Uint: n}, err
	case change.KindFloat32, change.KindFloat64:
		if isStr {
			switch str {
			case "NaN":
				return change.Value{Float: math.NaN()}, nil
			case "Infinity":
				return change.Value{Float: math.Inf(1)}, nil
			case "-Infinity":
				return change.Value{Float: math.Inf(-1)}, nil
			}
			return change.Value{}, fmt.Errorf("bad float %q", str)
		}
		f, err := strconv.ParseFloat(s, 64)
		return change.Value{Float: f}, err
	case change.KindBytes:
		b, err := base64.StdEncoding.DecodeString(str)
		return change.Value{Bytes: b}, err
	case change.KindDate:
		switch {
		case !isStr:
			n, err := strconv.ParseInt(s, 10, 64)
			return change.Value{Int: n}, err
		case str == "infinity":
			return change.Value{Int: change.DateInfinity}, nil
		case str == "-infinity":
			return change.Value{Int: change.DateNegInfinity}, nil
		}
		t, err := time.Parse(dateLayout, str)
		return change.Value{Int: t.Unix() / 86400}, err
	case change.KindTime:
		var h, m, sec, us int64
		if _, err := fmt.Sscanf(str, "%d:%d:%d.%d", &h, &m, &sec, &us); err != nil {
			return change.Value{}, fmt.Errorf("bad time %q", str)
		}
		return change.Value{Int: ((h*60+m)*60+sec)*1e6 + us}, nil
	case change.KindDuration:
		neg := strings.HasPrefix(str, "-")
		var h, m, sec, us int64
		if _, err := fmt.Sscanf(strings.TrimPrefix(str, "-"), "%d:%d:%d.%d", &h, &m, &sec, &us); err != nil {
			return change.Value{}, fmt.Errorf("bad duration %q", str)
		}
		d := ((h*60+m)*60+sec)*1e6 + us
		if neg {
			d = -d
		}
		return change.Value{Int: d}, nil
	case change.KindTimestamp, change.KindTimestampTZ:
		switch {
		case !isStr:
			n, err := strconv.ParseInt(s, 10, 64)
			return change.Value{Int: n}, err
		case str == "infinity":
			return change.Value{Int: change.TimestampInfinity}, nil
		case str == "-infinity":
			return change.Value{Int: change.TimestampNegInfinity}, nil
		}
		layout := tsLayout
		if k == change.KindTimestampTZ {
			layout = tsTZLayout
		}
		t, err := time.Parse(layout, str)
		return change.Value{Int: t.UnixMicro()}, err
	case change.KindArray:
		var elems []json.RawMessage
		if err := json.Unmarshal(raw, &elems); err != nil {
			return change.Value{}, err
		}
		arr := make([]change.Value, len(elems))
		for i, e := range elems {
			v, err := parseValue(elem, 0, e)
			if err != nil {
				return change.Value{}, fmt.Errorf("element %d: %w", i, err)
			}
			arr[i] = v
		}
		return change.Value{Arr: arr}, nil
	}
	if !isStr {
		return change.Value{}, fmt.Errorf("want a string, got %s", s)
	}
	return change.Value{Str: str}, nil
}

// KeyJSON is the change's key as the dead letter's key spells it ("null" without a key).
func KeyJSON(ev *change.Event) string {
	row := ev.After
	if row == nil {
		row = ev.Before
	}
	if len(ev.Table.KeyColumns) == 0 || row == nil {
		return "null"
	}
	b, err := rowJSON(ev.Table, row, ev.Table.KeyColumns)
	if err != nil {
		return "null"
	}
	return string(b)
}
