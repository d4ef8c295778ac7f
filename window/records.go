package window

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
)

// fromInput turns an input change record into Recs.
func (j *Job) fromInput(r *kgo.Record, out []Rec) ([]Rec, error) {
	if r.Value == nil {
		return out, nil // a tombstone: the delete before it carried the change
	}
	id, body, err := wire.DecodeID(r.Value)
	if err != nil {
		return out, &wireFormatError{fmt.Sprintf("window job %s: %s[%d]@%d is not in the schema registry's wire format (a zero byte, a 4-byte schema id, then Avro), so it was not written by cdcd; fix: keep other writers off cdcd's change topics", j.spec.Name, r.Topic, r.Partition, r.Offset)}
	}
	p := j.x.plans[id]
	if p == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		ss, err := j.cfg.Registry.SchemaByID(ctx, id)
		cancel()
		if err != nil {
			return out, fmt.Errorf("reading schema %d of %s[%d]@%d: %w", id, r.Topic, r.Partition, r.Offset, err)
		}
		s, err := avro.Parse(ss.Schema)
		if err != nil {
			return out, &wireFormatError{fmt.Sprintf("window job %s: %s[%d]@%d names schema %d, which is not an Avro schema cdcd can read (%v); fix: keep other writers off cdcd's change topics", j.spec.Name, r.Topic, r.Partition, r.Offset, id, err)}
		}
		if p, err = j.x.compile(id, s); err != nil {
			return out, fmt.Errorf("window job %s: topic %s changed schema (id %d): %w; fix: change the job to fields that exist, under a new job name", j.spec.Name, r.Topic, id, err)
		}
	}
	n := len(out)
	out, err = j.x.extract(p, body, uint64(r.Offset), out)
	if err != nil {
		fix := ""
		if errors.Is(err, errUndecodable) {
			fix = "; fix: keep other writers off cdcd's change topics"
		}
		return out, fmt.Errorf("window job %s: %s[%d]@%d: %w%s", j.spec.Name, r.Topic, r.Partition, r.Offset, err, fix)
	}
	if err := j.checkEventTimes(out[n:], r); err != nil {
		return out[:n], err
	}
	if j.spec.Mode == ModeTable { // first and last follow rows there (see Rec.Row)
		if row := rowID(r.Key); row != 0 {
			for i := n; i < len(out); i++ {
				out[i].Row = row
			}
		}
	}
	return out, nil
}

// rowID identifies an input row by its key: a hash of the key's Avro body (past the
// registry's 5-byte header, so a new key schema id alone does not change it); 0 for a table
// without a key. The same on every instance and across restarts (FNV-1a).
func rowID(key []byte) uint64 {
	_, body, err := wire.DecodeID(key)
	if err != nil || len(body) == 0 {
		return 0
	}
	h := uint64(14695981039346656037)
	for _, c := range body {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return max(h, 1)
}

// appendGroupKey appends r's repartition key to dst: the group's canonical bytes (one
// partition per group).
func appendGroupKey(dst []byte, r *Rec) []byte {
	n := len(dst)
	for _, v := range r.Group {
		dst = appendKey(dst, v)
	}
	if len(dst) == n {
		dst = append(dst, 0) // one global group
	}
	return dst
}

// partitionOf is the repartition partition of a group key: FNV-1a, stable across versions.
func (j *Job) partitionOf(key []byte) int32 {
	h := uint32(fnvOffset32)
	for _, c := range key {
		h ^= uint32(c)
		h *= fnvPrime32
	}
	return int32(h % uint32(j.parts))
}

// FNV-1a's 32-bit parameters (hash/fnv's, without its allocation per key).
const (
	fnvOffset32 = 2166136261
	fnvPrime32  = 16777619
)

// flushOutputs produces the results, late records and changelog records of the touched
// partitions.
func (j *Job) flushOutputs(touched map[int32]bool, produce func(*kgo.Record)) error {
	for p := range touched {
		proc := j.procs[p]
		if proc == nil {
			continue
		}
		res, late := proc.TakeResults()
		for _, r := range res {
			rec, err := j.resultRecord(r)
			if err != nil {
				return err
			}
			produce(rec)
		}
		for _, l := range late {
			produce(j.lateRecord(l))
		}
		for _, kv := range proc.TakeChanges() {
			if err := j.checkRecordSize(p, kv); err != nil {
				return err
			}
			produce(&kgo.Record{Topic: ChangelogTopic(j.spec.Name), Partition: p, Key: kv.Key, Value: kv.Value})
		}
	}
	return nil
}

func (j *Job) resultRecord(r Result) (*kgo.Record, error) {
	kv := append([]Value{}, r.Group...)
	kv = append(kv, TimeMicros(r.Start))
	if j.spec.Window.Type == Count {
		kv = append(kv, Long(r.Index))
	}
	key, _ := wire.AppendEncode(make([]byte, 0, 64), j.keyID, nil)
	key, err := j.keySchema.append(key, kv)
	if err != nil {
		return nil, fmt.Errorf("window job %s: writing a result key: %w", j.spec.Name, err)
	}
	if r.Tombstone {
		return &kgo.Record{Topic: j.spec.Output, Key: key}, nil
	}
	vv := append(kv, TimeMicros(r.End))
	vv = append(vv, r.Aggs...)
	vv = append(vv, Long(r.Events))
	val, _ := wire.AppendEncode(make([]byte, 0, 64), j.valID, nil)
	val, err = j.valSchema.append(val, vv)
	if err != nil {
		return nil, fmt.Errorf("window job %s: writing a result: %w", j.spec.Name, err)
	}
	rec := &kgo.Record{Topic: j.spec.Output, Key: key, Value: val}
	if r.Final {
		rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: "cdcd.window.final", Value: []byte("true")})
	}
	return rec, nil
}

// wire is the schema registry's wire format: a zero byte and the 4-byte schema id before the
// Avro body.
var wire sr.ConfluentHeader

// lateRecord is a JSON record for the late topic: what arrived, why it is late, where from.
func (j *Job) lateRecord(l LateRec) *kgo.Record {
	o := l.Rec.Origin
	vals := map[string]*string{}
	for i, a := range j.spec.Aggs {
		if a.Fn != FnCount {
			vals[a.Name] = jsonText(l.Rec.Vals[i])
		}
	}
	group := map[string]*string{}
	for i, g := range j.spec.GroupBy {
		group[g.String()] = jsonText(l.Rec.Group[i])
	}
	var missed []map[string]int64
	for _, m := range l.Missed {
		missed = append(missed, map[string]int64{"start_ms": floorDiv(m[0], 1000), "end_ms": floorDiv(m[1], 1000)})
	}
	body := map[string]any{"job": j.spec.Name, "reason": l.Reason, "group": group, "values": vals, "retraction": l.Rec.Sign < 0, "missed_windows": missed}
	if l.Rec.T != noTime {
		body["event_time_ms"] = floorDiv(l.Rec.T, 1000)
	}
	v, _ := json.Marshal(body)
	h := fnv.New64a()
	for _, g := range l.Rec.Group {
		h.Write(appendKey(nil, g))
	}
	rec := &kgo.Record{Topic: j.spec.Late, Key: []byte(strconv.FormatUint(h.Sum64(), 16)), Value: v, Headers: []kgo.RecordHeader{
		{Key: "cdcd.window.job", Value: []byte(j.spec.Name)},
		{Key: "cdcd.window.reason", Value: []byte(l.Reason)},
	}}
	if o.Topic != "" {
		rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: "cdcd.origin", Value: []byte(fmt.Sprintf("%s[%d]@%d", o.Topic, o.Partition, o.Offset))})
	}
	return rec
}

// jsonText is a value as a late record's JSON holds it: its text (a string as it is, not
// quoted again), or null.
func jsonText(v Value) *string {
	switch v.Kind {
	case KindNull:
		return nil
	case KindString:
		return &v.S
	}
	t := v.Text()
	return &t
}
