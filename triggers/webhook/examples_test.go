package webhook

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/tidewatch/tidewatch/plugins/sdk"
)

// examples are the TEMPLATE examples of the README's webhook section, one
// per chat service, by service. The README must hold each verbatim (see
// TestREADMEHoldsTheExamples); text returns the text a person reads in the
// decoded body, to check that hostile names arrive intact.
var examples = []struct {
	service  string
	template string
	batch    bool
	text     func(t *testing.T, body map[string]any) string
}{
	{
		service:  "Slack",
		template: `{"text": {{json (printf "%s: %s → %s (%s) on %s" .Update.Container .Update.Current .Update.Candidate .Update.Kind .Update.Host)}}}`,
		text:     func(t *testing.T, b map[string]any) string { return str(t, b, "text") },
	},
	{
		service:  "Slack, batch",
		batch:    true,
		template: `{"text": {{json (printf "%d container update(s)" .Count)}}, "blocks": [{{range $i, $u := first 40 .Updates}}{{if $i}}, {{end}}{"type": "section", "text": {"type": "mrkdwn", "text": {{json (printf "*%s* %s → %s (%s)" $u.Container $u.Current $u.Candidate $u.Kind)}}}}{{end}}]}`,
		text: func(t *testing.T, b map[string]any) string {
			blocks, _ := b["blocks"].([]any)
			var parts []string
			for _, bl := range blocks {
				parts = append(parts, str(t, bl.(map[string]any)["text"].(map[string]any), "text"))
			}
			return strings.Join(parts, "\n")
		},
	},
	{
		service:  "Discord",
		template: `{"username": "tidewatch", "content": {{json (trunc 2000 (printf "%s: %s → %s (%s)" .Update.Container .Update.Current .Update.Candidate .Update.Kind))}}}`,
		text:     func(t *testing.T, b map[string]any) string { return str(t, b, "content") },
	},
	{
		service:  "Microsoft Teams (Workflows)",
		template: `{"type": "message", "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "content": {"type": "AdaptiveCard", "version": "1.4", "body": [{"type": "TextBlock", "wrap": true, "text": {{json (printf "%s: %s → %s (%s)" .Update.Container .Update.Current .Update.Candidate .Update.Kind)}}}]}}]}`,
		text: func(t *testing.T, b map[string]any) string {
			att := b["attachments"].([]any)[0].(map[string]any)["content"].(map[string]any)
			return str(t, att["body"].([]any)[0].(map[string]any), "text")
		},
	},
	{
		service:  "Google Chat",
		template: `{"text": {{json (printf "%s: %s → %s (%s)" .Update.Container .Update.Current .Update.Candidate .Update.Kind)}}}`,
		text:     func(t *testing.T, b map[string]any) string { return str(t, b, "text") },
	},
	{
		service:  "Mattermost, Rocket.Chat",
		template: `{"username": "tidewatch", "text": {{json (printf "%s: %s → %s (%s)" .Update.Container .Update.Current .Update.Candidate .Update.Kind)}}}`,
		text:     func(t *testing.T, b map[string]any) string { return str(t, b, "text") },
	},
}

func str(t *testing.T, m map[string]any, key string) string {
	t.Helper()
	s, ok := m[key].(string)
	if !ok {
		t.Fatalf("%q is not a string in %v", key, m)
	}
	return s
}

// TestExamplesSafeForAnyName sends each example through the webhook trigger
// with hostile container names (quotes, newlines, </script>, unicode, bad
// UTF-8) and checks that the endpoint gets valid JSON, sent as JSON, whose
// text holds the name exactly.
func TestExamplesSafeForAnyName(t *testing.T) {
	names := []string{`web"1`, `back\slash`, "new\nline\ttab", `</script><script>alert(1)</script>`,
		`{"injected": true}`, "ünïcödé 🐳 日本語", "\u2028sep\u2029", "bad utf8 \xff", "{{.Trigger}}"}
	for _, ex := range examples {
		t.Run(ex.service, func(t *testing.T) {
			rec := newRecorder(t, 200)
			tr := NewWithLogger(slog.New(slog.DiscardHandler))
			if err := tr.Configure(t.Context(), "ops", map[string]string{OptURL: rec.URL, OptTemplate: ex.template}); err != nil {
				t.Fatalf("Configure: %v", err)
			}
			var ups []sdk.Update
			for i, name := range names {
				u := sampleUpdate(fmt.Sprintf("k%d", i))
				u.Container = name
				if !ex.batch {
					if r := tr.Fire(t.Context(), []sdk.Update{u})[0]; r.Err != nil {
						t.Fatalf("Fire(%q): %v", name, r.Err)
					}
					continue
				}
				ups = append(ups, u)
			}
			if ex.batch {
				if r := tr.Fire(t.Context(), ups)[0]; r.Err != nil {
					t.Fatalf("Fire(batch): %v", r.Err)
				}
			}
			got := rec.got()
			want := len(names)
			if ex.batch {
				want = 1
			}
			if len(got) != want {
				t.Fatalf("%d requests, want %d", len(got), want)
			}
			for i, rq := range got {
				if ct := rq.Header.Get("Content-Type"); ct != "application/json" {
					t.Errorf("Content-Type = %q, want application/json", ct)
				}
				var body map[string]any
				if err := json.Unmarshal(rq.Body, &body); err != nil {
					t.Fatalf("body %s is not JSON: %v", rq.Body, err)
				}
				text := ex.text(t, body)
				check := names[i:min(i+1, len(names))]
				if ex.batch {
					check = names
				}
				for _, name := range check {
					if !strings.Contains(text, string([]rune(name))) {
						t.Errorf("text %q does not hold the name %q", text, name)
					}
				}
				if strings.Contains(string(rq.Body), "</script>") {
					t.Errorf("body holds a raw </script>: %s", rq.Body)
				}
			}
		})
	}
}

// TestREADMEHoldsTheExamples keeps the README's examples the tested ones.
func TestREADMEHoldsTheExamples(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, ex := range examples {
		if !strings.Contains(string(readme), "`"+ex.service+"`") || !strings.Contains(string(readme), ex.template) {
			t.Errorf("README.md lacks the %s example (a row naming `%s` and the template verbatim):\n%s", ex.service, ex.service, ex.template)
		}
	}
}
