package encode

import (
	"fmt"
	"hash/fnv"
	"strings"
	"unicode/utf8"
)

// maxTopicLen is Kafka's limit on topic names.
const maxTopicLen = 249

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' }
func isDigit(c byte) bool  { return c >= '0' && c <= '9' }

// nameHash is the suffix that keeps sanitized names distinct: '_' and 8 hex digits of the
// 32-bit FNV-1a hash of the original.
func nameHash(s string) string {
	h := fnv.New32a()
	h.Write([]byte(s))
	return fmt.Sprintf("_%08x", h.Sum32())
}

// ValidAvroName reports whether s is a valid Avro name: a letter or '_', then letters, digits
// and '_'.
func ValidAvroName(s string) bool {
	if s == "" || !isLetter(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !isLetter(s[i]) && !isDigit(s[i]) {
			return false
		}
	}
	return true
}

// AvroName returns s as a valid Avro name: s itself when valid, otherwise s with every
// invalid character replaced by '_', a '_' prefix when it starts with a digit, and the
// original's hash suffix appended.
func AvroName(s string) string {
	if ValidAvroName(s) {
		return s
	}
	return AvroNamePart(s) + nameHash(s)
}

// AvroNamePart returns s as a valid Avro name without AvroName's hash suffix: s itself when
// valid, otherwise s with every invalid character replaced by '_' and a '_' prefix when it
// starts with a digit ("_" for ""). Two names may give one result: use it only where that
// cannot matter (the namespace of a schema alone in its subject).
func AvroNamePart(s string) string {
	if ValidAvroName(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 10)
	if s != "" && isDigit(s[0]) {
		b.WriteByte('_')
	}
	for i := 0; i < len(s); {
		_, size := utf8.DecodeRuneInString(s[i:]) // one '_' per character, not per byte
		if size == 1 && (isLetter(s[i]) || isDigit(s[i])) {
			b.WriteByte(s[i])
		} else {
			b.WriteByte('_')
		}
		i += size
	}
	if s == "" {
		b.WriteByte('_')
	}
	return b.String()
}

// avroNamespace sanitizes a dotted name segment by segment.
func avroNamespace(s string) string {
	parts := strings.Split(s, ".")
	for i, p := range parts {
		parts[i] = AvroName(p)
	}
	return strings.Join(parts, ".")
}

func isTopicChar(c byte) bool { return isLetter(c) || isDigit(c) || c == '-' || c == '.' }

// topicPart sanitizes one part of a default topic name (a schema or table name). Dots are
// replaced too, so "a.b"."c" and "a"."b.c" do not share a topic.
func topicPart(s string) string {
	ok := s != ""
	for i := 0; i < len(s) && ok; i++ {
		ok = isTopicChar(s[i]) && s[i] != '.'
	}
	if ok {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		_, size := utf8.DecodeRuneInString(s[i:])
		if size == 1 && isTopicChar(s[i]) && s[i] != '.' {
			b.WriteByte(s[i])
		} else {
			b.WriteByte('_')
		}
		i += size
	}
	b.WriteString(nameHash(s))
	return b.String()
}

// checkTopic reports why s is not a usable Kafka topic name.
func checkTopic(s string) error {
	if s == "" || s == "." || s == ".." {
		return fmt.Errorf("topic name %q is not allowed by Kafka", s)
	}
	if len(s) > maxTopicLen {
		return fmt.Errorf("topic name %q is %d characters, Kafka allows %d", s, len(s), maxTopicLen)
	}
	for i := 0; i < len(s); i++ {
		if !isTopicChar(s[i]) {
			return fmt.Errorf("topic name %q contains %q; Kafka allows only [a-zA-Z0-9._-]", s, s[i])
		}
	}
	return nil
}
