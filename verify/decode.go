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

// hasher hashes keys and encoded column values. The seed is per run: hashes are compared only within
// one run.
type hasher struct {
	seed maphash.Seed
}

func newHasher() *hasher { return &hasher{seed: maphash.MakeSeed()} }

func (h *hasher) bytes(b []byte) uint64 { return maphash.Bytes(h.seed, b) }
