package mysql

import "strings"

// sqlTokens splits the start of a statement into tokens: words, quoted identifiers (their
// text unquoted, with ok=false for an unterminated one) and single punctuation characters,
// skipping white space and comments (/* */, -- and #). It reads at most max tokens. It is
// enough to recognise the statements cdcd acts on (TRUNCATE, XA, DML keywords) whatever an
// application put around them; it is not a parser of SQL.
type sqlToken struct {
	text   string
	quoted bool
}

func sqlTokens(q string, max int) ([]sqlToken, bool) {
	var out []sqlToken
	i := 0
	for i < len(q) && len(out) < max {
		c := q[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			i++
		case c == '/' && i+1 < len(q) && q[i+1] == '*':
			end := strings.Index(q[i+2:], "*/")
			if end < 0 {
				return out, false
			}
			i += end + 4
		case c == '#' || c == '-' && i+2 < len(q) && q[i+1] == '-' && (q[i+2] == ' ' || q[i+2] == '\t' || q[i+2] == '\n'):
			end := strings.IndexByte(q[i:], '\n')
			if end < 0 {
				i = len(q)
			} else {
				i += end + 1
			}
		case c == '`' || c == '"':
			var b strings.Builder
			j := i + 1
			closed := false
			for j < len(q) {
				if q[j] == c {
					if j+1 < len(q) && q[j+1] == c { // doubled quote
						b.WriteByte(c)
						j += 2
						continue
					}
					closed = true
					j++
					break
				}
				b.WriteByte(q[j])
				j++
			}
			if !closed {
				return out, false
			}
			out = append(out, sqlToken{text: b.String(), quoted: true})
			i = j
		case isWordByte(c):
			j := i
			for j < len(q) && isWordByte(q[j]) {
				j++
			}
			out = append(out, sqlToken{text: q[i:j]})
			i = j
		default:
			out = append(out, sqlToken{text: q[i : i+1]})
			i++
		}
	}
	return out, true
}

func isWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '$' || c >= 0x80
}

func (t sqlToken) is(word string) bool { return !t.quoted && strings.EqualFold(t.text, word) }

// parseTruncate recognises "TRUNCATE [TABLE] [db.]table [WAIT n | NOWAIT] [;]" with any
// comments around its parts; an unqualified table is in db (the statement's default
// database).
func parseTruncate(q, db string) (string, string, bool) {
	toks, ok := sqlTokens(q, 12)
	if !ok || len(toks) < 2 || !toks[0].is("TRUNCATE") {
		return "", "", false
	}
	toks = toks[1:]
	if toks[0].is("TABLE") {
		toks = toks[1:]
	}
	if len(toks) == 0 || !toks[0].quoted && !isWordByte(toks[0].text[0]) {
		return "", "", false
	}
	tdb, name := db, toks[0].text
	toks = toks[1:]
	if len(toks) >= 2 && toks[0].text == "." && !toks[0].quoted {
		if !toks[1].quoted && !isWordByte(toks[1].text[0]) {
			return "", "", false
		}
		tdb, name = name, toks[1].text
		toks = toks[2:]
	}
	switch {
	case len(toks) == 0, toks[0].text == ";" && !toks[0].quoted, toks[0].is("NOWAIT"), toks[0].is("WAIT"):
	default:
		return "", "", false
	}
	return tdb, name, tdb != ""
}
