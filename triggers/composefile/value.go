package composefile

import (
	"bytes"
	"fmt"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// valueRef is where the image value is, in the parsed document and in the file's bytes.
type valueRef struct {
	doc       *yaml.Node // the File's document
	node      *yaml.Node // the scalar holding the image (an anchor's, when the image is an alias)
	raw       *yaml.Node // the value as written under image: (an alias node for *anchor)
	start     int        // byte offset in src of the value's first character (inside quotes)
	exprs     []expr     // the ${VAR} expressions in the value
	repoEnd   int        // offset in the value where ":tag" or "@digest" (or nothing) begins
	tagExpr   int        // index in exprs of the variable that is the whole tag, or -1
	tagStart  int        // offset in the value of the tag's first character (== nameEnd when untagged)
	nameEnd   int        // offset in the value of "@digest", or its length
	hasColon  bool       // the value has a literal ":" before the tag
	hasDigest bool
}

// expr is a compose interpolation in the image value: $NAME, ${NAME}, ${NAME<op>arg}.
type expr struct {
	start, end int    // byte range in the value, "${...}" or "$NAME" included
	name       string // the variable
	op         string // "", ":-", "-", ":?", "?", ":+" or "+"
	argStart   int    // byte range of the text after op, inside the braces
	argEnd     int
}

// locateValue finds the byte offset of t.val.node's text in t.src and checks that the bytes there
// are exactly the value (no escapes, not folded over several lines), so that splicing is exact.
func (t *Target) locateValue() error {
	n := t.val.node
	if n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
		return fmt.Errorf("service %q: image is a block scalar (| or >): %w", t.Service, ErrUnsupported)
	}
	off, ok := offsetOf(t.src, n.Line, n.Column)
	if !ok {
		return fmt.Errorf("service %q: image position %d:%d is outside %s: %w", t.Service, n.Line, n.Column, t.File, ErrUnsupported)
	}
	off = skipProperties(t.src, off)
	var q byte
	switch {
	case n.Style&yaml.DoubleQuotedStyle != 0:
		q = '"'
	case n.Style&yaml.SingleQuotedStyle != 0:
		q = '\''
	}
	if q != 0 {
		if off >= len(t.src) || t.src[off] != q {
			return fmt.Errorf("service %q: image value not found at %d:%d: %w", t.Service, n.Line, n.Column, ErrUnsupported)
		}
		off++
	}
	end := off + len(n.Value)
	if !bytes.HasPrefix(t.src[off:], []byte(n.Value)) || strings.ContainsAny(n.Value, "\r\n") {
		return fmt.Errorf("service %q: image value at line %d is written with escapes or over several lines: %w", t.Service, n.Line, ErrUnsupported)
	}
	if q != 0 && (end >= len(t.src) || t.src[end] != q || (q == '\'' && end+1 < len(t.src) && t.src[end+1] == '\'')) {
		return fmt.Errorf("service %q: image value at line %d is written with escapes: %w", t.Service, n.Line, ErrUnsupported)
	}
	t.val.start = off
	return nil
}

// offsetOf converts a yaml.v3 position (1-based line, 1-based column counted in characters, a UTF-8
// BOM not counted) to a byte offset. Line breaks are those of YAML 1.1, as yaml.v3 counts them.
func offsetOf(src []byte, line, col int) (int, bool) {
	i := 0
	if bytes.HasPrefix(src, []byte("\xef\xbb\xbf")) {
		i = 3
	}
	for l := 1; l < line; l++ {
		for {
			if i >= len(src) {
				return 0, false
			}
			if w := breakWidth(src[i:]); w > 0 {
				i += w
				break
			}
			i++
		}
	}
	for c := 1; c < col; c++ {
		if i >= len(src) || breakWidth(src[i:]) > 0 {
			return 0, false
		}
		_, w := utf8.DecodeRune(src[i:])
		i += w
	}
	return i, true
}

// breakWidth returns the length of the line break at the start of b, 0 if none.
func breakWidth(b []byte) int {
	switch {
	case len(b) == 0:
		return 0
	case b[0] == '\r' && len(b) > 1 && b[1] == '\n':
		return 2
	case b[0] == '\r' || b[0] == '\n':
		return 1
	case bytes.HasPrefix(b, []byte("\xc2\x85")):
		return 2
	case bytes.HasPrefix(b, []byte("\xe2\x80\xa8")), bytes.HasPrefix(b, []byte("\xe2\x80\xa9")):
		return 3
	}
	return 0
}

// skipProperties skips a node's anchor (&a) and tag (!t), and the blanks, line breaks and comments
// after them, to reach the scalar's text.
func skipProperties(src []byte, off int) int {
	for off < len(src) && (src[off] == '&' || src[off] == '!') {
		for off < len(src) && src[off] != ' ' && src[off] != '\t' && breakWidth(src[off:]) == 0 {
			off++
		}
		for off < len(src) {
			if src[off] == ' ' || src[off] == '\t' {
				off++
			} else if w := breakWidth(src[off:]); w > 0 {
				off += w
			} else if src[off] == '#' {
				for off < len(src) && breakWidth(src[off:]) == 0 {
					off++
				}
			} else {
				break
			}
		}
	}
	return off
}

func isNameStart(c byte) bool { return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isNameChar(c byte) bool  { return isNameStart(c) || c >= '0' && c <= '9' }

// scanExprs finds compose's interpolations in s ("$$" is a literal "$").
func scanExprs(s string) ([]expr, error) {
	var out []expr
	for i := 0; i < len(s); i++ {
		if s[i] != '$' {
			continue
		}
		if i+1 < len(s) && s[i+1] == '$' {
			i++
			continue
		}
		if i+1 < len(s) && isNameStart(s[i+1]) {
			j := i + 1
			for j < len(s) && isNameChar(s[j]) {
				j++
			}
			out = append(out, expr{start: i, end: j, name: s[i+1 : j], argStart: j, argEnd: j})
			i = j - 1
			continue
		}
		if i+1 >= len(s) || s[i+1] != '{' {
			return nil, fmt.Errorf("invalid interpolation at %q", s[i:])
		}
		j := i + 2
		for j < len(s) && isNameChar(s[j]) {
			j++
		}
		if j == i+2 || !isNameStart(s[i+2]) {
			return nil, fmt.Errorf("invalid interpolation at %q", s[i:])
		}
		e := expr{start: i, name: s[i+2 : j]}
		for _, op := range []string{":-", ":?", ":+", "-", "?", "+"} {
			if strings.HasPrefix(s[j:], op) {
				e.op = op
				j += len(op)
				break
			}
		}
		e.argStart = j
		depth := 1
		for ; j < len(s); j++ {
			if s[j] == '{' {
				depth++
			} else if s[j] == '}' {
				if depth--; depth == 0 {
					break
				}
			}
		}
		if j >= len(s) || (e.op == "" && j != e.argStart) {
			return nil, fmt.Errorf("invalid interpolation at %q", s[i:])
		}
		e.argEnd, e.end = j, j+1
		out = append(out, e)
		i = j
	}
	return out, nil
}

// inExpr reports whether byte i of the value is inside an interpolation.
func inExpr(exprs []expr, i int) bool {
	for _, e := range exprs {
		if i >= e.start && i < e.end {
			return true
		}
	}
	return false
}

// splitRef splits a reference into repository, tag and digest, looking only at the bytes for which
// skip is false: the digest after the last "@", the tag after the last ":" that follows the last "/".
// It returns the offsets of the separators too (-1 when absent).
func splitRef(s string, skip func(int) bool) (colon, at int) {
	colon, at = -1, -1
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '@' && !skip(i) {
			at = i
			break
		}
	}
	nameEnd := len(s)
	if at >= 0 {
		nameEnd = at
	}
	for i := nameEnd - 1; i >= 0; i-- {
		if skip(i) {
			continue
		}
		if s[i] == '/' {
			break
		}
		if s[i] == ':' {
			colon = i
			break
		}
	}
	return colon, at
}

// parseImage splits the image value into repository, tag and digest, finds the variable the tag comes
// from, and resolves the value with the env file.
func (t *Target) parseImage() error {
	v := t.Image
	if strings.TrimSpace(v) == "" {
		return fmt.Errorf("service %q: image is empty: %w", t.Service, ErrNoImage)
	}
	exprs, err := scanExprs(v)
	if err != nil {
		return fmt.Errorf("service %q: image %q: %v: %w", t.Service, v, err, ErrUnsupported)
	}
	t.val.exprs, t.val.tagExpr = exprs, -1
	var entries []envEntry
	if len(exprs) > 0 && t.env != nil {
		if entries, err = parseEnv(t.env); err != nil {
			return fmt.Errorf("parsing env file %s: %w", t.envPath, err)
		}
	}
	colon, at := splitRef(v, func(i int) bool { return inExpr(exprs, i) })
	val := &t.val
	val.nameEnd, val.hasDigest = len(v), at >= 0
	if at >= 0 {
		val.nameEnd = at
		if inExpr(exprs, len(v)-1) || strings.Contains(v[at:], "$") {
			return fmt.Errorf("service %q: image %q: the digest comes from a variable: %w", t.Service, v, ErrUnsupported)
		}
	}
	val.repoEnd, val.tagStart = val.nameEnd, val.nameEnd
	if colon >= 0 {
		val.repoEnd, val.tagStart, val.hasColon = colon, colon+1, true
	}
	for i, e := range exprs {
		if e.end <= val.tagStart || e.start >= val.nameEnd {
			continue
		}
		if e.start != val.tagStart || e.end != val.nameEnd {
			return fmt.Errorf("service %q: image %q: the tag mixes text and variables: %w", t.Service, v, ErrUnsupported)
		}
		val.tagExpr = i
	}

	// The value as compose reads it: interpolated by compose's own template
	// code, from the process's environment and the env file (compose-go's parser).
	env, err := environment(t.env)
	if err != nil {
		return fmt.Errorf("env file %s: %w", t.envPath, err)
	}
	resolved, err := substitute(v, env)
	if err != nil {
		return fmt.Errorf("service %q: image %q: %v: %w", t.Service, v, err, ErrUnsupported)
	}
	rc, ra := splitRef(resolved, func(int) bool { return false })
	rEnd := len(resolved)
	if ra >= 0 {
		t.Digest, rEnd = resolved[ra+1:], ra
	}
	t.Repository = resolved[:rEnd]
	if rc >= 0 {
		t.Repository, t.Tag = resolved[:rc], resolved[rc+1:rEnd]
	}
	if !val.hasColon && rc >= 0 {
		return fmt.Errorf("service %q: image %q: a variable covers the tag together with the repository (set the tag apart, e.g. repo:${TAG}): %w", t.Service, v, ErrUnsupported)
	}
	if (ra >= 0) != val.hasDigest {
		return fmt.Errorf("service %q: image %q: a variable holds the digest: %w", t.Service, v, ErrUnsupported)
	}
	if t.Repository == "" {
		return fmt.Errorf("service %q: image %q has no repository: %w", t.Service, v, ErrUnsupported)
	}

	if val.tagExpr < 0 {
		return nil
	}
	e := exprs[val.tagExpr]
	if e.op == ":+" || e.op == "+" {
		return fmt.Errorf("service %q: image %q: the tag is an alternate-value interpolation (%s): %w", t.Service, v, e.op, ErrUnsupported)
	}
	ev := &EnvVar{Name: e.name}
	if e.op == ":-" || e.op == "-" {
		ev.HasDefault, ev.Default = true, v[e.argStart:e.argEnd]
	}
	if i := lastEntry(entries, e.name); i >= 0 {
		en := entries[i]
		if en.value != "" || (e.op != ":-" && e.op != ":?") {
			ev.EnvFile, ev.Line = t.envPath, en.line
		}
	}
	ev.Value = t.Tag
	t.Var = ev
	return nil
}
