package rollout

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestRecordRoundTrip(t *testing.T) {
	j, err := NewJournal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	const key = "unix:///var/run/docker.sock|shop|/srv/shop"
	if r, err := j.Load(key); r != nil || err != nil {
		t.Fatalf("Load before any Save = %+v, %v; want nil, nil", r, err)
	}
	want := &Record{
		Key: "tw-0123", Target: "shop/web", Method: "compose engine", From: "r/app:1.0.0", To: "r/app:1.1.0",
		Phase: PhaseApplying,
		Files: []File{{Path: "/srv/shop/compose.yml", Backup: "/srv/shop/compose.yml.tidewatch-x.bak", Old: SHA256([]byte("a")), New: SHA256([]byte("b"))}},
		Containers: []Container{{Role: RolePrevious, ID: "abc", Name: "shop-web-1", Archive: "shop-web-1-tidewatch-old", Running: true,
			StartedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}},
		Processes: []Process{{PID: 42, Start: 7}},
		Owner:     Self(),
	}
	if err := j.Save(key, want); err != nil {
		t.Fatal(err)
	}
	got, err := j.Load(key)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Load after Save (-want +got):\n%s", diff)
	}
	if st, err := os.Stat(j.RecordPath(key)); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("record file: %v, mode %v; want 0600", err, st.Mode().Perm())
	}
	left, _ := filepath.Glob(filepath.Join(j.Dir(), "*.tmp-*"))
	if len(left) > 0 {
		t.Errorf("temp files left beside the record: %v", left)
	}
	if err := j.Close(key); err != nil {
		t.Fatal(err)
	}
	if r, err := j.Load(key); r != nil || err != nil {
		t.Errorf("Load after Close = %+v, %v; want nil, nil", r, err)
	}
	if err := j.Close(key); err != nil {
		t.Errorf("closing a closed record: %v", err)
	}
}

// TestRecordHostile: a record that is not one is an error naming the file,
// never taken for "no rollout"; keys cannot lead out of the folder.
func TestRecordHostile(t *testing.T) {
	j, err := NewJournal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, content string }{
		{"truncated", `{"key": "k", "phase": "appl`},
		{"unknown phase", `{"key": "k", "phase": "done"}`},
		{"unknown field", `{"key": "k", "phase": "applying", "run": "rm -rf /"}`},
		{"empty", ``},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile(j.RecordPath("k"), []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			r, err := j.Load("k")
			if r != nil || !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), j.RecordPath("k")) {
				t.Errorf("Load = %+v, %v; want ErrCorrupt naming the file", r, err)
			}
		})
	}
	for _, key := range []string{"../../etc/passwd", "a/b", "", strings.Repeat("x", 5000), "p\x00q", "ünï"} {
		for _, p := range []string{j.RecordPath(key), j.LockPath(key)} {
			if filepath.Dir(p) != j.Dir() || strings.ContainsRune(filepath.Base(p), 0) || len(filepath.Base(p)) > 120 {
				t.Errorf("path of key %.20q = %q, want a short name in %s", key, p, j.Dir())
			}
		}
	}
	if j.RecordPath("a/b") == j.RecordPath("a_b") {
		t.Errorf("keys a/b and a_b share a record file")
	}
	if _, err := NewJournal(filepath.Join(j.Dir(), "missing")); err == nil {
		t.Errorf("NewJournal of a missing folder: no error")
	}
}
