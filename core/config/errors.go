package config

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// VarError is one problem with one environment variable. Load joins every
// VarError it finds with errors.Join, so that a user fixes them all at once.
type VarError struct {
	// Var is the variable, "TIDEWATCH_WATCHER_LOCAL_PORT".
	Var string
	// Value is the value as set; it is empty for secrets and for unknown
	// variables, whose values are never shown.
	Value string
	// Problem says what is wrong: "not a port number".
	Problem string
	// Expected says what would be right: "an integer from 1 to 65535".
	Expected string
}

// Error reads `VAR="value": problem; expected …`. The value is shown by
// quote, so at most MaxQuoted bytes of it; the variable's name is cut the same way.
func (e *VarError) Error() string {
	var b strings.Builder
	b.WriteString(clip(e.Var))
	if e.Value != "" {
		b.WriteByte('=')
		b.WriteString(quote(e.Value))
	}
	b.WriteString(": ")
	b.WriteString(e.Problem)
	if e.Expected != "" {
		b.WriteString("; expected ")
		b.WriteString(e.Expected)
	}
	return b.String()
}

// errs collects VarErrors in the order they are found.
type errs []error

func (es *errs) add(name, value, problem, expected string) {
	*es = append(*es, &VarError{Var: name, Value: value, Problem: problem, Expected: expected})
}

// addSecret records a problem with a secret variable, never showing its value.
func (es *errs) addSecret(name, problem, expected string) {
	es.add(name, "", problem, expected)
}

// MaxQuoted is the most bytes of a value a configuration error shows: a
// 100 KB TIDEWATCH_LOG_LEVEL is named, not echoed.
const MaxQuoted = 200

// quote is how a configuration error shows a value or a name taken from one:
// in double quotes and Go-escaped, so control characters and invalid UTF-8
// are visible, and at most MaxQuoted bytes of it. A longer value is cut at a
// character boundary and followed by its length: "debugdebug…"… (102400 bytes).
func quote(s string) string {
	c, cut := cutAt(s, MaxQuoted)
	q := strconv.Quote(c)
	if cut {
		q += "… (" + strconv.Itoa(len(s)) + " bytes)"
	}
	return q
}

// clip cuts text that is not quoted (a variable's name, a parser's message
// that repeats the value) by quote's rule: at most MaxQuoted bytes, then "…"
// and the length. Control characters and invalid UTF-8 become '?'.
func clip(s string) string {
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
