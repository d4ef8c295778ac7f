package encode

import (
	"encoding/json"
	"fmt"
	"strings"
)

// This file explains a registry's refusal of a schema in cdcd's own words: it compares the
// subject's registered schema with the new one, field by field, and tells for each
// difference whether readers of one can still read records written with the other, by
// Avro's schema resolution rules (the rules registries check compatibility with).

// avroNode is a parsed Avro schema, enough to compare two of them.
type avroNode struct {
	kind           string // null, boolean, int, long, float, double, bytes, string, record, enum, array, map, fixed, union
	name           string // full name of a named type
	logical        string
	prec, scale    int
	fields         []avroField // record
	items          *avroNode   // array items, map values
	branches       []*avroNode // union
	symbols        []string    // enum
	size           int         // fixed
	enumHasDefault bool
}

type avroField struct {
	name       string
	typ        *avroNode
	hasDefault bool
	sourceType string // cdcd.source_type
}

// parseAvro parses schema JSON into nodes, resolving references to named types.
func parseAvro(schema string) (*avroNode, error) {
	var v any
	if err := json.Unmarshal([]byte(schema), &v); err != nil {
		return nil, err
	}
	p := avroParser{named: map[string]*avroNode{}}
	return p.node(v, "")
}

type avroParser struct{ named map[string]*avroNode }

func fullName(name, ns string) string {
	if strings.Contains(name, ".") || ns == "" {
		return name
	}
	return ns + "." + name
}

func (p *avroParser) node(v any, ns string) (*avroNode, error) {
	switch v := v.(type) {
	case string:
		switch v {
		case "null", "boolean", "int", "long", "float", "double", "bytes", "string":
			return &avroNode{kind: v}, nil
		}
		if n, ok := p.named[fullName(v, ns)]; ok {
			return n, nil
		}
		if n, ok := p.named[v]; ok {
			return n, nil
		}
		return nil, fmt.Errorf("unknown type %q", v)
	case []any:
		u := &avroNode{kind: "union"}
		for _, b := range v {
			n, err := p.node(b, ns)
			if err != nil {
				return nil, err
			}
			u.branches = append(u.branches, n)
		}
		return u, nil
	case map[string]any:
		kind, _ := v["type"].(string)
		n := &avroNode{kind: kind}
		if lt, ok := v["logicalType"].(string); ok {
			n.logical = lt
		}
		if f, ok := v["precision"].(float64); ok {
			n.prec = int(f)
		}
		if f, ok := v["scale"].(float64); ok {
			n.scale = int(f)
		}
		switch kind {
		case "record", "error", "enum", "fixed":
			n.kind = kind
			if kind == "error" {
				n.kind = "record"
			}
			name, _ := v["name"].(string)
			if s, ok := v["namespace"].(string); ok && !strings.Contains(name, ".") {
				ns = s
			}
			n.name = fullName(name, ns)
			if i := strings.LastIndexByte(n.name, '.'); i >= 0 {
				ns = n.name[:i]
			}
			p.named[n.name] = n
		}
		switch kind {
		case "record", "error":
			fields, _ := v["fields"].([]any)
			for _, f := range fields {
				fm, _ := f.(map[string]any)
				name, _ := fm["name"].(string)
				t, err := p.node(fm["type"], ns)
				if err != nil {
					return nil, fmt.Errorf("field %s: %w", name, err)
				}
				_, hasDefault := fm["default"]
				st, _ := fm[sourceTypeProp].(string)
				n.fields = append(n.fields, avroField{name: name, typ: t, hasDefault: hasDefault, sourceType: st})
			}
		case "enum":
			syms, _ := v["symbols"].([]any)
			for _, s := range syms {
				sym, _ := s.(string)
				n.symbols = append(n.symbols, sym)
			}
			_, n.enumHasDefault = v["default"]
		case "fixed":
			if f, ok := v["size"].(float64); ok {
				n.size = int(f)
			}
		case "array":
			it, err := p.node(v["items"], ns)
			if err != nil {
				return nil, err
			}
			n.items = it
		case "map":
			it, err := p.node(v["values"], ns)
			if err != nil {
				return nil, err
			}
			n.items = it
		case "":
			return p.node(v["type"], ns) // {"type": {...}} nesting
		}
		return n, nil
	}
	return nil, fmt.Errorf("unexpected %T in schema", v)
}

func shortName(full string) string {
	if i := strings.LastIndexByte(full, '.'); i >= 0 {
		return full[i+1:]
	}
	return full
}

// canRead reports whether a reader with schema r can read data written with schema w, by
// Avro's resolution rules.
func canRead(r, w *avroNode) bool { return canReadSeen(r, w, map[[2]*avroNode]bool{}) }

func canReadSeen(r, w *avroNode, seen map[[2]*avroNode]bool) bool {
	if seen[[2]*avroNode{r, w}] {
		return true
	}
	seen[[2]*avroNode{r, w}] = true
	if w.kind == "union" {
		for _, b := range w.branches {
			if !canReadSeen(r, b, seen) {
				return false
			}
		}
		return true
	}
	if r.kind == "union" {
		for _, b := range r.branches {
			if canReadSeen(b, w, seen) {
				return true
			}
		}
		return false
	}
	switch {
	case r.kind == w.kind:
	case w.kind == "int" && (r.kind == "long" || r.kind == "float" || r.kind == "double"),
		w.kind == "long" && (r.kind == "float" || r.kind == "double"),
		w.kind == "float" && r.kind == "double",
		w.kind == "string" && r.kind == "bytes", w.kind == "bytes" && r.kind == "string":
		return true
	default:
		return false
	}
	switch r.kind {
	case "record":
		if shortName(r.name) != shortName(w.name) {
			return false
		}
		for _, rf := range r.fields {
			wf := fieldNamed(w.fields, rf.name)
			if wf == nil {
				if !rf.hasDefault {
					return false
				}
				continue
			}
			if !canReadSeen(rf.typ, wf.typ, seen) {
				return false
			}
		}
	case "enum":
		if shortName(r.name) != shortName(w.name) {
			return false
		}
		if !r.enumHasDefault {
			for _, s := range w.symbols {
				if !contains(r.symbols, s) {
					return false
				}
			}
		}
	case "fixed":
		return shortName(r.name) == shortName(w.name) && r.size == w.size
	case "array", "map":
		return canReadSeen(r.items, w.items, seen)
	}
	return true
}

func fieldNamed(fs []avroField, name string) *avroField {
	for i := range fs {
		if fs[i].name == name {
			return &fs[i]
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// schemaChange is one difference between a registered schema and a new one.
type schemaChange struct {
	what string // "column amount changed type from int (integer) to string (text)"
	// breaksBackward: readers on the new schema cannot read records written with the old one.
	// breaksForward: readers on the old schema cannot read records written with the new one.
	breaksBackward, breaksForward bool
	// encodingOnly: a column whose database type is the same in both schemas changed its Avro
	// type, so the encoding changed (a type mode, see modes.go), not the table.
	encodingOnly bool
}

// diffSchemas lists the differences between the registered schema old and the new one.
func diffSchemas(old, new string) ([]schemaChange, error) {
	o, err := parseAvro(old)
	if err != nil {
		return nil, fmt.Errorf("parsing the registered schema: %w", err)
	}
	n, err := parseAvro(new)
	if err != nil {
		return nil, fmt.Errorf("parsing the new schema: %w", err)
	}
	d := differ{seen: map[string]bool{}}
	d.compare("", o, n, nil, nil)
	return d.changes, nil
}

type differ struct {
	changes []schemaChange
	seen    map[string]bool // named record pairs already compared
}

// fieldLabel names a field for people: columns of the Key and Value records are columns;
// anything else is an envelope field with its path.
func fieldLabel(recordName, path, field string) string {
	switch shortName(recordName) {
	case "Value":
		return "column " + field
	case "Key":
		return "key column " + field
	}
	if path == "" {
		return "field " + field
	}
	return "field " + path + "." + field
}

// nonNull returns the only non-null branch of a ["null", T] union, or n itself.
func nonNull(n *avroNode) (*avroNode, bool) {
	if n.kind != "union" || len(n.branches) != 2 {
		return n, false
	}
	switch {
	case n.branches[0].kind == "null":
		return n.branches[1], true
	case n.branches[1].kind == "null":
		return n.branches[0], true
	}
	return n, false
}

func (d *differ) compare(path string, o, n *avroNode, of, nf *avroField) {
	on, oNull := nonNull(o)
	nn, nNull := nonNull(n)
	if on.kind == "record" && nn.kind == "record" && oNull == nNull {
		key := on.name + "\x00" + nn.name
		if d.seen[key] {
			return
		}
		d.seen[key] = true
		d.compareRecords(path, on, nn)
		return
	}
	if sameType(o, n) {
		return
	}
	label := path
	if of != nil {
		label = of.name
	}
	c := schemaChange{breaksBackward: !canRead(n, o), breaksForward: !canRead(o, n),
		encodingOnly: of != nil && nf != nil && of.sourceType != "" && of.sourceType == nf.sourceType}
	switch {
	case oNull && !nNull && sameType(on, n):
		c.what = label + " became NOT NULL (it was nullable)"
	case !oNull && nNull && sameType(o, nn):
		c.what = label + " became nullable (it was NOT NULL)"
	default:
		c.what = fmt.Sprintf("%s changed type from %s to %s", label, describeField(o, of), describeField(n, nf))
	}
	d.changes = append(d.changes, c)
}

func (d *differ) compareRecords(path string, o, n *avroNode) {
	for _, nfield := range n.fields {
		ofield := fieldNamed(o.fields, nfield.name)
		label := fieldLabel(n.name, path, nfield.name)
		if ofield == nil {
			c := schemaChange{breaksBackward: !nfield.hasDefault}
			if nfield.hasDefault {
				c.what = fmt.Sprintf("%s was added (%s, with a default)", label, describeField(nfield.typ, &nfield))
			} else {
				c.what = fmt.Sprintf("%s was added without a default (%s)", label, describeField(nfield.typ, &nfield))
			}
			d.changes = append(d.changes, c)
			continue
		}
		sub := nfield.name
		if path != "" {
			sub = path + "." + nfield.name
		}
		of, nf := *ofield, nfield
		of.name, nf.name = label, label
		d.compare(sub, ofield.typ, nfield.typ, &of, &nf)
	}
	for _, ofield := range o.fields {
		if fieldNamed(n.fields, ofield.name) != nil {
			continue
		}
		label := fieldLabel(o.name, path, ofield.name)
		c := schemaChange{breaksForward: !ofield.hasDefault}
		if ofield.hasDefault {
			c.what = fmt.Sprintf("%s was removed (%s, it had a default)", label, describeField(ofield.typ, &ofield))
		} else {
			c.what = fmt.Sprintf("%s was removed, and it had no default (%s)", label, describeField(ofield.typ, &ofield))
		}
		d.changes = append(d.changes, c)
	}
}

// sameType reports whether two nodes describe the same type (names of records aside from
// their fields, which compareRecords handles).
func sameType(a, b *avroNode) bool { return sameTypeDepth(a, b, 0) }

// maxTypeDepth stops the comparison of recursive types; deeper levels count as the same.
const maxTypeDepth = 32

func sameTypeDepth(a, b *avroNode, depth int) bool {
	if depth > maxTypeDepth || a == b {
		return true
	}
	if a.kind != b.kind || a.logical != b.logical || a.prec != b.prec || a.scale != b.scale {
		return false
	}
	switch a.kind {
	case "union":
		if len(a.branches) != len(b.branches) {
			return false
		}
		for i := range a.branches {
			if !sameTypeDepth(a.branches[i], b.branches[i], depth+1) {
				return false
			}
		}
	case "array", "map":
		return sameTypeDepth(a.items, b.items, depth+1)
	case "record", "enum", "fixed":
		if shortName(a.name) != shortName(b.name) || a.size != b.size || len(a.symbols) != len(b.symbols) || len(a.fields) != len(b.fields) {
			return false
		}
		for i := range a.symbols {
			if a.symbols[i] != b.symbols[i] {
				return false
			}
		}
		for i := range a.fields {
			if a.fields[i].name != b.fields[i].name || a.fields[i].hasDefault != b.fields[i].hasDefault || !sameTypeDepth(a.fields[i].typ, b.fields[i].typ, depth+1) {
				return false
			}
		}
	}
	return true
}

// describe writes a type the way people read it: "int", "decimal(10,2)", "array of int",
// "nullable string".
func describe(n *avroNode) string {
	if inner, ok := nonNull(n); ok {
		return "nullable " + describe(inner)
	}
	switch n.kind {
	case "union":
		parts := make([]string, len(n.branches))
		for i, b := range n.branches {
			parts[i] = describe(b)
		}
		return "union of " + strings.Join(parts, ", ")
	case "array":
		return "array of " + describe(n.items)
	case "map":
		return "map of " + describe(n.items)
	case "record", "enum", "fixed":
		return n.kind + " " + shortName(n.name)
	}
	switch n.logical {
	case "decimal":
		return fmt.Sprintf("decimal(%d,%d)", n.prec, n.scale)
	case "":
		return n.kind
	}
	return n.kind + " " + n.logical
}

func describeField(n *avroNode, f *avroField) string {
	s := describe(n)
	if f != nil && f.sourceType != "" {
		s += " (" + f.sourceType + ")"
	}
	return s
}
