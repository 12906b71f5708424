package sdk

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestOptions(t *testing.T) {
	known := []Option{
		{Name: "URL", Required: true},
		{Name: "ON", Default: "false"},
		{Name: "WAIT", Default: "10s"},
		{Name: "N"},
		{Name: "TO"},
	}
	tests := []struct {
		name    string
		values  map[string]string
		check   func(*Options) any
		want    any
		wantErr []string
	}{
		{name: "default applies", values: map[string]string{"URL": "u"}, check: func(o *Options) any { return o.Duration("WAIT") }, want: 10 * time.Second},
		{name: "bool", values: map[string]string{"URL": "u", "ON": "Yes"}, check: func(o *Options) any { return o.Bool("ON") }, want: true},
		{name: "bad bool", values: map[string]string{"URL": "u", "ON": "perhaps"}, check: func(o *Options) any { return o.Bool("ON") }, want: false, wantErr: []string{`ON: "perhaps" is not a boolean`}},
		{name: "int in range", values: map[string]string{"URL": "u", "N": "7"}, check: func(o *Options) any { return o.Int("N", 1, 10) }, want: 7},
		{name: "int out of range", values: map[string]string{"URL": "u", "N": "70"}, check: func(o *Options) any { return o.Int("N", 1, 10) }, want: 0, wantErr: []string{`N: "70" is not an integer from 1 to 10`}},
		{name: "list", values: map[string]string{"URL": "u", "TO": " a, b,,c "}, check: func(o *Options) any { return o.List("TO") }, want: []string{"a", "b", "c"}},
		{name: "required and unknown", values: map[string]string{"COLOR": "red"}, check: func(o *Options) any { return o.String("URL") }, want: "", wantErr: []string{"URL: required", "COLOR: unknown option"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := NewOptions(tc.values, known)
			if diff := cmp.Diff(tc.want, tc.check(o)); diff != "" {
				t.Errorf("value (-want +got):\n%s", diff)
			}
			err := o.Err()
			if len(tc.wantErr) == 0 && err != nil {
				t.Errorf("Err() = %v, want nil", err)
			}
			for _, w := range tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("Err() = %v, want it to contain %q", err, w)
				}
			}
		})
	}
}

func TestOptionErrors(t *testing.T) {
	err := errors.Join(Errorf("URL", "bad"), errors.New("whole"), errors.Join(Errorf("TO", "empty")))
	got := OptionErrors(err)
	want := []*OptionError{{Option: "URL", Message: "bad"}, {Message: "whole"}, {Option: "TO", Message: "empty"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("OptionErrors (-want +got):\n%s", diff)
	}
	if OptionErrors(nil) != nil {
		t.Error("OptionErrors(nil) is not nil")
	}
}

// TestLoggerShape checks the log lines are what go-plugin parses:
// @level, @message and @timestamp in hclog's layout.
func TestLoggerShape(t *testing.T) {
	var b bytes.Buffer
	log := NewLogger(&b)
	log.Debug("d")
	log.Info("sent", "status", 200)
	log.Warn("w")
	log.Error("e")
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	levels := []string{"debug", "info", "warn", "error"}
	if len(lines) != len(levels) {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), len(levels), b.String())
	}
	for i, line := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("line %d is not JSON: %v", i, err)
		}
		if m["@level"] != levels[i] {
			t.Errorf("line %d: @level %v, want %s", i, m["@level"], levels[i])
		}
		ts, _ := m["@timestamp"].(string)
		if _, err := time.Parse("2006-01-02T15:04:05.000000Z07:00", ts); err != nil {
			t.Errorf("line %d: @timestamp %q not in hclog's layout: %v", i, ts, err)
		}
		if _, ok := m["@message"]; !ok {
			t.Errorf("line %d: no @message: %s", i, line)
		}
	}
	if !strings.Contains(lines[1], `"status":200`) {
		t.Errorf("attributes lost: %s", lines[1])
	}
}

func TestTemplateRejectsUnknownFields(t *testing.T) {
	for _, text := range []string{"{{.Nope}}", "{{.Update.Nope}}", "{{", `{{template "x"}}`} {
		if _, err := ParseTemplate("T", text); err == nil {
			t.Errorf("ParseTemplate(%q) = nil error, want one", text)
		}
	}
	tpl, err := ParseTemplate("T", "{{.Trigger}} {{.Count}} {{range .Updates}}{{.Image}}:{{.Candidate}}{{end}}")
	if err != nil {
		t.Fatal(err)
	}
	got, err := tpl.Render(NewMessage("ops", []Update{{Image: "a", Candidate: "1"}, {Image: "b", Candidate: "2"}}))
	if err != nil || got != "ops 2 a:1b:2" {
		t.Errorf("Render = %q, %v; want \"ops 2 a:1b:2\"", got, err)
	}
}

func TestWireRoundTrip(t *testing.T) {
	u := SampleMessage().Update
	u.Detail, u.ContainerName, u.Principal = "rolled back: health check failed", "web-1", "ci"
	u.RegistryAuth = &RegistryAuth{Server: "ghcr.io", Username: "bot", Password: "canary-pass-5e1", IdentityToken: "id", RegistryToken: "rt"}
	if diff := cmp.Diff(u, updateFromWire(updateToWire(u))); diff != "" {
		t.Errorf("update round trip (-want +got):\n%s", diff)
	}
	du := u
	du.Declared = &Declared{Source: "prod", Commit: "0123456789abcdef0123456789abcdef01234567", Project: "shop", WorkingDir: "/data/git/prod/shop",
		Files: []string{"/data/git/prod/shop/compose.yaml", "/data/git/prod/shop/compose.override.yaml"}, Service: "web",
		Previous: []FileChange{{Path: "/data/git/prod/shop/compose.yaml", Backup: "/data/git/.prod.backup-1/shop/compose.yaml"}, {Path: "/data/git/prod/shop/.env"}}}
	if diff := cmp.Diff(du, updateFromWire(updateToWire(du))); diff != "" {
		t.Errorf("declared update round trip (-want +got):\n%s", diff)
	}
	// The credentials never show: not in fmt, JSON nor slog.
	js, _ := json.Marshal(u)
	var logged strings.Builder
	slog.New(slog.NewTextHandler(&logged, nil)).Info("firing", "update", u, "auth", u.RegistryAuth)
	for _, out := range []string{fmt.Sprintf("%v %+v %#v %s", u, u, u, u.RegistryAuth), string(js), logged.String()} {
		if strings.Contains(out, "canary-pass-5e1") {
			t.Errorf("the registry password leaked: %s", out)
		}
	}
	d := Description{Type: "compose", Description: "rolls out", Deploys: true, Options: []Option{{Name: "URL", Required: true, Secret: true, Default: "x"}}}
	if diff := cmp.Diff(d, describeFromWire(describeToWire(d))); diff != "" {
		t.Errorf("description round trip (-want +got):\n%s", diff)
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	r := Result{Detail: "applied", Event: EventUpdateApplied, Rollout: &Rollout{
		Outcome: OutcomeRolledBack, Method: "engine", Target: "shop/web", From: "web:1", To: "web:2", Container: "abc",
		Steps:      []RolloutStep{{Name: "pull", At: at, Duration: 1500 * time.Millisecond}, {Name: "health", At: at, Duration: time.Second, Error: "unhealthy", Note: "3 checks"}},
		FailedStep: "health", Reason: "unhealthy", Files: []FileChange{{Path: "/srv/compose.yml", Backup: "/srv/.compose.yml.bak"}},
		Logs: []string{"panic: boom"}, Diff: "-a\n+b", Plan: []string{"pull"},
	}, Services: []ServiceOutcome{{Service: "telegram#1"}, {Service: "gotify#2", Failed: true}}}
	if diff := cmp.Diff(r, resultFromWire(resultToWire("k", r))); diff != "" {
		t.Errorf("result round trip (-want +got):\n%s", diff)
	}
	for _, err := range []error{errors.New("later"), Permanent(errors.New("never"))} {
		got := resultFromWire(resultToWire("k", Result{Err: err}))
		if got.Err == nil || got.Err.Error() != err.Error() || IsPermanent(got.Err) != IsPermanent(err) {
			t.Errorf("error %v came back as %v (permanent %v)", err, got.Err, IsPermanent(got.Err))
		}
	}
}

func TestPairs(t *testing.T) {
	tests := []struct {
		in   string
		want []Pair
	}{
		{"", nil},
		{" A=1, B = 2 ,,C", []Pair{{1, "A", "1", true}, {2, "B", "2", true}, {4, "C", "", false}}},
		{"A=1,2\nB=x=y", []Pair{{1, "A", "1,2", true}, {2, "B", "x=y", true}}},
	}
	for _, tc := range tests {
		if diff := cmp.Diff(tc.want, Pairs(tc.in)); diff != "" {
			t.Errorf("Pairs(%q) (-want +got):\n%s", tc.in, diff)
		}
	}
}

func TestCertPool(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	os.WriteFile(notPEM, []byte("hello"), 0o600)
	known := []Option{{Name: "CA"}}
	o := NewOptions(map[string]string{}, known)
	if o.CertPool("CA") != nil || o.Err() != nil {
		t.Errorf("unset: pool or error, want neither")
	}
	for _, tc := range []struct{ path, want string }{
		{filepath.Join(dir, "missing.pem"), "CA: reading"},
		{notPEM, "CA: " + notPEM + " holds no PEM certificate"},
	} {
		o := NewOptions(map[string]string{"CA": tc.path}, known)
		if o.CertPool("CA") != nil || o.Err() == nil || !strings.Contains(o.Err().Error(), tc.want) {
			t.Errorf("CertPool(%s): error %v, want %q", tc.path, o.Err(), tc.want)
		}
	}
}
