package config

import (
	"fmt"
	"slices"
	"strings"

	"github.com/cdcd-dev/cdcd/change"
	"github.com/cdcd-dev/cdcd/encode"
	"github.com/cdcd-dev/cdcd/shape"
)

// TableOutbox makes a table an outbox: each inserted row is published as one event. The
// column names and the topic default to those of Debezium's outbox event router.
type TableOutbox struct {
	// ID is the column of the event's id, sent as header "id" (default id).
	ID string `yaml:"id"`
	// Key is the column of the record key (default aggregateid).
	Key string `yaml:"key"`
	// Payload is the column of the record value (default payload).
	Payload string `yaml:"payload"`
	// RouteBy is the column whose value replaces ${routedByValue} in Topic (default
	// aggregatetype).
	RouteBy string `yaml:"route_by"`
	// Topic is the events' topic, or a template of it (default outbox.event.${routedByValue}).
	Topic string `yaml:"topic"`
	// Headers are more columns sent as record headers named after them.
	Headers []string `yaml:"headers"`
	// PayloadSchema, if set, is an Avro schema (JSON) that JSON payloads are parsed against,
	// e.g. ${file:/etc/cdcd/order_event.avsc}; default: the payload as it is (a JSON column
	// is an Avro string).
	PayloadSchema string `yaml:"payload_schema"`
	// OnUpdate is what an update of the outbox table does: warn (ignored with a warning, the
	// default) or fail (the pipeline stops).
	OnUpdate string `yaml:"on_update"`
}

// validateOutbox checks each outbox table: captured, not given a topic override, columns
// named once, a topic (template) that makes valid topic names, a payload schema that parses.
func validateOutbox(ps *problems, at func(string) string, p *Pipeline, tables map[string]bool) {
	for t, ob := range p.Outbox {
		k := at("outbox." + t)
		if !tables[t] {
			ps.add(k, fmt.Sprintf("table %s is not captured by this pipeline", quote(t)), "name only tables listed in the source's tables, spelled as there")
			continue
		}
		if _, ok := p.Topics.Overrides[t]; ok {
			ps.add(at("topics.overrides."+t), fmt.Sprintf("table %s is an outbox: its events go to the topics its rows name, not to one topic of the table", quote(t)),
				fmt.Sprintf("remove the override; set outbox.%s.topic instead", t))
		}
		o := ob.rule().WithDefaults()
		cols := map[string]string{}
		for _, c := range []struct{ key, col string }{{"id", o.ID}, {"key", o.Key}, {"payload", o.Payload}} {
			if prev, dup := cols[c.col]; dup {
				ps.add(k+"."+c.key, fmt.Sprintf("column %s is also the %s column", quote(c.col), prev), "name distinct columns for id, key and payload")
			}
			cols[c.col] = c.key
		}
		for i, h := range ob.Headers {
			hk := fmt.Sprintf("%s.headers[%d]", k, i)
			switch {
			case h == "" || slices.Index(ob.Headers, h) != i:
				ps.add(hk, fmt.Sprintf("header column %s is empty or listed twice", quote(h)), "name each column once, as the database spells it")
			case h == "id" || h == o.ID:
				ps.add(hk, fmt.Sprintf("column %s would be a second header id", quote(h)), "leave it out: the id column is always sent as header id")
			}
		}
		tmpl := strings.Contains(o.Topic, shape.RoutedByValue)
		switch {
		case strings.Contains(strings.ReplaceAll(o.Topic, shape.RoutedByValue, ""), "${"):
			ps.add(k+".topic", fmt.Sprintf("%s has a placeholder other than ${routedByValue}", quote(o.Topic)), "${routedByValue} (the route_by column's value, written $${routedByValue} in this file) is the only placeholder")
		case !tmpl && !topicRE.MatchString(o.Topic):
			ps.add(k+".topic", fmt.Sprintf("%s is not a valid Kafka topic name", quote(o.Topic)), "use letters, digits, '.', '_' and '-' only, and $${routedByValue} for the route column's value")
		case tmpl && !topicRE.MatchString(strings.ReplaceAll(o.Topic, shape.RoutedByValue, "x")):
			ps.add(k+".topic", fmt.Sprintf("%s does not make valid Kafka topic names", quote(o.Topic)), "use letters, digits, '.', '_' and '-' only around the placeholder, e.g. outbox.event.$${routedByValue}")
		}
		if ob.PayloadSchema != "" {
			if _, err := encode.ParsePayloadSchema(ob.PayloadSchema); err != nil {
				ps.add(k+".payload_schema", err.Error(), "write an Avro schema in JSON, e.g. payload_schema: ${file:/etc/cdcd/order_event.avsc}")
			}
		}
		if ob.OnUpdate != "" && ob.OnUpdate != "warn" && ob.OnUpdate != "fail" {
			ps.add(k+".on_update", fmt.Sprintf("%s is not warn or fail", quote(ob.OnUpdate)), "write warn (updates are ignored with a warning) or fail (the pipeline stops)")
		}
		if sh, ok := p.Shape[t]; ok {
			c := sh.Columns
			for _, col := range append([]string{o.ID, o.Key, o.Payload}, ob.Headers...) {
				if !c.Keeps(col) {
					ps.add(k, fmt.Sprintf("outbox column %s is left out by shape.%s.columns", quote(col), t), "keep the outbox's columns in the shaping")
				}
			}
		}
	}
}

func (ob TableOutbox) rule() shape.Outbox {
	return shape.Outbox{ID: ob.ID, Key: ob.Key, Payload: ob.Payload, RouteBy: ob.RouteBy, Topic: ob.Topic,
		Headers: ob.Headers, PayloadSchema: ob.PayloadSchema, FailOnUpdate: ob.OnUpdate == "fail"}
}

// addOutboxRules adds the outbox tables to rules (next to their shaping, if any).
func (p *Pipeline) addOutboxRules(rules shape.Rules) {
	for t, ob := range p.Outbox {
		s, n, err := change.ParseTableName(t)
		if err != nil {
			continue
		}
		r := rules[s+"."+n]
		o := ob.rule()
		r.Outbox = &o
		rules[s+"."+n] = r
	}
}
