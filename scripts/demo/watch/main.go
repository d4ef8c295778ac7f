// Command watch consumes cdcd topics the way a downstream consumer should (read_committed, from
// the start) and prints every record decoded: op, key, before/after and the source
// transaction, so the demo shows what cdcd publishes.
//
//	go run ./scripts/demo/watch --brokers 127.0.0.1:19092 \
//	    --registry http://127.0.0.1:18081/apis/ccompat/v7 --topic shop.public.orders
//
// It stops on SIGINT/SIGTERM and prints how many change events and tombstones it read.
package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"math"
	"math/big"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
)

func main() {
	brokers := flag.String("brokers", "127.0.0.1:19092", "comma-separated bootstrap brokers")
	registry := flag.String("registry", "http://127.0.0.1:18081/apis/ccompat/v7", "Confluent-compatible schema registry URL")
	topic := flag.String("topic", "shop.public.orders", "comma-separated topics to watch")
	summary := flag.String("summary", "", "a file to write, on stop, one line per topic: TOPIC EVENTS TOMBSTONES")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	topics := strings.Split(*topic, ",")
	c := counts{events: map[string]int{}, tombstones: map[string]int{}}
	err := watch(ctx, strings.Split(*brokers, ","), *registry, topics, &c)
	var sum strings.Builder
	for _, t := range topics {
		fmt.Printf("[watch] stopped: %s: %d change event(s), %d tombstone(s)\n", t, c.events[t], c.tombstones[t])
		fmt.Fprintf(&sum, "%s %d %d\n", t, c.events[t], c.tombstones[t])
	}
	if *summary != "" {
		// scripts/demo.sh (DEMO_CHECK=1) compares it with what cdcd committed.
		if werr := os.WriteFile(*summary, []byte(sum.String()), 0o644); werr != nil && err == nil {
			err = werr
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "[watch]", err)
		os.Exit(1)
	}
}

// counts are what the watcher read, by topic.
type counts struct{ events, tombstones map[string]int }

func watch(ctx context.Context, brokers []string, registry string, topics []string, c *counts) error {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(brokers...),
		kgo.ConsumeTopics(topics...),
		// Only committed Kafka transactions: each source transaction appears whole, once.
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		// The topics appear when cdcd publishes their first record; notice them quickly.
		kgo.MetadataMinAge(250*time.Millisecond),
		kgo.MetadataMaxAge(time.Second),
	)
	if err != nil {
		return err
	}
	defer cl.Close()
	reg, err := sr.NewClient(sr.URLs(registry))
	if err != nil {
		return err
	}
	d := &decoder{reg: reg, schemas: map[int]avro.Schema{}}

	fmt.Printf("[watch] consuming %s (read_committed) from %v\n", strings.Join(topics, ", "), brokers)
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.Canceled) {
				ferr = fmt.Errorf("fetching %s[%d]: %w", t, p, err)
			}
		})
		if ferr != nil {
			return ferr
		}
		var derr error
		fs.EachRecord(func(r *kgo.Record) {
			if derr != nil {
				return
			}
			line, err := d.describe(ctx, r)
			if err != nil {
				derr = fmt.Errorf("%s[%d]@%d: %w", r.Topic, r.Partition, r.Offset, err)
				return
			}
			if r.Value == nil {
				c.tombstones[r.Topic]++
			} else {
				c.events[r.Topic]++
			}
			fmt.Println(line)
		})
		if derr != nil {
			return derr
		}
	}
}

type decoder struct {
	reg     *sr.Client
	schemas map[int]avro.Schema
}

// describe renders one record on one line.
func (d *decoder) describe(ctx context.Context, r *kgo.Record) (string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "[watch] %s[%d]@%d ", r.Topic, r.Partition, r.Offset)
	key := "null"
	if r.Key != nil {
		k, err := d.decode(ctx, r.Key)
		if err != nil {
			return "", fmt.Errorf("key: %w", err)
		}
		key = render(k)
	}
	if r.Value == nil {
		fmt.Fprintf(&b, "tombstone key=%s", key)
		return b.String(), nil
	}
	v, err := d.decode(ctx, r.Value)
	if err != nil {
		return "", fmt.Errorf("value: %w", err)
	}
	env, ok := v.(record)
	if !ok {
		return "", fmt.Errorf("value is not an envelope record")
	}
	if env.get("window_start") != nil {
		// A window job's result: the group, the window and its aggregates.
		state := "update"
		for _, h := range r.Headers {
			if h.Key == "cdcd.window.final" && string(h.Value) == "true" {
				state = "FINAL"
			}
		}
		fmt.Fprintf(&b, "window %s result=%s", state, render(v))
		return b.String(), nil
	}
	op, _ := env.get("op").(string)
	fmt.Fprintf(&b, "op=%s key=%s", op, key)
	if src, ok := env.get("source").(record); ok {
		fmt.Fprintf(&b, " txId=%s", render(src.get("txId")))
	}
	if before := env.get("before"); before != nil {
		fmt.Fprintf(&b, " before=%s", render(before))
	}
	fmt.Fprintf(&b, " after=%s", render(env.get("after")))
	return b.String(), nil
}

// decode decodes Confluent framing (magic 0, 4-byte schema id) + Avro binary.
func (d *decoder) decode(ctx context.Context, b []byte) (any, error) {
	if len(b) < 5 || b[0] != 0 {
		return nil, fmt.Errorf("not Confluent wire format: % x", b[:min(len(b), 8)])
	}
	id := int(binary.BigEndian.Uint32(b[1:5]))
	sch, ok := d.schemas[id]
	if !ok {
		s, err := d.reg.SchemaByID(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("schema %d: %w", id, err)
		}
		// A cache per schema: different schemas may define the same names differently.
		if sch, err = avro.ParseWithCache(s.Schema, "", &avro.SchemaCache{}); err != nil {
			return nil, fmt.Errorf("schema %d: %w", id, err)
		}
		d.schemas[id] = sch
	}
	payload := b[5:]
	r := avro.NewReader(bytes.NewReader(payload), max(len(payload), 1))
	v := read(r, sch)
	if r.Error != nil {
		return nil, fmt.Errorf("decoding with schema %d: %w", id, r.Error)
	}
	return v, nil
}

// record keeps an Avro record's fields in schema order.
type record []field

type field struct {
	name string
	val  any
}

func (r record) get(name string) any {
	for _, f := range r {
		if f.name == name {
			return f.val
		}
	}
	return nil
}

// text is a value printed as is (numbers, timestamps); strings are quoted.
type text string

// read decodes one value of schema s, mapping logical types to readable text.
func read(r *avro.Reader, s avro.Schema) any {
	if ref, ok := s.(*avro.RefSchema); ok {
		s = ref.Schema()
	}
	if s.Type() == avro.Null {
		return nil
	}
	switch s := s.(type) {
	case *avro.RecordSchema:
		out := make(record, 0, len(s.Fields()))
		for _, f := range s.Fields() {
			out = append(out, field{f.Name(), read(r, f.Type())})
		}
		return out
	case *avro.UnionSchema:
		i := int(r.ReadLong())
		types := s.Types()
		if i < 0 || i >= len(types) {
			r.ReportError("union", "branch "+strconv.Itoa(i)+" out of range")
			return nil
		}
		return read(r, types[i])
	case *avro.ArraySchema:
		var out []any
		r.ReadArrayCB(func(r *avro.Reader) bool {
			out = append(out, read(r, s.Items()))
			return true
		})
		return out
	case *avro.EnumSchema:
		i := int(r.ReadInt())
		if i < 0 || i >= len(s.Symbols()) {
			r.ReportError("enum", "symbol "+strconv.Itoa(i)+" out of range")
			return nil
		}
		return s.Symbols()[i]
	case *avro.PrimitiveSchema:
		return readPrimitive(r, s)
	}
	r.ReportError("schema", fmt.Sprintf("unsupported schema type %s", s.Type()))
	return nil
}

func readPrimitive(r *avro.Reader, s *avro.PrimitiveSchema) any {
	var lt avro.LogicalType
	if l := s.Logical(); l != nil {
		lt = l.Type()
	}
	switch s.Type() {
	case avro.Boolean:
		return text(strconv.FormatBool(r.ReadBool()))
	case avro.Int:
		v := r.ReadInt()
		if lt == avro.Date {
			switch int64(v) {
			case math.MaxInt32:
				return text("infinity")
			case math.MinInt32:
				return text("-infinity")
			}
			return text(time.Unix(int64(v)*86400, 0).UTC().Format(time.DateOnly))
		}
		return text(strconv.Itoa(int(v)))
	case avro.Long:
		v := r.ReadLong()
		switch lt {
		case avro.TimestampMicros, avro.LocalTimestampMicros:
			switch v {
			case math.MaxInt64:
				return text("infinity")
			case math.MinInt64:
				return text("-infinity")
			}
			t := time.UnixMicro(v).UTC()
			if lt == avro.TimestampMicros {
				return text(t.Format("2006-01-02T15:04:05.999999Z07:00"))
			}
			return text(t.Format("2006-01-02T15:04:05.999999"))
		case avro.TimeMicros:
			return text(time.UnixMicro(v).UTC().Format("15:04:05.999999"))
		case avro.TimestampMillis: // window results' window_start and window_end
			return text(time.UnixMilli(v).UTC().Format("2006-01-02T15:04:05.999Z07:00"))
		}
		return text(strconv.FormatInt(v, 10))
	case avro.Float:
		return text(strconv.FormatFloat(float64(r.ReadFloat()), 'g', -1, 32))
	case avro.Double:
		return text(strconv.FormatFloat(r.ReadDouble(), 'g', -1, 64))
	case avro.String:
		return r.ReadString()
	case avro.Bytes:
		b := r.ReadBytes()
		if dec, ok := s.Logical().(*avro.DecimalLogicalSchema); ok {
			return text(formatDecimal(b, dec.Scale()))
		}
		return text(fmt.Sprintf("0x%x", b))
	}
	r.ReportError("schema", fmt.Sprintf("unsupported primitive %s", s.Type()))
	return nil
}

// formatDecimal renders a big-endian two's-complement unscaled value with scale digits.
func formatDecimal(b []byte, scale int) string {
	n := new(big.Int).SetBytes(b)
	if len(b) > 0 && b[0]&0x80 != 0 {
		n.Sub(n, new(big.Int).Lsh(big.NewInt(1), uint(len(b))*8))
	}
	s := n.String()
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	if scale > 0 {
		if len(s) <= scale {
			s = strings.Repeat("0", scale-len(s)+1) + s
		}
		s = s[:len(s)-scale] + "." + s[len(s)-scale:]
	}
	if neg {
		s = "-" + s
	}
	return s
}

// render prints a decoded value compactly: {id=1, name="x"}.
func render(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case text:
		return string(v)
	case string:
		return strconv.Quote(v)
	case record:
		parts := make([]string, len(v))
		for i, f := range v {
			parts[i] = f.name + "=" + render(f.val)
		}
		return "{" + strings.Join(parts, ", ") + "}"
	case []any:
		parts := make([]string, len(v))
		for i, e := range v {
			parts[i] = render(e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	return fmt.Sprint(v)
}
