package mysql

import (
	"encoding/hex"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/cdcd-dev/cdcd/change"
	gomysql "github.com/go-mysql-org/go-mysql/mysql"
)

// MariaDB's data type plugins UUID, INET4 and INET6 store fixed-length bytes, and the binlog's
// TABLE_MAP spells their columns as BINARY(16), BINARY(4) and BINARY(16): nothing in it tells
// them from binary columns. The catalog does (information_schema.COLUMNS.DATA_TYPE), so a
// MariaDB table version with BINARY(4)/BINARY(16) columns asks it which of them are one of
// these types (ColumnSpec.Ext). Each type has one mapping, shared by the stream and the
// snapshot: its bytes are spelled as the server spells the value in SELECT (extText); a
// snapshot parses the server's text back to bytes (extBytes) and spells those, so both paths
// give the same string for the same value.
//
// The catalog describes the table as it is now, the binlog as it was when written: a column
// changed between BINARY(n) and one of these types while cdcd lags behind is decoded with the
// catalog's type until the stream reaches the change.

// Ext types (ColumnSpec.Ext), as information_schema.COLUMNS.DATA_TYPE spells them.
const (
	extUUID  = "uuid"
	extINET4 = "inet4"
	extINET6 = "inet6"
)

// extLen is the byte length of an Ext type's values (0: not one).
func extLen(ext string) int {
	switch ext {
	case extUUID, extINET6:
		return 16
	case extINET4:
		return 4
	}
	return 0
}

// extCandidate reports whether a TABLE_MAP column may be an Ext type: BINARY(4) or BINARY(16).
func extCandidate(s *ColumnSpec) bool {
	return s.Type == gomysql.MYSQL_TYPE_STRING && s.Collation == collationBinary && (s.Meta == 4 || s.Meta == 16)
}

// applyCatalog completes v from the catalog's columns (by name): on MariaDB, marks the
// BINARY(4)/BINARY(16) columns the catalog names UUID, INET4 or INET6 as such; and sets each
// column's default. A column the catalog does not have (dropped since) keeps the binlog's view.
func (v *tableVersion) applyCatalog(cat map[string]catalogColumn, mariadb bool) error {
	for i := range v.specs {
		s := &v.specs[i]
		cc, ok := cat[s.Name]
		if !ok {
			continue
		}
		if mariadb && extCandidate(s) && extLen(cc.dataType) == int(s.Meta) {
			s.Ext = cc.dataType
			c, err := s.Column()
			if err != nil {
				return err
			}
			c.Key = v.table.Columns[i].Key
			v.table.Columns[i] = c
		}
		c := &v.table.Columns[i]
		c.Default = columnDefault(s, c, mariadb, cc.def, cc.defNull, cc.extra)
	}
	return nil
}

// extValue is the value of an Ext column holding b (the binlog strips BINARY's trailing zero
// bytes: they are padded back).
func extValue(s *ColumnSpec, b []byte) (change.Value, error) {
	n := extLen(s.Ext)
	if len(b) > n {
		return change.Value{State: change.Undecodable, Str: hex.EncodeToString(b)}, fmt.Errorf("column %s: %s value of %d bytes, want %d", s.Name, s.Ext, len(b), n)
	}
	full := make([]byte, n)
	copy(full, b)
	return change.Value{Str: extText(s.Ext, full)}, nil
}

// extTextValue is the value of an Ext column SELECT returned as text: parsed to its bytes and
// spelled by extText, as the stream does.
func extTextValue(s *ColumnSpec, text string) (change.Value, error) {
	b, err := extBytes(s.Ext, text)
	if err != nil {
		return change.Value{State: change.Undecodable, Str: text}, fmt.Errorf("column %s: %q is not a %s value: %w", s.Name, text, s.Ext, err)
	}
	return extValue(s, b)
}

// extText spells the bytes of a UUID, INET4 or INET6 value as MariaDB does: a UUID in
// lowercase 8-4-4-4-12 hex, an INET4 dotted, an INET6 in lowercase groups with the longest run
// of zero groups (the first of equal ones, even a single group) as "::", and the IPv4-
// compatible (::a.b.c.d) and IPv4-mapped (::ffff:a.b.c.d) forms with the address dotted.
func extText(ext string, b []byte) string {
	switch ext {
	case extUUID:
		h := hex.EncodeToString(b)
		return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
	case extINET4:
		return dotted(b)
	}
	var w [8]uint16
	for i := range w {
		w[i] = uint16(b[2*i])<<8 | uint16(b[2*i+1])
	}
	gapPos, gapLen := -1, 0
	for i := 0; i < 8; {
		if w[i] != 0 {
			i++
			continue
		}
		j := i
		for j < 8 && w[j] == 0 {
			j++
		}
		if j-i > gapLen {
			gapPos, gapLen = i, j-i
		}
		i = j
	}
	switch {
	case gapPos == 0 && gapLen == 6:
		return "::" + dotted(b[12:])
	case gapPos == 0 && gapLen == 5 && w[5] == 0xffff:
		return "::ffff:" + dotted(b[12:])
	}
	groups := func(ws []uint16) string {
		parts := make([]string, len(ws))
		for i, x := range ws {
			parts[i] = strconv.FormatUint(uint64(x), 16)
		}
		return strings.Join(parts, ":")
	}
	if gapPos < 0 {
		return groups(w[:])
	}
	return groups(w[:gapPos]) + "::" + groups(w[gapPos+gapLen:])
}

func dotted(b []byte) string {
	return strconv.Itoa(int(b[0])) + "." + strconv.Itoa(int(b[1])) + "." + strconv.Itoa(int(b[2])) + "." + strconv.Itoa(int(b[3]))
}

// extBytes parses the text of a UUID, INET4 or INET6 value to its bytes.
func extBytes(ext, text string) ([]byte, error) {
	switch ext {
	case extUUID:
		h := strings.ReplaceAll(text, "-", "")
		if len(h) != 32 {
			return nil, fmt.Errorf("not 32 hex digits")
		}
		return hex.DecodeString(h)
	case extINET4:
		a, err := netip.ParseAddr(text)
		if err != nil || !a.Is4() {
			return nil, fmt.Errorf("not an IPv4 address")
		}
		b := a.As4()
		return b[:], nil
	case extINET6:
		a, err := netip.ParseAddr(text)
		if err != nil || a.Zone() != "" {
			return nil, fmt.Errorf("not an IPv6 address")
		}
		b := a.As16()
		return b[:], nil
	}
	return nil, fmt.Errorf("unknown type %s", ext)
}
