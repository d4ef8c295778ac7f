package mysql

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// charset is how a character column's bytes become UTF-8.
type charset uint8

const (
	charsetUTF8    charset = iota // utf8mb3, utf8mb4, ascii: the bytes are UTF-8 already
	charsetLatin1                 // MySQL's latin1 (see latin1Table)
	charsetBinary                 // not text: the column is bytes
	charsetUCS2                   // UCS-2, big-endian
	charsetUTF16                  // UTF-16, big-endian
	charsetUTF16LE                // UTF-16, little-endian
	charsetUTF32                  // UTF-32, big-endian
	charsetUnknown
)

// charsetOf maps a collation id (MySQL's and MariaDB's, SHOW COLLATION) to how its bytes
// decode. MariaDB's NO PAD collations are their PAD SPACE twin's id plus 1024, for every
// character set; its UCA 14.0 collations (uca1400) are 2048 + 256 per character set (utf8mb3,
// utf8mb4, ucs2, utf16, utf32) + the tailoring.
func charsetOf(collation uint64) charset {
	switch {
	case collation >= 1024 && collation < 2048:
		return charsetOf(collation - 1024)
	case collation >= 2048 && collation < 2048+5*256:
		return [...]charset{charsetUTF8, charsetUTF8, charsetUCS2, charsetUTF16, charsetUTF32}[(collation-2048)/256]
	}
	switch collation {
	case collationBinary:
		return charsetBinary
	case 5, 8, 15, 31, 47, 48, 49, 94: // latin1_*
		return charsetLatin1
	case 11, 65: // ascii_general_ci, ascii_bin
		return charsetUTF8
	case 33, 83, 76: // utf8mb3_general_ci, utf8mb3_bin, utf8mb3_tolower_ci
		return charsetUTF8
	case 45, 46: // utf8mb4_general_ci, utf8mb4_bin
		return charsetUTF8
	case 35, 90, 159: // ucs2_general_ci, ucs2_bin, ucs2_general_mysql500_ci
		return charsetUCS2
	case 54, 55: // utf16_general_ci, utf16_bin
		return charsetUTF16
	case 56, 62: // utf16le_general_ci, utf16le_bin
		return charsetUTF16LE
	case 60, 61: // utf32_general_ci, utf32_bin
		return charsetUTF32
	}
	switch {
	case collation >= 192 && collation <= 215, collation == 223: // utf8mb3 unicode collations
		return charsetUTF8
	case collation >= 224 && collation <= 247: // utf8mb4 unicode collations
		return charsetUTF8
	case collation >= 255 && collation <= 323: // MySQL 8 utf8mb4_0900 collations
		return charsetUTF8
	case collation >= 576 && collation <= 609: // MariaDB utf8mb3/utf8mb4 UCA 14.0 compatibility ids
		return charsetUTF8
	case collation >= 128 && collation <= 151: // ucs2 unicode collations
		return charsetUCS2
	case collation >= 101 && collation <= 124: // utf16 unicode collations
		return charsetUTF16
	case collation >= 160 && collation <= 183: // utf32 unicode collations
		return charsetUTF32
	}
	return charsetUnknown
}

// latin1Table is MySQL's latin1: Windows-1252 where that defines a character, and the C1
// control at the five bytes it leaves undefined (0x81, 0x8D, 0x8F, 0x90, 0x9D), as the
// server's own conversion (strings/ctype-latin1.cc) maps them; a SELECT in utf8mb4 gives the
// same text.
var latin1Table = func() (t [256]rune) {
	for i := range t {
		t[i] = rune(i)
	}
	for i, r := range []rune{'€', 0x81, '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', 0x8D, 'Ž', 0x8F,
		0x90, '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', 0x9D, 'ž', 'Ÿ'} {
		t[0x80+i] = r
	}
	return t
}()

var errOddLength = errors.New("its byte length does not fit the character set")

// decodeCharset converts raw, in charset cs, to UTF-8.
func decodeCharset(cs charset, raw string) (string, error) {
	switch cs {
	case charsetUTF8:
		if !utf8.ValidString(raw) {
			return "", errors.New("the binlog holds invalid UTF-8 for a UTF-8 column")
		}
		return strings.Clone(raw), nil
	case charsetLatin1:
		ascii := true
		for i := 0; i < len(raw); i++ {
			if raw[i] >= 0x80 {
				ascii = false
				break
			}
		}
		if ascii {
			return strings.Clone(raw), nil
		}
		var b strings.Builder
		b.Grow(len(raw) + len(raw)/2)
		for i := 0; i < len(raw); i++ {
			b.WriteRune(latin1Table[raw[i]])
		}
		return b.String(), nil
	case charsetUCS2, charsetUTF16, charsetUTF16LE:
		if len(raw)%2 != 0 {
			return "", errOddLength
		}
		u := make([]uint16, len(raw)/2)
		for i := range u {
			if cs == charsetUTF16LE {
				u[i] = uint16(raw[2*i]) | uint16(raw[2*i+1])<<8
			} else {
				u[i] = uint16(raw[2*i])<<8 | uint16(raw[2*i+1])
			}
		}
		return string(utf16.Decode(u)), nil
	case charsetUTF32:
		if len(raw)%4 != 0 {
			return "", errOddLength
		}
		var b strings.Builder
		for i := 0; i < len(raw); i += 4 {
			r := rune(raw[i])<<24 | rune(raw[i+1])<<16 | rune(raw[i+2])<<8 | rune(raw[i+3])
			if !utf8.ValidRune(r) {
				return "", fmt.Errorf("U+%X is not a character", r)
			}
			b.WriteRune(r)
		}
		return b.String(), nil
	}
	return "", errors.New("the character set is not supported")
}
