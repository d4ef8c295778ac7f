package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/cdcd-dev/cdcd/redact"
	"go.yaml.in/yaml/v3"
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
	if p := notText(data); p != nil {
		return nil, &Error{File: name, Problems: []Problem{*p}}
	}
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &Error{File: name, Problems: []Problem{{Message: "the file is empty", Fix: "start from config.example.yaml"}}}
		}
		return nil, &Error{File: name, Problems: []Problem{yamlProblem(err, data)}}
	}
	l := &loader{file: name, dir: filepath.Dir(name), lookup: lookup, lines: map[string]int{}, raw: map[string]string{}, typeLines: map[int]bool{}}
	l.secondDocument(dec, data)
	doc := &root
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		doc = doc.Content[0]
	}
	if doc.Kind != yaml.MappingNode {
		return nil, &Error{File: name, Problems: append(l.probs, Problem{Line: doc.Line, Message: "the top level must be a mapping of keys (kafka, schema_registry, pipelines, ...)", Fix: "start from config.example.yaml"})}
	}
	l.expand(doc, "")
	splitBrokers(doc)
	l.checkKeys(doc, reflect.TypeOf(Config{}), "", 0)
	var cfg Config
	if err := doc.Decode(&cfg); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			for _, msg := range te.Errors {
				p := yamlProblem(errors.New(msg), data)
				if !l.typeLines[p.Line] { // not already reported with its key by checkKeys
					l.probs = append(l.probs, p)
				}
			}
		} else {
			l.probs = append(l.probs, yamlProblem(err, data))
		}
	}
	// Validate even when decoding found problems, so one run reports everything; a key that
	// already has a problem (an unset variable, a wrong type, a duplicate) is not reported
	// again, nor is anything below it.
	cfg.applyDefaults()
	known := l.probs
	for _, p := range cfg.validate() {
		// A value of the wrong type decodes as nothing: "no pipelines" above a pipeline of
		// the wrong type would be false.
		if !coveredBy(p.Path, known) && !l.typeBelow(p.Path) {
			l.probs = append(l.probs, p)
		}
	}
	cfg.secrets = collectSecrets(&cfg, l.fileSecrets)
	if len(l.probs) > 0 {
		red := redact.New(cfg.secrets...)
		for i := range l.probs {
			p := &l.probs[i]
			if p.Line == 0 {
				p.Line = l.lineOf(p.Path)
			}
			p.Message = clipMessage(red.String(p.Message))
		}
		sort.SliceStable(l.probs, func(i, j int) bool { return l.probs[i].Line < l.probs[j].Line })
		return nil, &Error{File: name, Problems: l.probs}
	}
	cfg.warnings = l.warnings(&cfg)
	return &cfg, nil
}

// notText refuses what is not YAML text before the parser sees it: the parser's own errors
// for a binary file or a wrong encoding carry no line.
func notText(data []byte) *Problem {
	if bytes.HasPrefix(data, []byte{0xFF, 0xFE}) || bytes.HasPrefix(data, []byte{0xFE, 0xFF}) {
		return nil // UTF-16 with a byte order mark: the parser reads it
	}
	if !utf8.Valid(data) {
		off := 0
		for off < len(data) {
			r, size := utf8.DecodeRune(data[off:])
			if r == utf8.RuneError && size <= 1 {
				break
			}
			off += size
		}
		line, col := lineCol(data, off)
		return &Problem{Line: line, Message: fmt.Sprintf("the file is not UTF-8 text: byte 0x%02X at line %d, column %d is not UTF-8", data[off], line, col),
			Fix: "save the file as UTF-8 text; if it is binary, --config names the wrong file"}
	}
	for off, r := range string(data) {
		// YAML's printable set (c-printable), and the byte order mark.
		if r == '\t' || r == '\n' || r == '\r' || r == 0xFEFF || (r >= 0x20 && r < 0x7F) || r == 0x85 ||
			(r >= 0xA0 && r <= 0xD7FF) || (r >= 0xE000 && r <= 0xFFFD) || r >= 0x10000 {
			continue
		}
		line, col := lineCol(data, off)
		what := "the file is not YAML text"
		if r == 0 {
			what = "the file looks binary"
		}
		return &Problem{Line: line, Message: fmt.Sprintf("%s: control character U+%04X at line %d, column %d (YAML allows tab, newline and printable characters only)", what, r, line, col),
			Fix: "remove the character; if the file is binary, --config names the wrong file"}
	}
	return nil
}

// secondDocument refuses a second YAML document: cdcd reads one, and whatever follows a
// "---" would otherwise be ignored without a word. An empty trailing "---" is harmless.
func (l *loader) secondDocument(dec *yaml.Decoder, data []byte) {
	var next yaml.Node
	err := dec.Decode(&next)
	if errors.Is(err, io.EOF) {
		return
	}
	fix := "keep one document per file: remove the \"---\" line and merge the two parts, or split them into two files"
	if err != nil {
		p := yamlProblem(err, data)
		p.Message = "a second YAML document follows the first (cdcd reads one), and it does not parse: " + p.Message
		p.Fix = fix
		l.probs = append(l.probs, p)
		return
	}
	if len(next.Content) == 1 && next.Content[0].Kind == yaml.ScalarNode && next.Content[0].Tag == "!!null" && next.Content[0].Value == "" {
		return
	}
	l.probs = append(l.probs, Problem{Line: next.Line, Message: "a second YAML document starts here; cdcd reads only the first, so this one would be ignored", Fix: fix})
}

type loader struct {
	file   string
	dir    string
	lookup func(string) (string, bool)
	lines  map[string]int    // config path -> line of its key
	raw    map[string]string // config path -> scalar text before expansion (only where it had a "$")
	probs  []Problem
	// typeLines are the lines of values checkKeys found of the wrong type; the decoder's
	// own message for them (which lacks the key) is dropped.
	typeLines map[int]bool
	// fileSecrets are the values read from ${file:...}.
	fileSecrets []string
	// typePaths are the paths of the values of the wrong type.
	typePaths []string
	// aliased are the anchored nodes checkKeys has followed an alias to.
	aliased map[*yaml.Node]bool
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

var unknownAnchorRE = regexp.MustCompile(`unknown anchor '([^']*)' referenced`)

func yamlProblem(err error, data []byte) Problem {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	p := Problem{Message: clipMessage(msg), Fix: "check the YAML syntax and the type of the value (see config.example.yaml)"}
	if m := unknownAnchorRE.FindStringSubmatch(msg); m != nil {
		// yaml.v3 gives no line for this one: find the alias.
		p.Line = aliasLine(data, m[1])
		p.Message = fmt.Sprintf("alias *%s refers to no anchor &%s defined before it", clip(m[1]), clip(m[1]))
		p.Fix = fmt.Sprintf("define &%s on the value to repeat before using *%s, or write the value out", clip(m[1]), clip(m[1]))
		return p
	}
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

// aliasLine returns the line of the first alias *name in data, or 0.
func aliasLine(data []byte, name string) int {
	for off := 0; ; {
		i := bytes.Index(data[off:], []byte("*"+name))
		if i < 0 {
			return 0
		}
		end := off + i + 1 + len(name)
		if end == len(data) || bytes.IndexByte([]byte(" \t\r\n,]}#"), data[end]) >= 0 {
			line, _ := lineCol(data, off+i)
			return line
		}
		off = end
	}
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
		l.raw[path] = n.Value
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
			return "", &expandError{fmt.Sprintf("unterminated ${ in %s", quote(s)), "close it with } or write $$ for a literal $"}
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
			return "", &expandError{fmt.Sprintf("secret file %s cannot be read: %v", clip(p), errors.Unwrap(err)), "mount the secret at that path or correct the path"}
		}
		v := strings.TrimRight(string(data), "\r\n")
		l.fileSecrets = append(l.fileSecrets, v)
		return v, nil
	}
	name, def, hasDef := strings.Cut(expr, ":-")
	if !validEnvName(name) {
		return "", &expandError{fmt.Sprintf("${%s} is not a valid variable reference", clip(expr)), "use ${NAME}, ${NAME:-default} or ${file:PATH}; write $$ for a literal $"}
	}
	if v, ok := l.lookup(name); ok {
		return v, nil
	}
	if hasDef {
		return def, nil
	}
	if name == "routedByValue" {
		return "", &expandError{"environment variable routedByValue is not set", "for an outbox topic's placeholder write $${routedByValue} ($$ is a literal $)"}
	}
	return "", &expandError{fmt.Sprintf("environment variable %s is not set", clip(name)), fmt.Sprintf("export %s, or give a default with ${%s:-value}", clip(name), clip(name))}
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

// typeBelow reports whether a value below path (or at it) has the wrong type.
func (l *loader) typeBelow(path string) bool {
	for _, tp := range l.typePaths {
		if path != "" && (tp == path || strings.HasPrefix(tp, path+".") || strings.HasPrefix(tp, path+"[")) {
			return true
		}
	}
	return false
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
// every unknown key, duplicate key and value of the wrong type with its path (yaml.v3's
// KnownFields stops at the first unknown key and cannot be combined with expansion on the
// node tree; its type errors name the line but not the key). A duplicate key is removed from
// the tree after it is reported, so the decoder keeps the first and nothing below the key is
// reported twice. Merge keys (<<: *anchor) are followed.
func (l *loader) checkKeys(n *yaml.Node, t reflect.Type, path string, depth int) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if path != "" {
		if _, ok := l.lines[path]; !ok {
			l.lines[path] = n.Line
		}
	}
	if n.Kind == yaml.AliasNode {
		// Each anchored value is checked once: following every alias again would take
		// exponential time on nested aliases ("billion laughs"), which the decoder refuses.
		if n.Alias == nil || depth > 32 || l.aliased[n.Alias] {
			return
		}
		if l.aliased == nil {
			l.aliased = map[*yaml.Node]bool{}
		}
		l.aliased[n.Alias] = true
		n = n.Alias
		depth++
	}
	if isNull(n) {
		return // an empty value: the zero value, checked by validation
	}
	if t == reflect.TypeOf(Snapshot{}) && n.Kind == yaml.ScalarNode {
		return // the mode alone (snapshot: initial)
	}
	if t == reflect.TypeOf(TransactionMetadata{}) && n.Kind == yaml.ScalarNode {
		if n.Tag != "!!bool" {
			l.typeProblem(n, reflect.TypeOf(true), path)
		}
		return // transaction_metadata: true
	}
	if scalarTypes[t] {
		if n.Kind != yaml.ScalarNode {
			l.typeProblem(n, t, path)
		}
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			l.typeProblem(n, t, path)
			return
		}
		l.dropDuplicates(n, path)
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Tag == "!!merge" {
				for _, m := range mergedMappings(v) {
					l.checkKeys(m, t, path, depth+1)
				}
				continue
			}
			p := join(path, clip(k.Value))
			l.lines[p] = k.Line
			ft, ok := fields[k.Value]
			if !ok {
				l.probs = append(l.probs, Problem{Path: p, Line: k.Line,
					Message: fmt.Sprintf("unknown key %s", quote(k.Value)), Fix: suggest(k.Value, fields)})
				continue
			}
			l.checkKeys(v, ft, p, depth)
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			l.typeProblem(n, t, path)
			return
		}
		for i, c := range n.Content {
			l.checkKeys(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i), depth)
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			l.typeProblem(n, t, path)
			return
		}
		l.dropDuplicates(n, path)
		for i := 0; i+1 < len(n.Content); i += 2 {
			p := join(path, clip(n.Content[i].Value))
			l.lines[p] = n.Content[i].Line
			l.checkKeys(n.Content[i+1], t.Elem(), p, depth)
		}
	default:
		if n.Kind != yaml.ScalarNode {
			l.typeProblem(n, t, path)
			return
		}
		if err := n.Decode(reflect.New(t).Interface()); err != nil {
			l.typeProblem(n, t, path)
		}
	}
}

// dropDuplicates reports every key given twice in mapping n (with both lines) and removes
// the later ones from the tree.
func (l *loader) dropDuplicates(n *yaml.Node, path string) {
	first := map[string]int{}
	kept := n.Content[:0:0]
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		if k.Tag == "!!merge" {
			kept = append(kept, k, n.Content[i+1])
			continue
		}
		if line, dup := first[k.Value]; dup {
			l.probs = append(l.probs, Problem{Path: join(path, clip(k.Value)), Line: k.Line,
				Message: fmt.Sprintf("key %s is given twice in the same mapping: at line %d and again at line %d (only the first was read)", quote(k.Value), line, k.Line),
				Fix:     "remove the duplicate key, or merge the two into one"})
			continue
		}
		first[k.Value] = k.Line
		kept = append(kept, k, n.Content[i+1])
	}
	n.Content = kept
}

// mergedMappings are the mappings a merge key's value names: one alias or mapping, or a
// list of them.
func mergedMappings(v *yaml.Node) []*yaml.Node {
	var out []*yaml.Node
	add := func(n *yaml.Node) {
		if n.Kind == yaml.MappingNode || n.Kind == yaml.AliasNode {
			out = append(out, n) // checkKeys follows an alias once
		}
	}
	if v.Kind == yaml.SequenceNode {
		for _, c := range v.Content {
			add(c)
		}
	} else {
		add(v)
	}
	return out
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null" && n.Style == 0
}

// typeProblem reports a value of the wrong type with its key, the type expected and what was
// found.
func (l *loader) typeProblem(n *yaml.Node, t reflect.Type, path string) {
	want, fix := expectedType(t)
	key := path
	if i := strings.LastIndexAny(path, ".["); i >= 0 && path[i] == '.' {
		key = path[i+1:]
	}
	l.typeLines[n.Line] = true
	l.typePaths = append(l.typePaths, path)
	l.probs = append(l.probs, Problem{Path: path, Line: n.Line,
		Message: fmt.Sprintf("expects %s, but the value is %s", want, describe(n)),
		Fix:     fmt.Sprintf("give %s %s", key, fix)})
}

// expectedType describes a Go type the way the configuration's reader knows it, and how to
// write a value of it.
func expectedType(t reflect.Type) (want, fix string) {
	switch t {
	case reflect.TypeOf(Duration{}):
		return "a duration", "a duration like 500ms, 10s or 1m30s"
	case reflect.TypeOf(ByteSize{}):
		return "a size", "a size like 1048576, 512KiB or 16MiB"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string", "a single value (quote it if it contains ': ' or starts with [ or {)"
	case reflect.Bool:
		return "true or false", "true or false"
	case reflect.Int, reflect.Int64, reflect.Int32:
		return "a whole number", "a whole number without quotes or units, e.g. 10000"
	case reflect.Uint32:
		return "a whole number from 0 to 4294967295", "a whole number from 0 to 4294967295"
	case reflect.Uint, reflect.Uint64:
		return "a whole number of at least 0", "a whole number of at least 0"
	case reflect.Slice:
		if t.Elem().Kind() == reflect.String {
			return "a list of strings", "a list, e.g. [a, b] or one \"- item\" per line"
		}
		return "a list", "a list with one \"- item\" per entry (see config.example.yaml)"
	case reflect.Map:
		return "a mapping of names to values", "a mapping, one \"name: value\" per line"
	case reflect.Struct:
		names := make([]string, 0, t.NumField())
		for name := range yamlFields(t) {
			names = append(names, name)
		}
		sort.Strings(names)
		return "a mapping with the keys " + strings.Join(names, ", "), "a mapping of those keys (see config.example.yaml)"
	}
	return t.String(), "a value of type " + t.String()
}

// describe says what a node is, echoing at most a clipped scalar.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	}
	switch n.Tag {
	case "!!int", "!!float":
		return "the number " + clip(n.Value)
	case "!!bool":
		return clip(n.Value)
	}
	return "the string " + quote(n.Value)
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
		if len(key) > 2*maxEcho {
			continue // no key is that long; the distance would cost seconds on a huge one
		}
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

// splitBrokers lets kafka.brokers come from one comma-separated value (the usual container
// pattern, brokers: ${KAFKA_BROKERS}): a scalar becomes a list, and each element of a list
// that holds commas becomes several.
func splitBrokers(doc *yaml.Node) {
	var kafka *yaml.Node
	for i := 0; i+1 < len(doc.Content); i += 2 {
		if doc.Content[i].Value == "kafka" && doc.Content[i+1].Kind == yaml.MappingNode {
			kafka = doc.Content[i+1]
		}
	}
	if kafka == nil {
		return
	}
	for i := 0; i+1 < len(kafka.Content); i += 2 {
		n := kafka.Content[i+1]
		if kafka.Content[i].Value != "brokers" {
			continue
		}
		var items []*yaml.Node
		switch n.Kind {
		case yaml.ScalarNode:
			if n.Tag == "!!null" || (n.Tag == "" && n.Value == "") {
				continue
			}
			items = []*yaml.Node{n}
		case yaml.SequenceNode:
			items = n.Content
		default:
			continue
		}
		var out []*yaml.Node
		for _, it := range items {
			if it.Kind != yaml.ScalarNode || !strings.Contains(it.Value, ",") {
				out = append(out, it)
				continue
			}
			for _, b := range strings.Split(it.Value, ",") {
				if b = strings.TrimSpace(b); b != "" {
					out = append(out, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: b, Line: it.Line, Column: it.Column})
				}
			}
		}
		if n.Kind == yaml.ScalarNode && len(out) == 1 && out[0] == n {
			out = []*yaml.Node{{Kind: yaml.ScalarNode, Tag: "!!str", Value: n.Value, Line: n.Line, Column: n.Column}}
		}
		*n = yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Style: yaml.FlowStyle, Content: out, Line: n.Line, Column: n.Column}
	}
}
