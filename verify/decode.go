package verify

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"sync"

	"github.com/hamba/avro/v2"
)

// Schemas fetches writer schemas by id (the registry's /schemas/ids/{id}).
type Schemas interface {
	SchemaTextByID(ctx context.Context, id int) (string, error)
}

// schemaCache parses each writer schema once.
type schemaCache struct {
	reg   Schemas
	mu    sync.Mutex
	byID  map[int]avro.Schema
	cache *avro.SchemaCache
}

func newSchemaCache(reg Schemas) *schemaCache {
	return &schemaCache{reg: reg, byID: map[int]avro.Schema{}, cache: &avro.SchemaCache{}}
}

func (c *schemaCache) get(ctx context.Context, id int) (avro.Schema, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.byID[id]; ok {
		return s, nil
	}
	text, err := c.reg.SchemaTextByID(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("fetching schema %d from the registry: %w", id, err)
	}
	s, err := avro.ParseWithCache(text, "", c.cache)
	if err != nil {
		return nil, fmt.Errorf("parsing schema %d: %w", id, err)
	}
	c.byID[id] = s
	return s, nil
}

var errNotFramed = errors.New("not a Confluent-framed Avro record (magic byte 0 and a 4-byte schema id)")

// framed splits a Confluent-framed record into its schema id and Avro body.
func framed(b []byte) (int, []byte, error) {
	if len(b) < 5 || b[0] != 0 {
		return 0, nil, errNotFramed
	}
	return int(binary.BigEndian.Uint32(b[1:5])), b[5:], nil
}

var decodeConfig = avro.Config{MaxByteSliceSize: 256 << 20}.Freeze()

// envelope is what verify needs of a decoded value record.
type envelope struct {
	op        string
	after     map[string]any // nil: no after image (a delete)
	unchanged []string       // unchanged_toast: columns whose value the record does not carry
	lsn       uint64         // source.lsn: the commit LSN (0 when the source has none)
}

// unwrapUnion returns the value of a decoded union: hamba gives {"type name": value} for
// unions of null and a named or complex type.
func unwrapUnion(v any) any {
	if m, ok := v.(map[string]any); ok && len(m) == 1 {
		for _, x := range m {
			return x
		}
	}
	return v
}

func decodeEnvelope(s avro.Schema, body []byte) (envelope, error) {
	var m map[string]any
	if err := decodeConfig.Unmarshal(s, body, &m); err != nil {
		return envelope{}, err
	}
	var e envelope
	e.op, _ = m["op"].(string)
	if a := m["after"]; a != nil {
		after, ok := unwrapUnion(a).(map[string]any)
		if !ok {
			return envelope{}, fmt.Errorf("after is %T, not a record", a)
		}
		e.after = after
	}
	if src, ok := m["source"].(map[string]any); ok {
		if l, ok := unwrapUnion(src["lsn"]).(int64); ok && l > 0 {
			e.lsn = uint64(l)
		}
	}
	if u := m["unchanged_toast"]; u != nil {
		list, _ := unwrapUnion(u).([]any)
		for _, x := range list {
			if s, ok := x.(string); ok {
				e.unchanged = append(e.unchanged, s)
			}
		}
	}
	return e, nil
}

// hasher hashes decoded column values. The seed is per run: hashes are compared only within
// one run.
type hasher struct {
	seed maphash.Seed
	buf  []byte
}

func newHasher() *hasher { return &hasher{seed: maphash.MakeSeed()} }

// value hashes one decoded value. Both sides of a comparison were decoded by the same
// decoder from the same kind of schema, so equal values print equally (maps print sorted).
func (h *hasher) value(v any) uint64 {
	h.buf = fmt.Appendf(h.buf[:0], "%T:%v", v, v)
	return maphash.Bytes(h.seed, h.buf)
}

func (h *hasher) bytes(b []byte) uint64 { return maphash.Bytes(h.seed, b) }
