package sdk

import (
	"encoding/json"
	"strings"
	"testing"
)

// hostileNames are container names (display names come from a label, so
// anything goes) that break a hand-written JSON body without escaping.
var hostileNames = []string{
	`web"1`,
	`back\slash`,
	"new\nline\r\ttab",
	`</script><script>alert(1)</script>`,
	`{"injected": true}`,
	"ünïcödé 🐳 日本語",
	"\u2028line\u2029separators",
	"nul\x00byte",
	"bad utf8 \xff\xfe",
	`' OR 1=1 --`,
	"{{.Trigger}}",
}

func TestJSONFuncKeepsBodiesValid(t *testing.T) {
	tpl, err := ParseTemplate("BODY", `{"text": {{json (printf "%s: %s → %s" .Update.Container .Update.Current .Update.Candidate)}}, "labels": {{json .Update.Labels}}}`)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range hostileNames {
		m := SampleMessage()
		m.Update.Container = name
		m.Update.Labels = map[string]string{name: name}
		got, err := tpl.Render(m)
		if err != nil {
			t.Fatalf("Render(%q): %v", name, err)
		}
		var body struct {
			Text   string            `json:"text"`
			Labels map[string]string `json:"labels"`
		}
		if err := json.Unmarshal([]byte(got), &body); err != nil {
			t.Errorf("Render(%q) = %s: not JSON: %v", name, got, err)
			continue
		}
		want := string([]rune(name)) // invalid bytes become U+FFFD, as encoding/json writes them
		if body.Text != want+": 1.0.0 → 1.1.0" || body.Labels[want] != want {
			t.Errorf("Render(%q) decodes to %q %q; want the name back", name, body.Text, body.Labels)
		}
		for _, raw := range []string{"<", ">", "\n", "\u2028"} {
			if strings.Contains(got, raw) {
				t.Errorf("Render(%q) = %s: holds a raw %q", name, got, raw)
			}
		}
	}
}

func TestFuncs(t *testing.T) {
	m := NewMessage("ops", []Update{{Container: "a"}, {Container: "b"}, {Container: "c"}})
	tests := []struct{ text, want string }{
		{`{{trunc 5 "abcdefgh"}}`, "abcd…"},
		{`{{trunc 8 "abcdefgh"}}`, "abcdefgh"},
		{`{{trunc 3 "日本語です"}}`, "日本…"},
		{`{{trunc 0 "abc"}}`, ""},
		{`{{trunc -1 "abc"}}`, ""},
		{`{{upper "Web ü"}} {{lower "Web Ü"}}`, "WEB Ü web ü"},
		{`{{range first 2 .Updates}}{{.Container}}{{end}}`, "ab"},
		{`{{range first 10 .Updates}}{{.Container}}{{end}}`, "abc"},
		{`{{range first -1 .Updates}}{{.Container}}{{end}}`, ""},
		{`{{sub .Count 2}}`, "1"},
		{`{{json .Count}} {{json .Trigger}}`, `3 "ops"`},
		{`{{json (join "," (first 0 .Updates))}}`, `""`},
	}
	for _, tc := range tests {
		tpl, err := ParseTemplate("T", tc.text)
		if err != nil {
			t.Errorf("ParseTemplate(%s): %v", tc.text, err)
			continue
		}
		if got, err := tpl.Render(m); err != nil || got != tc.want {
			t.Errorf("Render(%s) = %q, %v; want %q", tc.text, got, err, tc.want)
		}
	}
	// Lists only: a map or a string is refused when the template is tried, at start-up.
	for _, text := range []string{`{{join "," .Update.Labels}}`, `{{first 1 .Trigger}}`, `{{trunc "x" "y"}}`, `{{sub 1}}`} {
		if _, err := ParseTemplate("T", text); err == nil {
			t.Errorf("ParseTemplate(%s) = nil error, want one", text)
		}
	}
}

func TestJoin(t *testing.T) {
	if got, err := join(", ", []string{"a", "b"}); err != nil || got != "a, b" {
		t.Errorf(`join(", ", [a b]) = %q, %v`, got, err)
	}
	if got, err := join("+", []int{1, 2}); err != nil || got != "1+2" {
		t.Errorf(`join("+", [1 2]) = %q, %v`, got, err)
	}
	if got, err := join("+", nil); err != nil || got != "" {
		t.Errorf(`join("+", nil) = %q, %v`, got, err)
	}
}
