package config

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// maxEcho is how much of a value a message repeats: a 10 MB value pasted by mistake must
// not come back as 10 MB of output.
const maxEcho = 80

// clip returns s, or its first maxEcho bytes (cut at a rune boundary) followed by
// "... (N bytes)" when it is longer.
func clip(s string) string {
	if len(s) <= maxEcho {
		return s
	}
	return s[:runeCut(s, maxEcho)] + fmt.Sprintf("... (%d bytes)", len(s))
}

// quote is %q for a user's value in a message, clipped like clip.
func quote(s string) string {
	if len(s) <= maxEcho {
		return strconv.Quote(s)
	}
	return strconv.Quote(s[:runeCut(s, maxEcho)]) + fmt.Sprintf("... (%d bytes)", len(s))
}

func runeCut(s string, n int) int {
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return n
}

// maxMessage bounds a whole message: the last net for texts that embed what a library said
// about a value (pgconn echoes the connection string it could not parse).
const maxMessage = 400

func clipMessage(s string) string {
	if len(s) <= maxMessage {
		return s
	}
	return s[:runeCut(s, maxMessage)] + fmt.Sprintf("... (message cut at %d of %d bytes)", maxMessage, len(s))
}

// lineCol returns the 1-based line and column (in bytes) of offset off in data.
func lineCol(data []byte, off int) (line, col int) {
	before := data[:off]
	line = 1 + strings.Count(string(before), "\n")
	col = off - strings.LastIndexByte(string(before), '\n')
	return line, col
}
