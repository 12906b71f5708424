package composefile

import (
	"bytes"
	"fmt"
	"strings"
)

// envEntry is one assignment in an env file.
type envEntry struct {
	key        string
	value      string // decoded
	line       int    // 1-based line of the key
	start, end int    // byte range of the value's text in the file, inside quotes
	quote      byte   // 0, '\'' or '"'
	editable   bool   // the text is the value verbatim, on one line (no escapes, no interpolation)
}

// parseEnv parses an env file as compose reads it: KEY=VALUE lines, optionally prefixed by "export",
// blank lines and # comments; values unquoted (an inline comment needs a blank before #, trailing blanks
// are dropped), 'single-quoted' (literal) or "double-quoted" (backslash escapes); quoted values may
// span lines. CRLF line endings and a UTF-8 BOM are accepted.
func parseEnv(b []byte) ([]envEntry, error) {
	var out []envEntry
	i, line := 0, 1
	if bytes.HasPrefix(b, []byte("\xef\xbb\xbf")) {
		i = 3
	}
	isBlank := func(c byte) bool { return c == ' ' || c == '\t' }
	eol := func(j int) int { // index of the line break (\n or \r\n) at or after j
		for j < len(b) && b[j] != '\n' && !(b[j] == '\r' && j+1 < len(b) && b[j+1] == '\n') {
			j++
		}
		return j
	}
	nextLine := func(j int) int { // index after the line break at j
		if j < len(b) && b[j] == '\r' {
			j++
		}
		if j < len(b) && b[j] == '\n' {
			j++
		}
		return j
	}
	for i < len(b) {
		for i < len(b) && isBlank(b[i]) {
			i++
		}
		end := eol(i)
		if i == end || b[i] == '#' {
			i = nextLine(end)
			line++
			continue
		}
		if bytes.HasPrefix(b[i:end], []byte("export")) && i+6 < end && isBlank(b[i+6]) {
			i += 6
			for i < end && isBlank(b[i]) {
				i++
			}
		}
		k := i
		for i < end && (isNameChar(b[i]) || b[i] == '.' || b[i] == '-') {
			i++
		}
		key := string(b[k:i])
		for i < end && isBlank(b[i]) {
			i++
		}
		if key == "" || i >= end || b[i] != '=' {
			return nil, fmt.Errorf("line %d: want KEY=VALUE", line)
		}
		i++
		for i < end && isBlank(b[i]) {
			i++
		}
		e := envEntry{key: key, line: line}
		if i < end && (b[i] == '\'' || b[i] == '"') {
			q := b[i]
			e.quote, e.start = q, i+1
			j := i + 1
			var val strings.Builder
			for ; j < len(b) && b[j] != q; j++ {
				if b[j] == '\n' {
					line++
				}
				if q == '"' && b[j] == '\\' && j+1 < len(b) {
					j++
					switch b[j] {
					case 'n':
						val.WriteByte('\n')
					case 'r':
						val.WriteByte('\r')
					case 't':
						val.WriteByte('\t')
					default:
						val.WriteByte(b[j])
					}
					continue
				}
				val.WriteByte(b[j])
			}
			if j >= len(b) {
				return nil, fmt.Errorf("line %d: unterminated %c quote", e.line, q)
			}
			e.end, e.value = j, val.String()
			raw := string(b[e.start:e.end])
			e.editable = raw == e.value && !strings.ContainsAny(raw, "\r\n") && (q == '\'' || !strings.Contains(raw, "$"))
			i = j + 1
			end = eol(i)
			rest := strings.TrimLeft(string(b[i:end]), " \t")
			if rest != "" && !strings.HasPrefix(rest, "#") {
				return nil, fmt.Errorf("line %d: text after the closing quote", line)
			}
		} else {
			e.start = i
			j := i
			for j < end && !(b[j] == '#' && j > i && isBlank(b[j-1])) {
				j++
			}
			for j > i && isBlank(b[j-1]) {
				j--
			}
			e.end, e.value = j, string(b[i:j])
			e.editable = !strings.Contains(e.value, "$")
		}
		out = append(out, e)
		i = nextLine(end)
		line++
	}
	return out, nil
}

// lastEntry returns the index of key's last assignment (the one in effect), -1 if none.
func lastEntry(es []envEntry, key string) int {
	for i := len(es) - 1; i >= 0; i-- {
		if es[i].key == key {
			return i
		}
	}
	return -1
}
