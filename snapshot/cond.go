package snapshot

import (
	"fmt"
	"regexp"
	"strings"
	"unicode"
)

// A Cond is the parsed condition of an on-demand snapshot (`cdcd snapshot --where`). The
// condition travels through the database's log and is run as cdcd's role, so it is never
// pasted into SQL: it must parse in a small grammar, and is rendered again from the parse
// tree with quoted column names and bound (or hex-encoded) string literals:
//
//	cond    = or
//	or      = and { OR and }
//	and     = not { AND not }
//	not     = NOT not | primary
//	primary = "(" cond ")" | column cmp literal | column [NOT] IN "(" literal {"," literal} ")"
//	        | column [NOT] BETWEEN literal AND literal | column IS [NOT] NULL
//	        | column [NOT] LIKE string
//	cmp     = "=" | "<>" | "!=" | "<" | "<=" | ">" | ">="
//	column  = name | "quoted name" | `quoted name`
//	literal = number | 'string' ('' for a quote) | TRUE | FALSE
//
// Anything else (functions, subqueries, casts, comments, a second statement) is refused.
type Cond struct{ n *condNode }

type condNode struct {
	op     string // "or" "and" "not" "cmp" "in" "between" "null" "like"
	kids   []*condNode
	col    string
	cmp    string
	neg    bool
	lits   []condLit
	isNull bool
	like   *regexp.Regexp // compiled on first use (Eval)
}

type condLit struct {
	kind byte // 'n' number, 's' string, 'b' boolean
	text string
}

// Dialect renders a condition for one database.
type Dialect struct {
	// Ident quotes a column name.
	Ident func(string) string
	// String renders a string literal: a bound parameter (appending to args and returning its
	// placeholder) or an encoded literal no text can break out of.
	String func(s string, args *[]string) string
}

// MaxConditionLen bounds a condition's text.
const MaxConditionLen = 4096

// ParseCondition parses a snapshot condition; the error says what is not allowed.
func ParseCondition(s string) (*Cond, error) {
	if len(s) > MaxConditionLen {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrConditionSyntax, MaxConditionLen)
	}
	toks, err := lexCond(s)
	if err != nil {
		return nil, err
	}
	p := &condParser{toks: toks}
	n, err := p.or(0)
	if err != nil {
		return nil, err
	}
	if p.i < len(p.toks) {
		return nil, p.errf("unexpected %q", p.toks[p.i].text)
	}
	return &Cond{n: n}, nil
}

// ErrConditionSyntax is wrapped by every ParseCondition error.
var ErrConditionSyntax = fmt.Errorf("the snapshot condition is outside the allowed grammar (column comparisons with literals, IN, BETWEEN, IS [NOT] NULL, LIKE, AND/OR/NOT, parentheses)")

// SQL renders the condition; string literals go through d.String.
func (c *Cond) SQL(d Dialect, args *[]string) string {
	var b strings.Builder
	c.n.render(&b, d, args)
	return b.String()
}

// Columns returns the column names the condition references.
func (c *Cond) Columns() []string {
	var out []string
	var walk func(n *condNode)
	walk = func(n *condNode) {
		if n.col != "" {
			out = append(out, n.col)
		}
		for _, k := range n.kids {
			walk(k)
		}
	}
	walk(c.n)
	return out
}

func (n *condNode) render(b *strings.Builder, d Dialect, args *[]string) {
	lit := func(l condLit) string {
		switch l.kind {
		case 's':
			return d.String(l.text, args)
		default:
			return l.text // a number or TRUE/FALSE, checked by the lexer
		}
	}
	not := ""
	if n.neg {
		not = "NOT "
	}
	switch n.op {
	case "or", "and":
		b.WriteByte('(')
		for i, k := range n.kids {
			if i > 0 {
				b.WriteString(" " + strings.ToUpper(n.op) + " ")
			}
			k.render(b, d, args)
		}
		b.WriteByte(')')
	case "not":
		b.WriteString("(NOT ")
		n.kids[0].render(b, d, args)
		b.WriteByte(')')
	case "cmp":
		b.WriteString(d.Ident(n.col) + " " + n.cmp + " " + lit(n.lits[0]))
	case "in":
		parts := make([]string, len(n.lits))
		for i, l := range n.lits {
			parts[i] = lit(l)
		}
		b.WriteString(d.Ident(n.col) + " " + not + "IN (" + strings.Join(parts, ", ") + ")")
	case "between":
		b.WriteString(d.Ident(n.col) + " " + not + "BETWEEN " + lit(n.lits[0]) + " AND " + lit(n.lits[1]))
	case "like":
		b.WriteString(d.Ident(n.col) + " " + not + "LIKE " + lit(n.lits[0]))
	case "null":
		b.WriteString(d.Ident(n.col) + " IS " + not + "NULL")
	}
}

type condTok struct {
	kind byte // 'i' identifier or keyword, 'q' quoted identifier, 'n' number, 's' string, 'p' punctuation
	text string
	pos  int
}

var numberRE = regexp.MustCompile(`^-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?`)

func lexCond(s string) ([]condTok, error) {
	var out []condTok
	bad := func(i int, what string) error {
		return fmt.Errorf("%w: %s at offset %d", ErrConditionSyntax, what, i)
	}
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '(' || c == ')' || c == ',':
			out = append(out, condTok{'p', string(c), i})
			i++
		case c == '=' || c == '<' || c == '>' || c == '!':
			j := i + 1
			if j < len(s) && (s[j] == '=' || (c == '<' && s[j] == '>')) {
				j++
			}
			op := s[i:j]
			if op == "!" {
				return nil, bad(i, "\"!\"")
			}
			out = append(out, condTok{'p', op, i})
			i = j
		case c == '\'':
			var b strings.Builder
			j := i + 1
			for {
				if j >= len(s) {
					return nil, bad(i, "an unterminated string")
				}
				if s[j] == '\'' {
					if j+1 < len(s) && s[j+1] == '\'' {
						b.WriteByte('\'')
						j += 2
						continue
					}
					break
				}
				if s[j] == '\\' {
					return nil, bad(j, "a backslash in a string (its meaning differs between servers)")
				}
				b.WriteByte(s[j])
				j++
			}
			out = append(out, condTok{'s', b.String(), i})
			i = j + 1
		case c == '"' || c == '`':
			end := strings.IndexByte(s[i+1:], c)
			if end < 0 {
				return nil, bad(i, "an unterminated quoted name")
			}
			name := s[i+1 : i+1+end]
			if name == "" || strings.ContainsAny(name, "\"`\x00") {
				return nil, bad(i, "an invalid quoted name")
			}
			out = append(out, condTok{'q', name, i})
			i += end + 2
		case c == '-' || (c >= '0' && c <= '9') || c == '.':
			m := numberRE.FindString(s[i:])
			if m == "" {
				return nil, bad(i, fmt.Sprintf("%q", string(c)))
			}
			if j := i + len(m); j < len(s) && (isIdentByte(s[j]) || s[j] == '.') {
				return nil, bad(i, "a malformed number")
			}
			out = append(out, condTok{'n', m, i})
			i += len(m)
		case isIdentStart(c):
			j := i
			for j < len(s) && isIdentByte(s[j]) {
				j++
			}
			out = append(out, condTok{'i', s[i:j], i})
			i = j
		default:
			return nil, bad(i, fmt.Sprintf("%q", string(c)))
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrConditionSyntax)
	}
	return out, nil
}

func isIdentStart(c byte) bool { return c == '_' || unicode.IsLetter(rune(c)) && c < 0x80 }
func isIdentByte(c byte) bool  { return isIdentStart(c) || c == '$' || (c >= '0' && c <= '9') }

// keywords may not be used as bare column names (quote them).
var condKeywords = map[string]bool{"AND": true, "OR": true, "NOT": true, "IN": true, "BETWEEN": true, "IS": true,
	"NULL": true, "LIKE": true, "TRUE": true, "FALSE": true}

type condParser struct {
	toks []condTok
	i    int
}

func (p *condParser) errf(format string, a ...any) error {
	at := "at the end"
	if p.i < len(p.toks) {
		at = fmt.Sprintf("at offset %d", p.toks[p.i].pos)
	}
	return fmt.Errorf("%w: %s %s", ErrConditionSyntax, fmt.Sprintf(format, a...), at)
}

func (p *condParser) kw(k string) bool {
	if p.i < len(p.toks) && p.toks[p.i].kind == 'i' && strings.EqualFold(p.toks[p.i].text, k) {
		p.i++
		return true
	}
	return false
}

func (p *condParser) punct(s string) bool {
	if p.i < len(p.toks) && p.toks[p.i].kind == 'p' && p.toks[p.i].text == s {
		p.i++
		return true
	}
	return false
}

const maxCondDepth = 32

func (p *condParser) or(depth int) (*condNode, error) {
	if depth > maxCondDepth {
		return nil, p.errf("nested too deeply")
	}
	n, err := p.and(depth)
	if err != nil {
		return nil, err
	}
	kids := []*condNode{n}
	for p.kw("OR") {
		k, err := p.and(depth)
		if err != nil {
			return nil, err
		}
		kids = append(kids, k)
	}
	if len(kids) == 1 {
		return n, nil
	}
	return &condNode{op: "or", kids: kids}, nil
}

func (p *condParser) and(depth int) (*condNode, error) {
	n, err := p.not(depth)
	if err != nil {
		return nil, err
	}
	kids := []*condNode{n}
	for p.kw("AND") {
		k, err := p.not(depth)
		if err != nil {
			return nil, err
		}
		kids = append(kids, k)
	}
	if len(kids) == 1 {
		return n, nil
	}
	return &condNode{op: "and", kids: kids}, nil
}

func (p *condParser) not(depth int) (*condNode, error) {
	if p.kw("NOT") {
		if depth > maxCondDepth {
			return nil, p.errf("nested too deeply")
		}
		k, err := p.not(depth + 1)
		if err != nil {
			return nil, err
		}
		return &condNode{op: "not", kids: []*condNode{k}}, nil
	}
	return p.primary(depth)
}

func (p *condParser) primary(depth int) (*condNode, error) {
	if p.punct("(") {
		n, err := p.or(depth + 1)
		if err != nil {
			return nil, err
		}
		if !p.punct(")") {
			return nil, p.errf("expected \")\"")
		}
		return n, nil
	}
	if p.i >= len(p.toks) {
		return nil, p.errf("expected a column")
	}
	t := p.toks[p.i]
	switch {
	case t.kind == 'q':
	case t.kind == 'i' && !condKeywords[strings.ToUpper(t.text)]:
	default:
		return nil, p.errf("expected a column, got %q", t.text)
	}
	p.i++
	n := &condNode{col: t.text}
	if p.i < len(p.toks) && p.toks[p.i].kind == 'p' && p.toks[p.i].text != "(" && p.toks[p.i].text != ")" && p.toks[p.i].text != "," {
		n.op, n.cmp = "cmp", p.toks[p.i].text
		if n.cmp == "!=" {
			n.cmp = "<>"
		}
		p.i++
		l, err := p.literal()
		if err != nil {
			return nil, err
		}
		n.lits = []condLit{l}
		return n, nil
	}
	if p.kw("IS") {
		n.op = "null"
		n.neg = p.kw("NOT")
		if !p.kw("NULL") {
			return nil, p.errf("expected NULL after IS")
		}
		return n, nil
	}
	n.neg = p.kw("NOT")
	switch {
	case p.kw("IN"):
		n.op = "in"
		if !p.punct("(") {
			return nil, p.errf("expected \"(\" after IN")
		}
		for {
			l, err := p.literal()
			if err != nil {
				return nil, err
			}
			n.lits = append(n.lits, l)
			if p.punct(")") {
				return n, nil
			}
			if !p.punct(",") {
				return nil, p.errf("expected \",\" or \")\" in the IN list")
			}
		}
	case p.kw("BETWEEN"):
		n.op = "between"
		lo, err := p.literal()
		if err != nil {
			return nil, err
		}
		if !p.kw("AND") {
			return nil, p.errf("expected AND in BETWEEN")
		}
		hi, err := p.literal()
		if err != nil {
			return nil, err
		}
		n.lits = []condLit{lo, hi}
		return n, nil
	case p.kw("LIKE"):
		n.op = "like"
		l, err := p.literal()
		if err != nil {
			return nil, err
		}
		if l.kind != 's' {
			return nil, p.errf("LIKE takes a string")
		}
		n.lits = []condLit{l}
		return n, nil
	}
	return nil, p.errf("expected a comparison, IN, BETWEEN, LIKE or IS [NOT] NULL after column %q", t.text)
}

func (p *condParser) literal() (condLit, error) {
	if p.i >= len(p.toks) {
		return condLit{}, p.errf("expected a literal")
	}
	t := p.toks[p.i]
	switch {
	case t.kind == 'n':
		p.i++
		return condLit{'n', t.text}, nil
	case t.kind == 's':
		p.i++
		return condLit{'s', t.text}, nil
	case t.kind == 'i' && (strings.EqualFold(t.text, "TRUE") || strings.EqualFold(t.text, "FALSE")):
		p.i++
		return condLit{'b', strings.ToUpper(t.text)}, nil
	}
	return condLit{}, p.errf("expected a literal (a number, a 'string', TRUE or FALSE), got %q", t.text)
}
