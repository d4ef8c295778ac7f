package mysql

import "strings"

// sqlTokens splits the start of a statement into tokens: words, quoted identifiers (their
// text unquoted, with ok=false for an unterminated one) and single punctuation characters,
// skipping white space and comments (/* */, -- and #). It reads at most max tokens. It is
// enough to recognise the statements cdcd acts on (TRUNCATE, XA, DML keywords) whatever an
// application put around them; it is not a parser of SQL.
type sqlToken struct {
	text   string
	quoted bool // a quoted identifier
	lit    bool // a string literal
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
		case c == '\'':
			j := i + 1
			for j < len(q) && q[j] != '\'' {
				if q[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(q) {
				return out, false
			}
			out = append(out, sqlToken{text: q[i+1 : j], lit: true})
			i = j + 1
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

func (t sqlToken) is(word string) bool {
	return !t.quoted && !t.lit && strings.EqualFold(t.text, word)
}

// isName reports whether t can be an identifier.
func (t sqlToken) isName() bool { return t.quoted || !t.lit && isWordByte(t.text[0]) }

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
	if len(toks) == 0 || !toks[0].isName() {
		return "", "", false
	}
	tdb, name := db, toks[0].text
	toks = toks[1:]
	if len(toks) >= 2 && toks[0].text == "." && !toks[0].quoted {
		if !toks[1].isName() {
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

// dmlTables recognises a data-changing statement (as a session with binlog_format STATEMENT or
// MIXED logs it) and the tables it writes: INSERT/REPLACE [INTO] t, LOAD DATA ... INTO TABLE
// t, UPDATE t1 [, t2 | JOIN t2 ...] SET, DELETE [t1, ...] FROM t1 [JOIN ...]. Tables that
// are only read (INSERT ... SELECT's sources, a join's other tables in UPDATE and DELETE)
// may be listed too: the caller uses them to tell whether a statement may have changed a
// captured table. op is the change's kind; ok is false for other statements.
func dmlTables(q, db string) (op byte, tables []string, ok bool) {
	toks, _ := sqlTokens(q, 256)
	if len(toks) == 0 {
		return 0, nil, false
	}
	skip := func(i int, words ...string) int {
		for i < len(toks) {
			found := false
			for _, w := range words {
				if toks[i].is(w) {
					found = true
					break
				}
			}
			if !found {
				return i
			}
			i++
		}
		return i
	}
	// name reads [db.]table at i; it returns the index after it.
	name := func(i int) int {
		if i >= len(toks) || !toks[i].isName() {
			return i
		}
		tdb, t := db, toks[i].text
		j := i + 1
		if j+1 < len(toks) && toks[j].text == "." && !toks[j].quoted && toks[j+1].isName() {
			tdb, t = t, toks[j+1].text
			j += 2
		}
		if tdb != "" {
			tables = append(tables, tdb+"."+t)
		}
		return j
	}
	// refs reads a table reference list (t [AS] a, t2 JOIN t3 ON ...) up to one of the stop
	// words.
	refs := func(i int, stop ...string) {
		expect := true
		for ; i < len(toks); i++ {
			tk := toks[i]
			for _, w := range stop {
				if tk.is(w) {
					return
				}
			}
			switch {
			case tk.text == "," && !tk.quoted && !tk.lit, tk.is("JOIN"):
				expect = true
			case expect && tk.text != "(" && !tk.is("STRAIGHT_JOIN"):
				i = name(i) - 1
				expect = false
			}
		}
	}
	switch {
	case toks[0].is("INSERT"), toks[0].is("REPLACE"):
		name(skip(1, "LOW_PRIORITY", "DELAYED", "HIGH_PRIORITY", "IGNORE", "INTO"))
		return 'c', tables, true
	case toks[0].is("LOAD"):
		for i := 1; i+2 < len(toks); i++ {
			if toks[i].is("INTO") && toks[i+1].is("TABLE") {
				name(i + 2)
				break
			}
		}
		return 'c', tables, true
	case toks[0].is("UPDATE"):
		refs(skip(1, "LOW_PRIORITY", "IGNORE"), "SET")
		return 'u', tables, true
	case toks[0].is("DELETE"):
		i := skip(1, "LOW_PRIORITY", "QUICK", "IGNORE")
		if i < len(toks) && !toks[i].is("FROM") { // multi-table: DELETE t1, t2 FROM ...
			refs(i, "FROM")
		}
		for ; i < len(toks); i++ {
			if toks[i].is("FROM") {
				refs(i+1, "WHERE", "USING", "ORDER", "LIMIT", "RETURNING")
				break
			}
		}
		for ; i < len(toks); i++ {
			if toks[i].is("USING") {
				refs(i+1, "WHERE")
				break
			}
		}
		return 'd', tables, true
	}
	return 0, nil, false
}

// isRollbackToSavepoint reports whether q is ROLLBACK [WORK] TO [SAVEPOINT] name.
func isRollbackToSavepoint(q string) bool {
	toks, _ := sqlTokens(q, 3)
	i := 1
	if i < len(toks) && toks[i].is("WORK") {
		i++
	}
	return i < len(toks) && toks[i].is("TO")
}
