package window

import (
	"hash/fnv"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// A processor restored from its changelog at any point continues exactly like the original:
// the same results and the same late records, for every window type and both modes.
func TestRestoreFromChangelogContinuesExactly(t *testing.T) {
	rng := rand.New(rand.NewPCG(seed(t), 9))
	specs := map[string]*Spec{
		"tumbling": spec(WindowSpec{Type: Tumbling, Size: time.Minute, Grace: 10 * time.Second}),
		"hopping":  spec(WindowSpec{Type: Hopping, Size: time.Minute, Advance: 15 * time.Second, Grace: 5 * time.Second}),
		"session":  spec(WindowSpec{Type: Session, Gap: 5 * time.Second, Grace: 5 * time.Second}),
		"count":    spec(WindowSpec{Type: Count, Events: 5}),
	}
	tbl := spec(WindowSpec{Type: Tumbling, Size: time.Minute, Grace: time.Minute})
	tbl.Mode, tbl.Time = ModeTable, Path{"after", "t"}
	specs["table"] = tbl
	upd := spec(WindowSpec{Type: Tumbling, Size: time.Minute, Grace: 10 * time.Second})
	upd.EmitUpdates = true
	specs["updates"] = upd
	for name, s := range specs {
		t.Run(name, func(t *testing.T) {
			recs := genEvents(rng, 1500, 30*sec)
			if s.Mode == ModeTable {
				for i := range recs {
					if i%3 == 2 { // retract an earlier row
						prev := recs[i-1]
						recs[i] = prev
						recs[i].Sign = -1
						recs[i].Seq = uint64(i)
					}
				}
			}
			orig := NewProcessor(s)
			changelog := map[string][]byte{}
			take := func(p *Processor) ([]Result, []LateRec) {
				res, late := p.TakeResults()
				for _, kv := range p.TakeChanges() {
					if kv.Value == nil {
						delete(changelog, string(kv.Key))
					} else {
						changelog[string(kv.Key)] = kv.Value
					}
				}
				return res, late
			}
			var restored *Processor
			split := 300 + rng.IntN(900)
			var gotRes, wantRes []string
			var gotLate, wantLate int
			for i, r := range recs {
				if err := orig.Add(r); err != nil {
					t.Fatal(err)
				}
				if restored != nil {
					if err := restored.Add(r); err != nil {
						t.Fatal(err)
					}
					res, late := restored.TakeResults()
					restored.TakeChanges()
					gotLate += len(late)
					for _, x := range res {
						gotRes = append(gotRes, resultKey(x.Group, x.Start)+valuesText(x.Aggs))
					}
				}
				res, late := take(orig)
				if restored != nil {
					wantLate += len(late)
					for _, x := range res {
						wantRes = append(wantRes, resultKey(x.Group, x.Start)+valuesText(x.Aggs))
					}
				}
				if i == split {
					restored = NewProcessor(s)
					for k, v := range changelog {
						if err := restored.Restore([]byte(k), v); err != nil {
							t.Fatal(err)
						}
					}
					if restored.OpenWindows() != orig.OpenWindows() {
						t.Fatalf("restored %d windows, the original holds %d", restored.OpenWindows(), orig.OpenWindows())
					}
				}
			}
			if len(wantRes) == 0 {
				t.Fatal("weak test: no results after the split")
			}
			if len(gotRes) != len(wantRes) || gotLate != wantLate {
				t.Fatalf("restored: %d results, %d late; original: %d results, %d late", len(gotRes), gotLate, len(wantRes), wantLate)
			}
			for i := range wantRes {
				if gotRes[i] != wantRes[i] {
					t.Fatalf("result %d: restored %s, original %s", i, gotRes[i], wantRes[i])
				}
			}
		})
	}
}

func TestRecCodecRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(seed(t), 10))
	for _, r := range genEvents(rng, 200, sec) {
		r.Row = rng.Uint64()
		o := Origin{Topic: "shop.public.orders", Partition: 3, Offset: int64(r.Seq) * 7}
		b := marshalRec(nil, &r, o)
		got, go2, err := unmarshalRec(b)
		if err != nil {
			t.Fatal(err)
		}
		if got.T != r.T || got.Sign != r.Sign || got.Row != r.Row || valuesText(got.Group) != valuesText(r.Group) || valuesText(got.Vals) != valuesText(r.Vals) || go2 != o {
			t.Fatalf("round trip: %+v / %+v, want %+v / %+v", got, go2, r, o)
		}
		// A record of format 1 (written before rows were carried) reads with no row.
		v1 := append([]byte{1}, marshalRec(nil, &Rec{T: r.T, Sign: r.Sign, Group: r.Group, Vals: r.Vals}, o)[1:]...)
		v1 = v1[:len(v1)-1] // its row (0) is one byte
		if got, go1, err := unmarshalRec(v1); err != nil || got.Row != 0 || got.T != r.T || go1 != o {
			t.Fatalf("format 1: %+v / %+v, %v", got, go1, err)
		}
		for n := 0; n < len(b); n++ {
			if _, _, err := unmarshalRec(b[:n]); err == nil {
				t.Fatalf("a record cut at %d of %d bytes decoded without error", n, len(b))
			}
		}
	}
}

// StateBytes is the size of the job's changelog as compaction keeps it (the latest record per
// key, keys and values), tracked as windows change instead of re-encoding every window on
// every transaction; a restored processor reports the same size as the original.
func TestStateBytesEqualsTheChangelog(t *testing.T) {
	rng := rand.New(rand.NewPCG(seed(t), 13))
	specs := map[string]*Spec{
		"tumbling": spec(WindowSpec{Type: Tumbling, Size: time.Minute, Grace: 10 * time.Second}),
		"hopping":  spec(WindowSpec{Type: Hopping, Size: time.Minute, Advance: 15 * time.Second, Grace: 5 * time.Second}),
		"session":  spec(WindowSpec{Type: Session, Gap: 5 * time.Second, Grace: 5 * time.Second}),
		"count":    spec(WindowSpec{Type: Count, Events: 5}),
	}
	for name, s := range specs {
		t.Run(name, func(t *testing.T) {
			p := NewProcessor(s)
			changelog := map[string][]byte{}
			size := func() int {
				n := 0
				for k, v := range changelog {
					n += len(k) + len(v)
				}
				return n
			}
			for i, r := range genEvents(rng, 1500, 30*sec) {
				if err := p.Add(r); err != nil {
					t.Fatal(err)
				}
				if i%7 != 0 {
					continue // several records per transaction
				}
				p.TakeResults()
				for _, kv := range p.TakeChanges() {
					if kv.Value == nil {
						delete(changelog, string(kv.Key))
					} else {
						changelog[string(kv.Key)] = kv.Value
					}
				}
				if got, want := p.StateBytes(), size(); got != want {
					t.Fatalf("after record %d: StateBytes %d, the changelog holds %d bytes", i, got, want)
				}
			}
			if size() == 0 {
				t.Fatal("weak test: empty changelog")
			}
			restored := NewProcessor(s)
			for k, v := range changelog {
				if err := restored.Restore([]byte(k), v); err != nil {
					t.Fatal(err)
				}
			}
			if got, want := restored.StateBytes(), size(); got != want {
				t.Fatalf("restored: StateBytes %d, the changelog holds %d bytes", got, want)
			}
		})
	}
}

// A count window's index survives a restore even when the window closed in the transaction
// that opened it (its counter was saved only with windows still open).
func TestCountWindowIndexSurvivesRestore(t *testing.T) {
	s := spec(WindowSpec{Type: Count, Events: 2})
	s.Aggs = []AggSpec{{Name: "n", Fn: FnCount}}
	p := NewProcessor(s)
	add := func(p *Processor, at int64) {
		t.Helper()
		if err := p.Add(Rec{Group: []Value{Long(1)}, T: at, Sign: 1, Vals: []Value{Null}}); err != nil {
			t.Fatal(err)
		}
	}
	add(p, 1)
	add(p, 2)
	if res, _ := p.TakeResults(); len(res) != 1 || res[0].Index != 0 {
		t.Fatalf("want window 0, got %+v", res)
	}
	q := NewProcessor(s)
	for _, kv := range p.TakeChanges() {
		if err := q.Restore(kv.Key, kv.Value); err != nil {
			t.Fatal(err)
		}
	}
	add(q, 3)
	add(q, 4)
	if res, _ := q.TakeResults(); len(res) != 1 || res[0].Index != 1 {
		t.Fatalf("after a restore want window 1, got %+v", res)
	}
}

// The loop decodes repartition records into one reused values buffer: a late record, kept
// until the transaction's results are taken, must keep its own values.
func TestLateRecordKeepsItsValuesAcrossDecodes(t *testing.T) {
	s := spec(WindowSpec{Type: Tumbling, Size: time.Second})
	s.Aggs = []AggSpec{{Name: "total", Fn: FnSum}}
	p := NewProcessor(s)
	var d recDecoder
	add := func(at time.Duration, v int64) {
		t.Helper()
		b := marshalRec(nil, &Rec{Group: []Value{Long(1)}, T: int64(at / time.Microsecond), Sign: 1, Vals: []Value{Long(v)}}, Origin{Topic: "in"})
		r, _, err := d.unmarshal(b)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Add(r); err != nil {
			t.Fatal(err)
		}
	}
	add(10*time.Second, 1)
	add(2*time.Second, 7) // late: stream time is 10 s, grace 0
	add(10*time.Second, 9)
	_, late := p.TakeResults()
	if len(late) != 1 || late[0].Rec.Vals[0] != Long(7) {
		t.Fatalf("late records %+v, want one with the value 7", late)
	}
}

// A group's repartition partition must never change between versions (its state lives
// there): partitionOf is FNV-1a of the group key, as hash/fnv computes it.
func TestPartitionOfIsFNV1a(t *testing.T) {
	j := &Job{parts: 7}
	for i := range 2000 {
		key := appendGroupKey(nil, &Rec{Group: []Value{Long(int64(i * 7919)), String(strings.Repeat("x", i%13))}})
		h := fnv.New32a()
		h.Write(key)
		if got, want := j.partitionOf(key), int32(h.Sum32()%7); got != want {
			t.Fatalf("key %x: partition %d, want %d", key, got, want)
		}
	}
}

// A value larger than what is left of the transaction's byte slab gets a slab of its own:
// the values cut before it keep their bytes, and no copy of the old slab is kept with it.
func TestCarveLargeValue(t *testing.T) {
	var tx txn
	small := tx.carve(func(b []byte) []byte { return append(b, "abc"...) })
	big := strings.Repeat("x", 100<<10)
	got := tx.carve(func(b []byte) []byte { return append(b, big...) })
	if string(small) != "abc" || string(got) != big {
		t.Fatalf("values %q and %d bytes, want abc and %d bytes", small, len(got), len(big))
	}
	if cap(tx.byteSlab) != len(big) {
		t.Fatalf("slab of %d bytes after a %d-byte value, want one of its size", cap(tx.byteSlab), len(big))
	}
}
