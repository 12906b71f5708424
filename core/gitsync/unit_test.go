package gitsync

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestReplay(t *testing.T) {
	const base = "a: 1\nimage: nginx:1.0\nb: 2\nc: 3\n"
	tests := []struct {
		name          string
		before, after string
		onto          string
		want          string
		ok            bool
	}{
		{"onto the same file", base, strings.Replace(base, "1.0", "1.1", 1), base, strings.Replace(base, "1.0", "1.1", 1), true},
		{"already applied", base, strings.Replace(base, "1.0", "1.1", 1), strings.Replace(base, "1.0", "1.1", 1), strings.Replace(base, "1.0", "1.1", 1), true},
		{"other lines changed", base, strings.Replace(base, "1.0", "1.1", 1), "z: 0\n" + strings.Replace(base, "c: 3", "c: 4", 1),
			"z: 0\n" + strings.Replace(strings.Replace(base, "c: 3", "c: 4", 1), "1.0", "1.1", 1), true},
		{"same line changed", base, strings.Replace(base, "1.0", "1.1", 1), strings.Replace(base, "1.0", "2.0", 1), "", false},
		{"line gone", base, strings.Replace(base, "1.0", "1.1", 1), "a: 1\nb: 2\n", "", false},
		{"repeated line told apart by context", "x: 1\nimage: a\ny: 1\nimage: a\n", "x: 1\nimage: b\ny: 1\nimage: a\n", "x: 1\nimage: a\ny: 1\nimage: a\nz: 9\n",
			"x: 1\nimage: b\ny: 1\nimage: a\nz: 9\n", true},
		{"repeated line without context to tell", "image: a\nimage: a\n", "image: b\nimage: a\n", "image: a\nimage: a\nimage: a\n", "", false},
		{"no trailing newline", "TAG=1.0", "TAG=1.1", "# c\nTAG=1.0", "# c\nTAG=1.1", true},
		{"CRLF kept", "a: 1\r\nimage: x:1\r\n", "a: 1\r\nimage: x:2\r\n", "z: 0\r\na: 1\r\nimage: x:1\r\n", "z: 0\r\na: 1\r\nimage: x:2\r\n", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := replay([]byte(tc.before), []byte(tc.after), []byte(tc.onto))
			if ok != tc.ok || ok && string(got) != tc.want {
				t.Fatalf("replay = %q, %v; want %q, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

func FuzzReplay(f *testing.F) {
	f.Add("a\nb\nc\n", "a\nB\nc\n", "x\na\nb\nc\n")
	f.Add("", "x", "")
	f.Fuzz(func(t *testing.T, before, after, onto string) {
		got, ok := replay([]byte(before), []byte(after), []byte(onto))
		if onto == before && (!ok || string(got) != after) {
			t.Fatalf("replay onto before = %q, %v; want after", got, ok)
		}
		// One region replaced: the length changes as the edit's did.
		if ok && onto != after && len(got)-len(onto) != len(after)-len(before) {
			t.Fatalf("replay(%q, %q, %q) = %q: not one region replaced", before, after, onto, got)
		}
	})
}

func TestRedactURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://github.com/ops/stack.git", "https://github.com/ops/stack.git"},
		{"https://ghp_token123@github.com/ops/stack.git", "https://[redacted]@github.com/ops/stack.git"},
		{"https://user:pass123@github.com/x.git", "https://[redacted]@github.com/x.git"},
		{"https://github.com/x.git?access_token=abc123", "https://github.com/x.git?[redacted]"},
		{"ssh://git:pw123@host:22/x.git", "ssh://git@host:22/x.git"},
		{"git@github.com:ops/stack.git", "git@github.com:ops/stack.git"},
		{"user:pw123@host/x", "[redacted]@…"},
	}
	for _, tc := range tests {
		if got := RedactURL(tc.in); got != tc.want {
			t.Errorf("RedactURL(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestScrubKeepsSentinelsNotSecrets(t *testing.T) {
	inner := fmt.Errorf(`Get "https://u:tok-canary@h/x": %w`, context.DeadlineExceeded)
	err := scrub(fmt.Errorf("fetching: %w", inner), "tok-canary")
	if strings.Contains(err.Error(), "tok-canary") || strings.Contains(err.Error(), "u:") {
		t.Fatalf("scrub = %q, shows a credential", err)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatal("scrub lost DeadlineExceeded")
	}
	if got := redactURLsIn(`dial "ssh://git:pw@h/x" and "ssh://git@h/y" and "https://tok@h/z"`); got != `dial "ssh://git:[redacted]@h/x" and "ssh://git@h/y" and "https://[redacted]@h/z"` {
		t.Fatalf("redactURLsIn = %s", got)
	}
	for e := error(err); e != nil; e = errors.Unwrap(e) {
		if strings.Contains(e.Error(), "tok-canary") {
			t.Fatal("the credential is reachable through Unwrap")
		}
	}
}

func TestNext(t *testing.T) {
	r := Record{Deployed: commitA, Failed: commitB}
	for _, tc := range []struct {
		fetched string
		want    Action
	}{{commitA, InSync}, {commitB, SkipFailed}, {strings.Repeat("3", 40), Deploy}} {
		if got := Next(tc.fetched, r); got != tc.want {
			t.Errorf("Next(%.7s) = %v, want %v", tc.fetched, got, tc.want)
		}
	}
	if got := Next(commitA, Record{}); got != Deploy {
		t.Errorf("Next with no record = %v, want deploy", got)
	}
	now := time.Unix(1700000000, 0).UTC()
	marked := Record{Deployed: commitA}.Marked(commitB, "health check failed", now)
	if marked.Deployed != commitA || Next(commitB, marked) != SkipFailed {
		t.Errorf("Marked = %+v: the deployed commit must stay and the failed one be skipped", marked)
	}
	if s := StatusOf("stack", commitB, marked); s.InSync || s.Failed != commitB {
		t.Errorf("StatusOf = %+v", s)
	}
}

func TestFileState(t *testing.T) {
	path := filepath.Join(t.TempDir(), "git", "state.json")
	ctx := context.Background()
	s := NewFileState(path)
	if r, err := s.Get(ctx, "stack"); err != nil || r != (Record{}) {
		t.Fatalf("Get before any Put = %+v, %v", r, err)
	}
	want := Record{Deployed: commitA, Failed: commitB, FailedReason: "rolled back", At: time.Unix(1700000000, 0).UTC()}
	if err := s.Put(ctx, "stack", want); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "other", Record{Deployed: commitB}); err != nil {
		t.Fatal(err)
	}
	// A new FileState (a restart) reads what was written.
	got, err := NewFileState(path).Get(ctx, "stack")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("Get after restart (-want +got):\n%s", diff)
	}
	os.WriteFile(path, []byte("{broken"), 0o644)
	if _, err := s.Get(ctx, "stack"); err == nil {
		t.Fatal("Get of a broken state file succeeded")
	}
}

func TestFindWorkTree(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "repo", ".git"), 0o755)
	os.MkdirAll(filepath.Join(root, "repo", "a", "b"), 0o755)
	os.MkdirAll(filepath.Join(root, "linked"), 0o755)
	os.WriteFile(filepath.Join(root, "linked", ".git"), []byte("gitdir: ../repo/.git/worktrees/linked\n"), 0o644)
	os.MkdirAll(filepath.Join(root, "plain"), 0o755)
	tests := []struct {
		path, want string
		err        error
	}{
		{filepath.Join(root, "repo", "compose.yaml"), filepath.Join(root, "repo"), nil},
		{filepath.Join(root, "repo", "a", "b", "compose.yaml"), filepath.Join(root, "repo"), nil},
		{filepath.Join(root, "linked", "compose.yaml"), filepath.Join(root, "linked"), nil},
		{filepath.Join(root, "plain", "compose.yaml"), "", ErrNotWorkTree},
	}
	for _, tc := range tests {
		got, err := FindWorkTree(tc.path)
		if got != tc.want || !errors.Is(err, tc.err) {
			t.Errorf("FindWorkTree(%s) = %q, %v; want %q, %v", tc.path, got, err, tc.want, tc.err)
		}
	}
}

func BenchmarkFindWorkTreeOutside(b *testing.B) {
	dir := filepath.Join(b.TempDir(), "a", "b", "c", "d")
	os.MkdirAll(dir, 0o755)
	p := filepath.Join(dir, "compose.yaml")
	for b.Loop() {
		if _, err := FindWorkTree(p); !errors.Is(err, ErrNotWorkTree) {
			b.Fatal(err)
		}
	}
}

func TestParseComposeHostile(t *testing.T) {
	bomb := "a: &a [\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\"]\n"
	for i, prev := 'b', 'a'; i <= 'i'; i, prev = i+1, i {
		bomb += fmt.Sprintf("%c: &%c [*%c,*%c,*%c,*%c,*%c,*%c,*%c,*%c,*%c]\n", i, i, prev, prev, prev, prev, prev, prev, prev, prev, prev)
	}
	bomb += "services:\n  app:\n    image: x\n    labels: *i\n"
	tests := []struct {
		name, yaml string
		wantErr    bool
	}{
		{"alias bomb", bomb, true},
		{"services a list", "services: [a, b]\n", true},
		{"not YAML", "services: {app: [\n", true},
		{"empty file", "", false},
		{"services null", "services:\n", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			_, _, err := parseCompose([]byte(tc.yaml))
			if (err != nil) != tc.wantErr {
				t.Fatalf("parseCompose error = %v, want error %v", err, tc.wantErr)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Fatalf("parseCompose took %v", d)
			}
		})
	}
}
