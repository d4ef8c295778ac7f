package main

import (
	"fmt"
	"sort"
	"strings"

	"github.com/cdcd-dev/cdcd/change"
	"github.com/cdcd-dev/cdcd/checks"
	"github.com/cdcd-dev/cdcd/config"
	"github.com/cdcd-dev/cdcd/shape"
)

// checkShaping reports what of each shaped table leaves the database (columns, masks, key,
// filter) and whether on-demand snapshot requests can be signed.
func checkShaping(p *config.Pipeline, rep *checks.Scoped) {
	tables := make([]string, 0, len(p.Shape))
	for t := range p.Shape {
		tables = append(tables, t)
	}
	sort.Strings(tables)
	for _, t := range tables {
		rep.OK("shape "+t, describeShape(p.Shape[t]))
	}
	outboxes := make([]string, 0, len(p.Outbox))
	for t := range p.Outbox {
		outboxes = append(outboxes, t)
	}
	sort.Strings(outboxes)
	for _, t := range outboxes {
		rep.OK("outbox "+t, describeOutbox(p.ShapeRules(), t))
	}
	switch {
	case p.Snapshot.SignalKey != "":
		rep.OK("snapshot signals", "requests must be signed with snapshot.signal_key; others are ignored and counted (cdcd_signals_rejected_total)")
	case p.SignalKey() != nil:
		rep.OK("snapshot signals", "requests must be signed with a key derived from the source's password; others are ignored and counted (cdcd_signals_rejected_total)")
	default:
		rep.OK("snapshot signals", "off: the configuration holds no secret to sign requests with, so `cdcd snapshot` is refused and every request in the log ignored (set snapshot.signal_key to request snapshots on demand)")
	}
}

// describeShape says in one line what a table's shaping keeps.
func describeShape(s config.TableShape) string {
	var parts []string
	switch {
	case len(s.Columns.Include) > 0:
		parts = append(parts, "columns: only "+strings.Join(s.Columns.Include, ", "))
	case len(s.Columns.Exclude) > 0:
		parts = append(parts, "columns: all but "+strings.Join(s.Columns.Exclude, ", "))
	default:
		parts = append(parts, "columns: all published")
	}
	if len(s.Mask) > 0 {
		var m []string
		for c, spec := range s.Mask {
			m = append(m, c+"="+spec)
		}
		sort.Strings(m)
		parts = append(parts, "masked: "+strings.Join(m, ", "))
	}
	if len(s.Key) > 0 {
		parts = append(parts, "key: "+strings.Join(s.Key, ", "))
	} else {
		parts = append(parts, "key: the table's")
	}
	if s.Filter != "" {
		parts = append(parts, fmt.Sprintf("rows: %s", s.Filter))
	}
	return strings.Join(parts, "; ")
}

// describeOutbox says in one line how an outbox table's inserts are published.
func describeOutbox(rules shape.Rules, table string) string {
	s, n, err := change.ParseTableName(table)
	if err != nil || rules[s+"."+n].Outbox == nil {
		return "not an outbox"
	}
	o := rules[s+"."+n].Outbox.WithDefaults()
	topic := o.Topic
	if strings.Contains(topic, shape.RoutedByValue) {
		topic += " (" + shape.RoutedByValue + " = column " + o.RouteBy + ")"
	}
	parts := []string{"inserts are events to " + topic, "key: " + o.Key, "value: " + o.Payload}
	if o.PayloadSchema != "" {
		parts[2] += " parsed against payload_schema"
	}
	parts = append(parts, "headers: id="+o.ID+strings.Join(append([]string{""}, o.Headers...), ", "))
	if o.FailOnUpdate {
		parts = append(parts, "an update stops the pipeline")
	} else {
		parts = append(parts, "updates ignored with a warning")
	}
	return strings.Join(parts, "; ")
}
