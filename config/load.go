package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Problem is one thing wrong with a configuration file.
type Problem struct {
	Path    string // e.g. pipelines[0].source.postgres.slot
	Line    int    // 0 when the key is absent from the file and has no present parent
	Message string
	Fix     string
}

func (p Problem) String() string {
	s := ""
	if p.Line > 0 {
		s = fmt.Sprintf("line %d: ", p.Line)
	}
	if p.Path != "" {
		s += p.Path + ": "
	}
	s += p.Message
	if p.Fix != "" {
		s += " (fix: " + p.Fix + ")"
	}
	return s
}

// Error lists every problem found in a file.
type Error struct {
	File     string
	Problems []Problem
}

func (e *Error) Error() string {
	var b strings.Builder
	if len(e.Problems) == 1 {
		fmt.Fprintf(&b, "%s: invalid configuration: 1 problem", e.File)
	} else {
		fmt.Fprintf(&b, "%s: invalid configuration: %d problems", e.File, len(e.Problems))
	}
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		if p.Line > 0 {
			fmt.Fprintf(&b, "%s:%d: ", e.File, p.Line)
		}
		if p.Path != "" {
			b.WriteString(p.Path + ": ")
		}
		b.WriteString(p.Message)
		if p.Fix != "" {
			b.WriteString("\n      fix: " + p.Fix)
		}
	}
	return b.String()
}

// Load reads, expands, decodes, defaults and validates the file at path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	return Parse(path, data, os.LookupEnv)
}

// Parse is Load on bytes already read. name is used in messages; lookup resolves ${VAR}.
// Relative ${file:...} paths are resolved against name's directory.
func Parse(name string, data []byte, lookup func(string) (string, bool)) (*Config, error) {
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &Error{File: name, Problems: []Problem{{Message: "the file is empty", Fix: "start from config.example.yaml"}}}
		}
		return nil, &Error{File: name, Problems: []Problem{yamlProblem(err)}}
	}
	l := &loader{file: name, dir: filepath.Dir(name), lookup: lookup, lines: map[string]int{}}
	doc := &root
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		doc = doc.Content[0]
	}
	if doc.Kind != yaml.MappingNode {
		return nil, &Error{File: name, Problems: []Problem{{Line: doc.Line, Message: "the top level must be a mapping of keys (kafka, schema_registry, pipelines, ...)", Fix: "start from config.example.yaml"}}}
	}
	l.expand(doc, "")
	l.checkKeys(doc, reflect.TypeOf(Config{}), "")
	var cfg Config
	if err := doc.Decode(&cfg); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			for _, msg := range te.Errors {
				l.probs = append(l.probs, yamlProblem(errors.New(msg)))
			}
		} else {
			l.probs = append(l.probs, yamlProblem(err))
		}
	}
	// Validate even when decoding found problems, so one run reports everything; a key that
	// already has a problem (an unset variable, say) is not reported twice.
	cfg.applyDefaults()
	known := l.probs
	for _, p := range cfg.validate() {
		if !coveredBy(p.Path, known) {
			l.probs = append(l.probs, p)
		}
	}
	if len(l.probs) > 0 {
		for i := range l.probs {
			if l.probs[i].Line == 0 {
				l.probs[i].Line = l.lineOf(l.probs[i].Path)
			}
		}
		sort.SliceStable(l.probs, func(i, j int) bool { return l.probs[i].Line < l.probs[j].Line })
		return nil, &Error{File: name, Problems: l.probs}
	}
	return &cfg, nil
}

type loader struct {
	file   string
	dir    string
	lookup func(string) (string, bool)
	lines  map[string]int // config path -> line of its key
	probs  []Problem
}

// lineOf returns the line of path, or of its nearest ancestor present in the file.
func (l *loader) lineOf(path string) int {
	for path != "" {
		if n, ok := l.lines[path]; ok {
			return n
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return 0
}

func yamlProblem(err error) Problem {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	p := Problem{Message: msg, Fix: "check the YAML syntax and the type of the value (see config.example.yaml)"}
	if strings.HasPrefix(msg, "line ") {
		rest := msg[len("line "):]
		if i := strings.IndexByte(rest, ':'); i > 0 {
			if n, err := strconv.Atoi(rest[:i]); err == nil {
				p.Line = n
				p.Message = strings.TrimSpace(rest[i+1:])
			}
		}
	}
	if strings.Contains(p.Message, "cannot unmarshal") {
		p.Fix = "give the value the type this key expects (a list, a number, a string...; see config.example.yaml)"
	}
	if strings.Contains(p.Message, "already defined") {
		p.Fix = "remove the duplicate key"
	}
	return p
}

// expand replaces ${VAR}, ${VAR:-default} and ${file:PATH} in every scalar, in place, so line
// numbers stay those of the file. "$$" is a literal "$".
func (l *loader) expand(n *yaml.Node, path string) {
	switch n.Kind {
	case yaml.ScalarNode:
		if !strings.Contains(n.Value, "$") {
			return
		}
		out, err := l.expandString(n.Value)
		if err != nil {
			l.probs = append(l.probs, Problem{Path: path, Line: n.Line, Message: err.Error(), Fix: fixFor(err)})
			return
		}
		n.Value = out
		if n.Style == 0 {
			n.Tag = "" // let YAML resolve the expanded text: ${ID} may become a number
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			l.expand(n.Content[i+1], join(path, n.Content[i].Value))
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			l.expand(c, fmt.Sprintf("%s[%d]", path, i))
		}
	}
}

type expandError struct {
	msg, fix string
}

func (e *expandError) Error() string { return e.msg }

func fixFor(err error) string {
	var e *expandError
	if errors.As(err, &e) {
		return e.fix
	}
	return ""
}

func (l *loader) expandString(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '$' {
			b.WriteByte(c)
			continue
		}
		if i+1 < len(s) && s[i+1] == '$' {
			b.WriteByte('$')
			i++
			continue
		}
		if i+1 >= len(s) || s[i+1] != '{' {
			b.WriteByte(c)
			continue
		}
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return "", &expandError{fmt.Sprintf("unterminated ${ in %q", s), "close it with } or write $$ for a literal $"}
		}
		expr := s[i+2 : i+end]
		i += end
		val, err := l.resolve(expr)
		if err != nil {
			return "", err
		}
		b.WriteString(val)
	}
	return b.String(), nil
}

func (l *loader) resolve(expr string) (string, error) {
	if p, ok := strings.CutPrefix(expr, "file:"); ok {
		if p == "" {
			return "", &expandError{"${file:} names no file", "write ${file:/run/secrets/NAME}"}
		}
		if !filepath.IsAbs(p) {
			p = filepath.Join(l.dir, p)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return "", &expandError{fmt.Sprintf("secret file %s cannot be read: %v", p, errors.Unwrap(err)), "mount the secret at that path or correct the path"}
		}
		return strings.TrimRight(string(data), "\r\n"), nil
	}
	name, def, hasDef := strings.Cut(expr, ":-")
	if !validEnvName(name) {
		return "", &expandError{fmt.Sprintf("${%s} is not a valid variable reference", expr), "use ${NAME}, ${NAME:-default} or ${file:PATH}; write $$ for a literal $"}
	}
	if v, ok := l.lookup(name); ok {
		return v, nil
	}
	if hasDef {
		return def, nil
	}
	return "", &expandError{fmt.Sprintf("environment variable %s is not set", name), fmt.Sprintf("export %s, or give a default with ${%s:-value}", name, name)}
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		if !(c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func coveredBy(path string, ps []Problem) bool {
	for _, p := range ps {
		if p.Path != "" && (path == p.Path || strings.HasPrefix(path, p.Path+".") || strings.HasPrefix(path, p.Path+"[")) {
			return true
		}
	}
	return false
}

var scalarTypes = map[reflect.Type]bool{
	reflect.TypeOf(Duration{}): true,
	reflect.TypeOf(ByteSize{}): true,
}

// checkKeys walks the node tree beside the Go type, recording each key's line and reporting
// every unknown key (yaml.v3's KnownFields stops at the first and cannot be combined with
// expansion on the node tree).
func (l *loader) checkKeys(n *yaml.Node, t reflect.Type, path string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if path != "" {
		if _, ok := l.lines[path]; !ok {
			l.lines[path] = n.Line
		}
	}
	if scalarTypes[t] {
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return // the decoder reports the type mismatch
		}
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := join(path, k.Value)
			l.lines[p] = k.Line
			ft, ok := fields[k.Value]
			if !ok {
				l.probs = append(l.probs, Problem{Path: p, Line: k.Line,
					Message: fmt.Sprintf("unknown key %q", k.Value), Fix: suggest(k.Value, fields)})
				continue
			}
			l.checkKeys(v, ft, p)
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return
		}
		for i, c := range n.Content {
			l.checkKeys(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			p := join(path, n.Content[i].Value)
			l.lines[p] = n.Content[i].Line
			l.checkKeys(n.Content[i+1], t.Elem(), p)
		}
	}
}

func yamlFields(t reflect.Type) map[string]reflect.Type {
	m := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		m[name] = f.Type
	}
	return m
}

func suggest(key string, fields map[string]reflect.Type) string {
	best, bestD := "", 4
	names := make([]string, 0, len(fields))
	for name := range fields {
		names = append(names, name)
		if d := editDistance(strings.ToLower(key), name); d < bestD {
			best, bestD = name, d
		}
	}
	sort.Strings(names)
	if best != "" {
		return fmt.Sprintf("did you mean %q? (known keys here: %s)", best, strings.Join(names, ", "))
	}
	return "remove it; known keys here: " + strings.Join(names, ", ")
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// UnmarshalYAML keeps unparsable text for validation to report with the key's line.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		d.Raw, d.Bad = "(not a scalar)", true
		return nil
	}
	d.set(n.Value)
	return nil
}

// UnmarshalYAML keeps unparsable text for validation to report with the key's line.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		b.Raw, b.Bad = "(not a scalar)", true
		return nil
	}
	b.set(n.Value)
	return nil
}
