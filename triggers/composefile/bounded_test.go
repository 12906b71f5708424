package composefile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// mergeBomb returns a compose file of levels levels of width mappings, each merging every mapping of
// the level below (<<: [*a, *b, …]); the service merges the top level. Followed as a tree, looking a
// key up visits width^levels mappings; the image is in the last mapping of the bottom level.
func mergeBomb(levels, width int) string {
	var b strings.Builder
	b.WriteString("x:\n")
	name := func(l, i int) string { return fmt.Sprintf("%c%d", 'a'+l, i) }
	for l := 0; l < levels; l++ {
		b.WriteString(" - [")
		for i := 0; i < width; i++ {
			if i > 0 {
				b.WriteString(",")
			}
			switch {
			case l == 0 && i == width-1:
				fmt.Fprintf(&b, "&%s {image: r/app:1.0}", name(l, i))
			case l == 0:
				fmt.Fprintf(&b, "&%s {}", name(l, i))
			default:
				fmt.Fprintf(&b, "&%s {<<: [", name(l, i))
				for j := 0; j < width; j++ {
					if j > 0 {
						b.WriteString(",")
					}
					b.WriteString("*" + name(l-1, j))
				}
				b.WriteString("]}")
			}
		}
		b.WriteString("]\n")
	}
	b.WriteString("services:\n app:\n  <<: [")
	for j := 0; j < width; j++ {
		if j > 0 {
			b.WriteString(",")
		}
		b.WriteString("*" + name(levels-1, j))
	}
	b.WriteString("]\n")
	return b.String()
}

// mergeChain returns a compose file of levels mappings, each merging the one below eight times over
// (<<: [*l8, *l8, …]): as small as the file that kept Locate busy 21 s, and as many paths.
func mergeChain(levels, width int) string {
	var b strings.Builder
	b.WriteString("x:\n - &l0 {image: r/app:1.0}\n")
	for l := 1; l <= levels; l++ {
		fmt.Fprintf(&b, " - &l%d {<<: [%s], k%d: 1}\n", l, strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*l%d,", l-1), width), ","), l)
	}
	fmt.Fprintf(&b, "services:\n app:\n  <<: [%s]\n", strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*l%d,", levels), width), ","))
	return b.String()
}

// TestLocateBoundedMerges: a small file of ten levels of eight-way merge keys (which kept Locate busy
// 21 s when every path through the merges was followed) is located at once, each mapping visited once
// per look-up; a file whose merges reach more mappings than maxVisits is refused with ErrTooComplex.
func TestLocateBoundedMerges(t *testing.T) {
	wide := func(n int) string { // one service merging n distinct mappings, none with an image
		var b strings.Builder
		b.WriteString("x:\n")
		for i := 0; i < n; i++ {
			fmt.Fprintf(&b, " - &m%d {k: %d}\n", i, i)
		}
		b.WriteString("services:\n app:\n  <<: [")
		for i := 0; i < n; i++ {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, "*m%d", i)
		}
		b.WriteString("]\n  build: .\n")
		return b.String()
	}
	manyServices := func(services, merges int) string { // each service merges the same mappings, image last
		var b strings.Builder
		b.WriteString("x:\n")
		for i := 0; i < merges; i++ {
			fmt.Fprintf(&b, " - &m%d {k: %d}\n", i, i)
		}
		b.WriteString(" - &img {image: r/app:1.0}\nservices:\n")
		for s := 0; s < services; s++ {
			fmt.Fprintf(&b, " s%d:\n  <<: [", s)
			for i := 0; i < merges; i++ {
				fmt.Fprintf(&b, "*m%d,", i)
			}
			b.WriteString("*img]\n")
		}
		return b.String()
	}
	chain := mergeChain(10, 8)
	if len(chain) > 800 {
		t.Fatalf("merge chain is %d bytes, want a small file", len(chain))
	}
	tests := []struct {
		name    string
		file    string
		service string
		wantErr error
	}{
		{name: "ten levels of eight-way merges of one mapping", file: chain, service: "app"},
		{name: "ten levels of eight-way merges of eight mappings", file: mergeBomb(10, 8), service: "app"},
		{name: "merges within the bound", file: wide(maxVisits - 10), service: "app", wantErr: ErrBuilt},
		{name: "merges past the bound", file: wide(maxVisits + 10), service: "app", wantErr: ErrTooComplex},
		{name: "many services past the bound together", file: manyServices(120, 100), service: "s0", wantErr: ErrTooComplex},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "compose.yml")
			if err := os.WriteFile(path, []byte(tc.file), 0o644); err != nil {
				t.Fatal(err)
			}
			type result struct {
				t   *Target
				err error
			}
			done := make(chan result, 1)
			go func() {
				tg, err := Locate(map[string]string{LabelService: tc.service, LabelConfigFiles: path}, LocateOptions{})
				done <- result{tg, err}
			}()
			var r result
			select {
			case r = <-done:
			case <-time.After(10 * time.Second):
				t.Fatalf("Locate(%d-byte file) still running after 10s", len(tc.file))
			}
			if tc.wantErr != nil {
				if !errors.Is(r.err, tc.wantErr) {
					t.Fatalf("Locate = %v, want %v", r.err, tc.wantErr)
				}
				return
			}
			if r.err != nil {
				t.Fatalf("Locate = %v", r.err)
			}
			if r.t.Image != "r/app:1.0" {
				t.Errorf("Locate found image %q, want r/app:1.0", r.t.Image)
			}
			// Compose's own loader, the second proof of every rewrite, refuses
			// a document this aliased (as `docker compose` would): the plan
			// is refused, quickly, saying so, and nothing is written.
			begin := time.Now()
			ch, err := r.t.Plan("1.1", "")
			if err == nil {
				if want := strings.Replace(tc.file, "r/app:1.0", "r/app:1.1", 1); string(ch.New) != want {
					t.Errorf("Plan changed more than the tag:\n%s", ch.Diff)
				}
			} else if !strings.Contains(err.Error(), "compose's loader rejects the project") {
				t.Errorf("Plan = %v, want the change or compose's loader's refusal", err)
			}
			if took := time.Since(begin); took > 10*time.Second {
				t.Errorf("Plan took %s", took)
			}
			if data, _ := os.ReadFile(path); string(data) != tc.file {
				t.Errorf("the file changed")
			}
		})
	}
}
