package window

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// inputPart names one input partition of a job.
type inputPart struct {
	topic     string
	partition int32
}

// watermark is what a repartition partition knows of the input partitions feeding it: the
// largest event time each one has reached. Stream time is the minimum over them (as Flink's
// and Kafka Streams' watermarks): the job reads its input partitions' chunks one after
// another, so the largest event time seen in a repartition partition runs ahead of the
// slowest input partition during any backlog, and would close windows whose records are still
// on their way.
//
// Every input partition counts, not only those whose records hash to this repartition
// partition: the first stage writes, with each transaction, a watermark record (Sign 0, the
// input partition as Origin, its largest event time in the transaction) to every repartition
// partition. Input partitions that held records when the job started and have not reported
// yet are waiting: until each has, stream time stays where it is. An idle tick (Sign 0, no
// Origin; sent only once the whole job has caught up with its input) moves every input
// partition to the wall clock.
type watermark struct {
	reached map[inputPart]*int64
	all     []*int64 // the values of reached, for the minimum
	waiting map[inputPart]bool
	lastKey inputPart // the last input partition seen, and its entry: records come in runs
	last    *int64
	dirty   bool // changed since the changelog last got it
	// idle: input partitions found drained (nothing the group has not consumed) while they
	// held windows open: left out of the minimum until their next event time (as Flink's
	// idleness). Not in the changelog: after a restore they are found idle again.
	idle map[*int64]bool
	// moved: when (wall clock) each input partition's watermark record last moved it
	moved map[*int64]time.Time
}

// get returns the entry of input partition k, and whether it is new.
func (w *watermark) get(k inputPart) (*int64, bool) {
	if w.last != nil && w.lastKey == k {
		return w.last, false
	}
	e := w.reached[k]
	isNew := e == nil
	if isNew {
		if w.reached == nil {
			w.reached = map[inputPart]*int64{}
		}
		e = new(int64)
		*e = noTime
		w.reached[k] = e
		w.all = append(w.all, e)
		delete(w.waiting, k)
	}
	w.lastKey, w.last = k, e
	return e, isNew
}

// min is the minimum over the input partitions that reported an event time; false while one
// is waiting or none reported.
func (w *watermark) min() (int64, bool) {
	if len(w.waiting) > 0 {
		return 0, false
	}
	m, ok := int64(0), false
	for _, e := range w.all {
		if *e == noTime || len(w.idle) > 0 && w.idle[e] {
			continue // read without an event time yet, or idle: it holds nothing back
		}
		if !ok || *e < m {
			m, ok = *e, true
		}
	}
	return m, ok
}

// observe records that input partition o reached event time t (noTime: o was read, without
// an event time) and moves stream time to the new minimum.
func (p *Processor) observe(o Origin, t int64) {
	e, isNew := p.wm.get(inputPart{o.Topic, o.Partition})
	if len(p.wm.idle) > 0 && t != noTime && p.wm.idle[e] {
		delete(p.wm.idle, e) // it has event times again
		isNew = true         // recompute the minimum
	}
	if !isNew && (t == noTime || t <= *e) {
		return
	}
	was := *e
	if t != noTime {
		*e = t
	}
	p.wm.dirty = true
	// Only the input partition that held the minimum (or a new one) can move it.
	if isNew || !p.hasTime || was == noTime || was <= p.streamTime {
		if m, ok := p.wm.min(); ok && (!p.hasTime || m > p.streamTime) {
			p.streamTime, p.hasTime = m, true
		}
	}
}

// Expect names the input partitions that held records when the job started: until each has
// reported an event time (or been read without one), the processor's stream time does not
// move, so a partition read later than the others cannot find its windows closed.
func (p *Processor) Expect(parts []Origin) {
	for _, o := range parts {
		k := inputPart{o.Topic, o.Partition}
		if p.wm.reached[k] == nil {
			if p.wm.waiting == nil {
				p.wm.waiting = map[inputPart]bool{}
			}
			p.wm.waiting[k] = true
		}
	}
}

// Watermark processes a watermark record of the first stage: input partition o reached event
// time t (noTime: it was read, and had no event time). Windows the new stream time closes are
// emitted.
func (p *Processor) Watermark(o Origin, t int64) {
	p.settle()
	if t == idleTime {
		p.markIdle(o)
	} else {
		e, _ := p.wm.get(inputPart{o.Topic, o.Partition})
		if t != noTime && t > *e {
			if p.wm.moved == nil {
				p.wm.moved = map[*int64]time.Time{}
			}
			p.wm.moved[e] = time.Now()
		}
		p.observe(o, t)
	}
	p.closeDue()
}

// idleTime marks a release record: the input partition has nothing the job has not read.
const idleTime = noTime + 2

// markIdle leaves input partition o out of the minimum until its next event time.
func (p *Processor) markIdle(o Origin) {
	e, _ := p.wm.get(inputPart{o.Topic, o.Partition})
	if p.wm.idle == nil {
		p.wm.idle = map[*int64]bool{}
	}
	p.wm.idle[e] = true
	if m, ok := p.wm.min(); ok && (!p.hasTime || m > p.streamTime) {
		p.streamTime, p.hasTime = m, true
	}
}

// holding returns the input partitions that hold this processor's windows open: waiting
// ones, and those behind the next close time whose watermark has not moved for quiet.
func (p *Processor) holding(now time.Time, quiet time.Duration) []Origin {
	next, ok := p.NextClose()
	if !ok {
		return nil
	}
	var out []Origin
	for k := range p.wm.waiting {
		out = append(out, Origin{Topic: k.topic, Partition: k.partition})
	}
	for k, e := range p.wm.reached {
		if *e == noTime || *e >= next || p.wm.idle[e] {
			continue
		}
		if moved, ok := p.wm.moved[e]; ok && now.Sub(moved) < quiet {
			continue
		}
		out = append(out, Origin{Topic: k.topic, Partition: k.partition})
	}
	return out
}

// inputReached collects, within one transaction of the first stage, the largest event time
// of each input partition read (noTime: read, no event time).
type inputReached map[inputPart]int64

func (m inputReached) see(k inputPart, recs []Rec) {
	t, ok := m[k]
	if !ok {
		t = noTime
	}
	for i := range recs {
		if recs[i].T != noTime && (t == noTime || recs[i].T > t) {
			t = recs[i].T
		}
	}
	m[k] = t
}

// produceWatermarks writes, after the transaction's records, one watermark record per input
// partition read to every repartition partition (see watermark).
func (j *Job) produceWatermarks(m inputReached, produce func(*kgo.Record)) {
	repart := RepartitionTopic(j.spec.Name)
	for k, t := range m {
		r := Rec{T: t}
		v := marshalRec(nil, &r, Origin{Topic: k.topic, Partition: k.partition})
		for p := int32(0); p < j.parts; p++ {
			produce(&kgo.Record{Topic: repart, Partition: p, Value: v})
		}
	}
}

// releaseEvery bounds how often releaseTicks looks at the input partitions still waited for.
const releaseEvery = time.Second

// releaseTicks releases the input partitions that hold a repartition partition's windows open
// — waited for (nothing reported since it was restored), or behind and quiet for
// max(idle_timeout, 1s) — once they hold nothing the group has not consumed: an empty input
// partition, or one that has gone quiet, must not hold windows open (Flink's idleness). A
// released partition counts again from its next event time. Like an idle tick, a release is
// a record in the repartition partition (Sign 0, the input partition as Origin, idleTime),
// after every record the input partition sent there.
func (j *Job) releaseTicks(ctx context.Context, now time.Time) []*kgo.Record {
	if now.Sub(j.released) < releaseEvery {
		return nil
	}
	j.released = now
	waits := map[int32][]Origin{}
	var all []Origin
	seen := map[inputPart]bool{}
	quiet := max(j.spec.IdleTimeout, releaseEvery)
	for p, proc := range j.procs {
		if proc.OpenWindows() == 0 || j.stale(p) {
			continue
		}
		for _, o := range proc.holding(now, quiet) {
			k := inputPart{o.Topic, o.Partition}
			waits[p] = append(waits[p], o)
			if !seen[k] {
				seen[k] = true
				all = append(all, o)
			}
		}
	}
	if len(all) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	drained, err := j.drainedInputs(ctx, all)
	cancel()
	if err != nil {
		j.log.Debug("checking the input partitions waited for failed", "err", err)
		return nil
	}
	var out []*kgo.Record
	for p, os := range waits {
		for _, o := range os {
			if drained[inputPart{o.Topic, o.Partition}] {
				r := Rec{T: idleTime}
				out = append(out, &kgo.Record{Topic: RepartitionTopic(j.spec.Name), Partition: p, Value: marshalRec(nil, &r, o)})
			}
		}
	}
	return out
}
