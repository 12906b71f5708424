package sdk

import (
	"bytes"
	"fmt"
	"strings"
	"text/template"
	"time"
)

// Message is the data model of message templates: what a template sees as
// its dot. It is fixed and documented; templates get text/template's own
// builtins (if, range, with, len, index, print, printf, eq, …) and the pure
// functions of Funcs (json, trunc, upper, lower, join, first, sub), nothing
// that reaches outside this data.
type Message struct {
	// Trigger is the trigger instance's name.
	Trigger string
	// Update is the first (in "once" mode, the only) update.
	Update Update
	// Updates are all the updates of the message (several in "batch" mode).
	Updates []Update
	// Count is len(Updates).
	Count int
}

// NewMessage returns the message for updates sent together by trigger.
func NewMessage(trigger string, updates []Update) Message {
	m := Message{Trigger: trigger, Updates: updates, Count: len(updates)}
	if len(updates) > 0 {
		m.Update = updates[0]
	}
	return m
}

// Template is a parsed message template.
type Template struct {
	t *template.Template
}

// ParseTemplate parses text as a message template. A syntax error, or a
// field that Message does not have, is an error here, at start-up, not when
// the first update arrives: the template is tried once on sample data.
func ParseTemplate(name, text string) (*Template, error) {
	t, err := template.New(name).Option("missingkey=error").Funcs(Funcs()).Parse(text)
	if err != nil {
		return nil, fmt.Errorf("parsing template: %w", err)
	}
	tt := &Template{t: t}
	if _, err := tt.Render(SampleMessage()); err != nil {
		return nil, err
	}
	return tt, nil
}

// MustParseTemplate is ParseTemplate for a trigger's own default templates; it panics on error.
func MustParseTemplate(name, text string) *Template {
	t, err := ParseTemplate(name, text)
	if err != nil {
		panic(err)
	}
	return t
}

// Render executes the template on m.
func (t *Template) Render(m Message) (string, error) {
	var b bytes.Buffer
	if err := t.t.Execute(&b, m); err != nil {
		return "", fmt.Errorf("rendering template: %w", err)
	}
	return b.String(), nil
}

// SampleMessage is the message templates are tried on when parsed, and a
// plugin's test can render with.
func SampleMessage() Message {
	u := Update{
		Key: "sample-key", Event: EventUpdateAvailable, Host: "local", Container: "web", ContainerID: "0123456789ab",
		Image: "registry.example/web", Current: "1.0.0", CurrentDigest: "sha256:" + strings.Repeat("a", 64),
		Candidate: "1.1.0", CandidateDigest: "sha256:" + strings.Repeat("b", 64), Kind: "minor",
		Link: "https://example.com/releases/1.1.0", DetectedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Labels: map[string]string{"com.example.team": "web"},
	}
	return NewMessage("sample", []Update{u})
}
