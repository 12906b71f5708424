package gitsync

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tidewatch/tidewatch/core"
	"github.com/tidewatch/tidewatch/core/gitsync/gittest"
)

// benchStack is a served repository and a clone, for benchmarks.
func benchStack(b *testing.B) (*gittest.Server, string, string) {
	b.Helper()
	srv := gittest.NewServer(b, testToken)
	url := srv.NewRepo(b, composeRepo, map[string]string{"compose.yaml": composeV1, "README.md": "# app\n"})
	return srv, url, srv.Clone(b, url)
}

// benchCommit times Commit of one image rewrite, pushed or not.
func benchCommit(b *testing.B, push bool) {
	_, _, work := benchStack(b)
	c, err := NewCommitter(CommitConfig{Push: push, Credentials: Credentials{Username: gittest.User, Token: core.Secret(testToken)}}, nil)
	if err != nil {
		b.Fatal(err)
	}
	p := filepath.Join(work, "compose.yaml")
	before := []byte(composeV1)
	i := 0
	for b.Loop() {
		i++
		after := []byte(strings.Replace(composeV1, "nginx:1.25.0", fmt.Sprintf("nginx:1.25.%d", i), 1))
		if err := os.WriteFile(p, after, 0o644); err != nil {
			b.Fatal(err)
		}
		res, err := c.Commit(context.Background(), nginxChange(FileChange{Path: p, Before: before, After: after}))
		if err != nil || res[0].Commit == "" || push && !res[0].Pushed {
			b.Fatalf("Commit = %+v, %v", res, err)
		}
		before = after
	}
}

func BenchmarkCommit(b *testing.B)     { benchCommit(b, false) }
func BenchmarkCommitPush(b *testing.B) { benchCommit(b, true) }

func BenchmarkClone(b *testing.B) {
	_, url, _ := benchStack(b)
	root := b.TempDir()
	i := 0
	for b.Loop() {
		i++
		m, err := NewMirror(Source{Name: fmt.Sprintf("s%d", i), URL: url, Credentials: Credentials{Username: gittest.User, Token: core.Secret(testToken)}}, root, nil)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := m.Fetch(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFetchUnchanged(b *testing.B) {
	_, url, _ := benchStack(b)
	m, err := NewMirror(Source{Name: "s", URL: url, Credentials: Credentials{Username: gittest.User, Token: core.Secret(testToken)}}, b.TempDir(), nil)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := m.Fetch(context.Background()); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := m.Fetch(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFetchNewCommitAndDiff(b *testing.B) {
	srv, url, _ := benchStack(b)
	m, err := NewMirror(Source{Name: "s", URL: url, Credentials: Credentials{Username: gittest.User, Token: core.Secret(testToken)}}, b.TempDir(), nil)
	if err != nil {
		b.Fatal(err)
	}
	prev, err := m.Fetch(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	i := 0
	for b.Loop() {
		b.StopTimer()
		i++
		srv.Push(b, url, "bump", map[string]string{"compose.yaml": strings.Replace(composeV1, "postgres:16.1", fmt.Sprintf("postgres:16.%d", i+1), 1)})
		b.StartTimer()
		next, err := m.Fetch(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		d, err := m.Changes(context.Background(), prev, next)
		if err != nil || len(d) != 1 || len(d[0].Changed) != 1 {
			b.Fatalf("Changes = %+v, %v", d, err)
		}
		prev = next
	}
}
