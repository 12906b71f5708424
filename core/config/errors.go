package config

import (
	"strings"

	"github.com/tidewatch/tidewatch/core"
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
const MaxQuoted = core.MaxQuoted

// quote is how a configuration error shows a value or a name taken from
// one: core.Quote.
func quote(s string) string { return core.Quote(s) }

// clip is how a configuration error shows text that is not quoted (a
// variable's name, a parser's message that repeats the value): core.Clip.
func clip(s string) string { return core.Clip(s) }
