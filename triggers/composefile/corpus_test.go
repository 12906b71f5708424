package composefile

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const (
	digestA = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	digestB = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

// copyCase copies testdata/corpus/<name>/in into a temp folder and returns the folder.
func copyCase(t *testing.T, name string) string {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join("testdata", "corpus", name, "in")
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestCorpus(t *testing.T) {
	tests := []struct {
		name    string
		files   []string // config_files, relative to the case's folder; default compose.yml
		service string   // default app
		tag     string
		digest  string
		changed string // the file that changes (its expected bytes are in want/)
		shared  []string
		varName string // Target.Var.Name, when the tag is a variable
		tagNow  string // Target.Tag
		err     error
	}{
		{name: "comments", tag: "1.1.0", changed: "compose.yml", tagNow: "1.0.0"},
		{name: "single-quoted", tag: "1.1.0", changed: "compose.yml", tagNow: "1.0.0"},
		{name: "double-quoted", tag: "1.1.0", changed: "compose.yml", tagNow: "1.0.0"},
		{name: "untagged", tag: "1.1.0", changed: "compose.yml"},
		{name: "digest", tag: "1.27-alpine", digest: digestB, changed: "compose.yml", tagNow: "1.25-alpine"},
		{name: "digest-only", digest: digestB, changed: "compose.yml", tagNow: "latest"},
		{name: "digest-pinned-no-digest", tag: "1.27", tagNow: "1.25", err: ErrUnsupported},
		{name: "crlf-bom-no-final-newline", tag: "1.1.0", changed: "compose.yml", tagNow: "1.0.0"},
		{name: "flow-mapping", tag: "1.1.0", changed: "compose.yml", tagNow: "1.0.0"},
		{name: "anchor-alias", tag: "1.1.0", changed: "compose.yml", shared: []string{"worker"}, tagNow: "1.0.0"},
		{name: "anchor-in-service", service: "worker", tag: "1.1.0", changed: "compose.yml", shared: []string{"app"}, tagNow: "1.0.0"},
		{name: "anchor-used-elsewhere", tag: "1.1.0", err: ErrUnsupported},
		{name: "merge", tag: "1.1.0", changed: "compose.yml", shared: []string{"twin"}, tagNow: "1.0.0"},
		{name: "merge-override", service: "worker", tag: "2.1.0", changed: "compose.yml", tagNow: "2.0.0"},
		{name: "var-default", tag: "1.1.0", changed: "compose.yml", varName: "APP_TAG", tagNow: "1.0.0"},
		{name: "var-dash-default", tag: "1.1.0", changed: "compose.yml", varName: "APP_TAG", tagNow: "1.0.0"},
		{name: "var-env-export-quoted", tag: "1.1.0", changed: ".env", varName: "APP_TAG", tagNow: "1.0.0"},
		{name: "var-env-single-crlf", tag: "1.1.0", changed: ".env", varName: "APP_TAG", tagNow: "1.0.0"},
		{name: "var-env-unquoted", tag: "1.1.0", changed: ".env", varName: "APP_TAG", tagNow: "1.0.0"},
		{name: "var-env-empty-uses-default", tag: "1.1.0", changed: "compose.yml", varName: "APP_TAG", tagNow: "1.0.0"},
		{name: "var-registry", tag: "1.1.0", changed: "compose.yml", tagNow: "1.0.0"},
		{name: "var-unset", tag: "1.1.0", varName: "APP_TAG", err: ErrUnsupported},
		{name: "var-whole-image", tag: "1.1.0", err: ErrUnsupported},
		{name: "var-mixed-tag", tag: "1.1.0", err: ErrUnsupported},
		{name: "multi-override", files: []string{"base.yml", "prod.yml"}, tag: "1.1.0", changed: "prod.yml", tagNow: "1.0.0"},
		{name: "multi-base", files: []string{"base.yml", "prod.yml"}, tag: "1.1.0", changed: "base.yml", tagNow: "1.0.0"},
		{name: "build-only", tag: "1.1.0", err: ErrBuilt},
		{name: "build-and-image", tag: "1.1.0", changed: "compose.yml", tagNow: "1.0.0"},
		{name: "no-service", tag: "1.1.0", err: ErrNoImage},
		{name: "block-scalar", tag: "1.1.0", err: ErrUnsupported},
		{name: "escaped", tag: "1.1.0", err: ErrUnsupported},
		{name: "already", tag: "1.1.0", tagNow: "1.1.0", err: ErrNoChange},
		{name: "tagged-anchor-properties", tag: "1.1.0", changed: "compose.yml", tagNow: "1.0.0"},
		{name: "unicode-before", tag: "1.1.0", changed: "compose.yml", tagNow: "1.0.0"},
	}
	seen := map[string]bool{}
	for _, tc := range tests {
		seen[tc.name] = true
		t.Run(tc.name, func(t *testing.T) {
			dir := copyCase(t, tc.name)
			files := tc.files
			if files == nil {
				files = []string{"compose.yml"}
			}
			var abs []string
			for _, f := range files {
				abs = append(abs, filepath.Join(dir, f))
			}
			service := tc.service
			if service == "" {
				service = "app"
			}
			labels := map[string]string{
				LabelProject: "demo", LabelService: service, LabelWorkingDir: dir,
				LabelConfigFiles: strings.Join(abs, ","),
			}
			before := snapshot(t, dir)
			target, err := Locate(labels, LocateOptions{})
			var ch *Change
			if err == nil {
				if tc.varName != "" && (target.Var == nil || target.Var.Name != tc.varName) {
					t.Errorf("Locate: Var = %+v, want name %s", target.Var, tc.varName)
				}
				if target.Tag != tc.tagNow {
					t.Errorf("Locate: Tag = %q, want %q", target.Tag, tc.tagNow)
				}
				ch, err = target.Plan(tc.tag, tc.digest)
			}
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("Locate+Plan error = %v, want %v", err, tc.err)
				}
				if diff := cmp.Diff(before, snapshot(t, dir)); diff != "" {
					t.Errorf("files changed on a refused plan (-before +after):\n%s", diff)
				}
				return
			}
			if err != nil {
				t.Fatalf("Locate+Plan: %v", err)
			}
			want, err := os.ReadFile(filepath.Join("testdata", "corpus", tc.name, "want", tc.changed))
			if err != nil {
				t.Fatal(err)
			}
			if got := filepath.Base(ch.Path); got != tc.changed {
				t.Errorf("Plan changes %s, want %s", got, tc.changed)
			}
			if diff := cmp.Diff(string(want), string(ch.New)); diff != "" {
				t.Errorf("Plan: new bytes (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.shared, ch.Shared); diff != "" {
				t.Errorf("Plan: Shared (-want +got):\n%s", diff)
			}
			if !strings.Contains(ch.Diff, "\n-") || !strings.Contains(ch.Diff, "\n+") {
				t.Errorf("Plan: Diff = %q, want a - and a + line", ch.Diff)
			}
			if diff := cmp.Diff(before, snapshot(t, dir)); diff != "" {
				t.Errorf("Plan wrote files (-before +after):\n%s", diff)
			}

			bk, err := ch.Apply(3)
			if err != nil {
				t.Fatalf("Apply: %v", err)
			}
			if got, _ := os.ReadFile(ch.Path); !bytes.Equal(got, want) {
				t.Errorf("after Apply, %s = %q, want %q", tc.changed, got, want)
			}
			// The file now parses to the new image.
			again, err := Locate(labels, LocateOptions{})
			if err != nil {
				t.Fatalf("Locate after Apply: %v", err)
			}
			wantTag := tc.tag
			if wantTag == "" {
				wantTag = tc.tagNow
			}
			if again.Tag != wantTag || again.Digest != tc.digest {
				t.Errorf("after Apply: tag %q digest %q, want %q %q", again.Tag, again.Digest, wantTag, tc.digest)
			}
			if err := bk.Restore(); err != nil {
				t.Fatalf("Restore: %v", err)
			}
			after := snapshot(t, dir)
			delete(after, filepath.Base(bk.Path))
			if diff := cmp.Diff(before, after); diff != "" {
				t.Errorf("after Restore (-before +after):\n%s", diff)
			}
		})
	}
	ents, _ := os.ReadDir(filepath.Join("testdata", "corpus"))
	for _, e := range ents {
		if !seen[e.Name()] {
			t.Errorf("corpus case %s has no row in the table", e.Name())
		}
	}
}

// snapshot returns the files of dir and their contents.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		m[e.Name()] = string(b)
	}
	return m
}
