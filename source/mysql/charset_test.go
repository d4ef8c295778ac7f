package mysql

import "testing"

// TestCharsets: latin1 is MySQL's table (the five bytes Windows-1252 leaves undefined are C1
// controls, as SELECT gives them, not U+FFFD); NO PAD collations (1024-2047) decode as their
// character set; uca1400 ids map to theirs.
func TestCharsets(t *testing.T) {
	for _, c := range []struct {
		collation uint64
		raw, want string
	}{
		{8, "\x81\x8d\x8f\x90\x9d\x80\xe9", "\u0081\u008d\u008f\u0090\u009d€é"},
		{8, "plain", "plain"},
		{1032, "\xc3\xa9", "Ã©"}, // latin1_swedish_nopad_ci
		{1070, "é", "é"},         // utf8mb4_nopad_bin
		{35, "\x00\xe9\x00a", "éa"},
		{1059, "\x00\xe9", "é"},                          // ucs2_general_nopad_ci
		{54, "\xd8\x3d\xde\x00", "😀"},                    // utf16
		{56, "\x3d\xd8\x00\xde", "😀"},                    // utf16le
		{1084, "\x00\x01\xf6\x00\x00\x00\x00\x7a", "😀z"}, // utf32_general_nopad_ci
		{2304, "é", "é"},                                 // utf8mb4_uca1400_ai_ci
		{2051, "é", "é"},                                 // utf8mb3_uca1400_*
	} {
		got, err := decodeCharset(charsetOf(c.collation), c.raw)
		if err != nil || got != c.want {
			t.Errorf("collation %d, %q: got %q (%v), want %q", c.collation, c.raw, got, err, c.want)
		}
	}
	if _, err := decodeCharset(charsetOf(35), "\x00"); err == nil {
		t.Errorf("an odd-length ucs2 value was accepted")
	}
	if cs := charsetOf(28); cs != charsetUnknown { // gbk: refused with the fix, not taken for UTF-8
		t.Errorf("gbk decodes as %d", cs)
	}
}
