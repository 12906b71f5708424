package sdk

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"text/template"
	"unicode/utf8"
)

// Funcs are the functions message templates get besides text/template's
// builtins. Each is pure: it sees only its arguments, reaches nothing
// outside the message, and its output is bounded by its input.
//
//	json V          V as JSON: a string becomes a quoted, escaped JSON string
//	                ("web \"1\"\n" → "\"web \\\"1\\\"\\n\""), with <, >, & and
//	                U+2028/2029 escaped too, so that a hand-written JSON body
//	                stays valid (and safe inside HTML) for any container name:
//	                {"text": {{json .Update.Container}}}
//	trunc N S       S cut to at most N characters (runes), ending in "…" when cut
//	upper S, lower S
//	join SEP LIST   the items of a list joined by SEP ({{join ", " .Update.Labels}} is
//	                refused: a map is not a list)
//	first N LIST    the first N items of a list: {{range first 10 .Updates}}…{{end}}
//	sub A B         A minus B, for "… and {{sub .Count 10}} more"
//
// text/template's own html, js and urlquery escape for HTML, JavaScript and
// URL queries; js is not JSON (it writes \' and \x3C), use json for JSON.
func Funcs() template.FuncMap {
	return template.FuncMap{
		"json":  jsonFunc,
		"trunc": trunc,
		"upper": strings.ToUpper,
		"lower": strings.ToLower,
		"join":  join,
		"first": first,
		"sub":   func(a, b int) int { return a - b },
	}
}

// jsonFunc encodes v as JSON, HTML-safe, without a trailing newline.
func jsonFunc(v any) (string, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(true)
	if err := enc.Encode(v); err != nil {
		return "", fmt.Errorf("json: %w", err)
	}
	return strings.TrimSuffix(b.String(), "\n"), nil
}

// trunc cuts s to at most n runes, the last one "…" when it was cut.
func trunc(n int, s string) string {
	if n <= 0 {
		return ""
	}
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	runes := []rune(s)
	return string(runes[:n-1]) + "…"
}

// join joins the items of list, each printed as fmt.Sprint does, with sep.
func join(sep string, list any) (string, error) {
	v := reflect.ValueOf(list)
	if !v.IsValid() {
		return "", nil
	}
	if v.Kind() != reflect.Slice && v.Kind() != reflect.Array {
		return "", fmt.Errorf("join: %s is not a list", v.Type())
	}
	parts := make([]string, v.Len())
	for i := range parts {
		parts[i] = fmt.Sprint(v.Index(i).Interface())
	}
	return strings.Join(parts, sep), nil
}

// first returns the first n items of list (all of them when it has fewer).
func first(n int, list any) (any, error) {
	v := reflect.ValueOf(list)
	if !v.IsValid() {
		return list, nil
	}
	if v.Kind() != reflect.Slice && v.Kind() != reflect.Array {
		return nil, fmt.Errorf("first: %s is not a list", v.Type())
	}
	n = max(0, min(n, v.Len()))
	return v.Slice(0, n).Interface(), nil
}
