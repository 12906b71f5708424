package core

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxQuoted is the most bytes of a value that an error message shows: a
// 100 KB environment variable or label is named, not echoed.
const MaxQuoted = 200

// Quote is how an error message shows a value or a name taken from one: in
// double quotes and Go-escaped, so control characters and invalid UTF-8 are
// visible, and at most MaxQuoted bytes of it. A longer value is cut at a
// character boundary and followed by its length: "debugdebug…"… (102400 bytes).
func Quote(s string) string {
	c, cut := cutAt(s, MaxQuoted)
	q := strconv.Quote(c)
	if cut {
		q += "… (" + strconv.Itoa(len(s)) + " bytes)"
	}
	return q
}

// Clip is Quote's rule for text that is not quoted (a variable's name, a
// parser's message that repeats the value): at most MaxQuoted bytes, then
// "…" and the length; control characters and invalid UTF-8 become '?'.
func Clip(s string) string {
	c, cut := cutAt(s, MaxQuoted)
	c = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == utf8.RuneError || unicode.Is(unicode.Cc, r) {
			return '?'
		}
		return r
	}, c)
	if !cut {
		return c
	}
	return c + "… (" + strconv.Itoa(len(s)) + " bytes)"
}

// cutAt returns s cut to at most n bytes at a character boundary, and
// whether it was cut.
func cutAt(s string, n int) (string, bool) {
	if len(s) <= n {
		return s, false
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n], true
}
