package publish

import (
	"bytes"
	"context"

	"github.com/cdcd-dev/cdcd/change"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Data records are handed out from chunks, and their keys and values copied into shared
// buffers: a change costs a few allocations per chunk instead of five of its own (a record, a
// key and a value copy, a context carrying its position, the position boxed), which is most
// of what the collector had to do per change in the sink.
const (
	recChunkLen   = 256      // records per chunk
	arenaLen      = 64 << 10 // bytes per key/value buffer
	arenaMaxShare = 8 << 10  // a key or value larger than this gets a buffer of its own
)

// recChunk holds records and, beside each, the position of the change it carries. Its
// context (the sink's produce context, with the chunk as a value) is every record's Context,
// so a broker refusal can be traced back to the change's position.
type recChunk struct {
	recs  [recChunkLen]kgo.Record
	pos   [recChunkLen]change.Position
	alone [recChunkLen]bool // produced in a producer batch of its own (see Memory.tooLarge)
	ctx   context.Context
	n     int
}

type chunkKey struct{}

// newDataRecord returns a record for the change at pos, its Context set; alone says it will
// be produced in a batch of its own.
func (s *Sink) newDataRecord(pos change.Position, alone bool) *kgo.Record {
	c := s.chunk
	if c == nil || c.n == recChunkLen {
		c = &recChunk{}
		c.ctx = context.WithValue(s.prodCtx, chunkKey{}, c)
		s.chunk = c
	}
	r := &c.recs[c.n]
	c.pos[c.n], c.alone[c.n] = pos, alone
	c.n++
	r.Context = c.ctx
	return r
}

// positionOf returns the position of the change a data record carries, and whether it was
// produced alone.
func positionOf(r *kgo.Record) (pos change.Position, alone, ok bool) {
	if r.Context == nil {
		return change.Position{}, false, false
	}
	c, ok := r.Context.Value(chunkKey{}).(*recChunk)
	if !ok {
		return change.Position{}, false, false
	}
	for i := range c.recs[:c.n] {
		if &c.recs[i] == r {
			return c.pos[i], c.alone[i], true
		}
	}
	return change.Position{}, false, false
}

// copyBytes copies b (nil stays nil) into the sink's current buffer. The copy is never
// written again, so the buffer may be shared by the records of many changes.
func (s *Sink) copyBytes(b []byte) []byte {
	if b == nil {
		return nil
	}
	n := len(b)
	if n > arenaMaxShare {
		return bytes.Clone(b)
	}
	if len(s.arena)+n > cap(s.arena) {
		s.arena = make([]byte, 0, arenaLen)
	}
	start := len(s.arena)
	s.arena = append(s.arena, b...)
	return s.arena[start:len(s.arena):len(s.arena)]
}
