package composefile

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"
)

// genCompose builds a random compose project around service app's image from seed: line endings,
// BOM, final newline, comments, blank lines, indentation, flow or block style, quoting, anchors,
// merges, variables with defaults or an .env file, digests, other services. It returns the files.
func genCompose(seed uint64) (files map[string]string) {
	r := rand.New(rand.NewPCG(seed, seed>>7^0x9e3779b97f4a7c15))
	pick := func(xs ...string) string { return xs[r.IntN(len(xs))] }
	nl := pick("\n", "\n", "\r\n")
	ind := pick("  ", "    ", " ")
	comment := func() string {
		if r.IntN(3) == 0 {
			return pick(" # c", "  # image: repo:9.9.9", " #x: y")
		}
		return ""
	}
	var b strings.Builder
	line := func(depth int, s string) {
		b.WriteString(strings.Repeat(ind, depth) + s + comment() + nl)
		if r.IntN(6) == 0 {
			b.WriteString(nl)
		}
		if r.IntN(6) == 0 {
			b.WriteString(strings.Repeat(ind, depth) + "# a comment" + nl)
		}
	}
	quote := func(s string) string {
		switch r.IntN(3) {
		case 0:
			return "'" + s + "'"
		case 1:
			return `"` + s + `"`
		}
		return s
	}
	repo := pick("127.0.0.1:5000/app", "nginx", "ghcr.io/org/app", "registry.example.com:443/a/b/c")
	var value string
	env := ""
	switch r.IntN(6) {
	case 0:
		value = repo // untagged
	case 1:
		value = repo + ":1.0.0@" + digestA
	case 2:
		value = repo + ":${APP_TAG:-1.0.0}"
	case 3:
		value = repo + pick(":${APP_TAG}", ":$APP_TAG", ":${APP_TAG-0.1}")
		env = pick("APP_TAG=1.0.0", "export APP_TAG='1.0.0'", `APP_TAG="1.0.0" # now`, "# c\nAPP_TAG = 1.0.0\nOTHER=x")
	default:
		value = repo + pick(":1.0.0", ":latest", ":1.25-alpine", ":v2")
	}
	if r.IntN(8) == 0 {
		b.WriteString("\ufeff")
	}
	if r.IntN(2) == 0 {
		line(0, "# compose file")
	}
	if r.IntN(3) == 0 {
		line(0, `version: "3.8"`)
	}
	how := r.IntN(4) // 0 literal, 1 alias of x- anchor, 2 merge from x- base, 3 anchor on app, alias on twin
	switch how {
	case 1:
		line(0, "x-img: &img "+quote(value))
	case 2:
		line(0, "x-base: &base")
		line(1, "image: "+quote(value))
		line(1, "restart: always")
	}
	line(0, "services:")
	others := r.IntN(3)
	for i := range others {
		line(1, fmt.Sprintf("svc%d:", i))
		line(2, fmt.Sprintf("image: other%d:1.0.0", i))
	}
	if r.IntN(4) == 0 && how == 0 {
		q := pick("'", `"`) // a plain scalar with ${...} would end the flow mapping
		line(1, "app: {ports: [\"127.0.0.1:8080:80\"], image: "+q+value+q+", restart: always}")
	} else {
		line(1, "app:")
		if r.IntN(2) == 0 {
			line(2, "ports:")
			line(3, `- "127.0.0.1:8080:80"`)
		}
		switch how {
		case 0:
			line(2, "image: "+quote(value))
		case 1:
			line(2, "image: *img")
		case 2:
			line(2, "<<: *base")
		case 3:
			line(2, "image: &img "+quote(value))
		}
		if r.IntN(2) == 0 {
			line(2, "environment:")
			line(3, "A: 'b'")
		}
	}
	if how == 3 || how == 1 && r.IntN(2) == 0 {
		line(1, "twin:")
		line(2, "image: *img")
	}
	s := b.String()
	if r.IntN(4) == 0 {
		s = strings.TrimSuffix(s, nl)
	}
	files = map[string]string{"compose.yml": s}
	if env != "" {
		files[".env"] = strings.ReplaceAll(env, "\n", nl) + nl
	}
	return files
}

// mask replaces every string equal to from in v (a decoded YAML tree) with "MASK".
func mask(v any, from string) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = mask(e, from)
		}
	case []any:
		for i, e := range x {
			x[i] = mask(e, from)
		}
	case string:
		if x == from {
			return "MASK"
		}
	}
	return v
}

// oneLineSplice checks that a and b differ in one run of bytes on one line.
func oneLineSplice(a, b []byte) error {
	p := 0
	for p < len(a) && p < len(b) && a[p] == b[p] {
		p++
	}
	s := 0
	for s < len(a)-p && s < len(b)-p && a[len(a)-1-s] == b[len(b)-1-s] {
		s++
	}
	da, db := a[p:len(a)-s], b[p:len(b)-s]
	if bytes.ContainsAny(da, "\r\n") || bytes.ContainsAny(db, "\r\n") {
		return fmt.Errorf("the change spans lines: %q → %q", da, db)
	}
	return nil
}

// fuzzTag turns any string into a valid tag, or "" when nothing is left of it.
func fuzzTag(s string) string {
	var b strings.Builder
	for _, c := range s {
		if c < 128 && (isNameChar(byte(c)) || c == '.' || c == '-') && b.Len() < 128 {
			if b.Len() == 0 && (c == '.' || c == '-') {
				continue
			}
			b.WriteRune(c)
		}
	}
	return b.String()
}

func FuzzPlan(f *testing.F) {
	for i := range 40 {
		f.Add(uint64(i), []string{"1.1.0", "2", "v1.2.3-rc.1", "latest", "_x", "1.0.0"}[i%6])
	}
	f.Add(uint64(7), "not a tag!")
	f.Add(uint64(8), "")
	f.Fuzz(func(t *testing.T, seed uint64, rawTag string) {
		dir := t.TempDir()
		files := genCompose(seed)
		writeProject(t, dir, files)
		target, err := Locate(map[string]string{LabelService: "app", LabelConfigFiles: filepath.Join(dir, "compose.yml"), LabelWorkingDir: dir}, LocateOptions{})
		if err != nil {
			t.Fatalf("Locate on a generated file: %v\n%s", err, files["compose.yml"])
		}
		digest := ""
		if target.Digest != "" {
			digest = digestB
		}
		// An invalid tag is refused.
		if !ValidTag(rawTag) {
			if _, err := target.Plan(rawTag, digest); !errors.Is(err, ErrInvalidRef) && !(rawTag == "" && digest != "") {
				t.Fatalf("Plan(%q) = %v, want ErrInvalidRef", rawTag, err)
			}
		}
		tag := fuzzTag(rawTag)
		if tag == "" {
			return
		}
		ch, err := target.Plan(tag, digest)
		if errors.Is(err, ErrNoChange) && tag == target.Tag {
			return
		}
		if err != nil {
			t.Fatalf("Plan(%q, %q): %v\n%s", tag, digest, err, files["compose.yml"])
		}
		if err := oneLineSplice(ch.Old, ch.New); err != nil {
			t.Fatal(err)
		}
		if filepath.Base(ch.Path) == ".env" {
			oldE, err1 := parseEnv(ch.Old)
			newE, err2 := parseEnv(ch.New)
			if err1 != nil || err2 != nil || len(oldE) != len(newE) {
				t.Fatalf("env files: %v %v %d %d", err1, err2, len(oldE), len(newE))
			}
			for i := range oldE {
				want := oldE[i].value
				if i == lastEntry(oldE, "APP_TAG") {
					want = tag
				}
				if newE[i].key != oldE[i].key || newE[i].value != want {
					t.Fatalf("env entry %d: %s=%q, want %s=%q", i, newE[i].key, newE[i].value, oldE[i].key, want)
				}
			}
			return
		}
		var oldV, newV any
		if err := yaml.Unmarshal(ch.Old, &oldV); err != nil {
			t.Fatal(err)
		}
		if err := yaml.Unmarshal(ch.New, &newV); err != nil {
			t.Fatalf("the new file does not parse: %v\n%s", err, ch.New)
		}
		again, err := Locate(map[string]string{LabelService: "app", LabelConfigFiles: filepath.Join(dir, "compose.yml")}, LocateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "compose.yml"), ch.New, 0o644); err != nil {
			t.Fatal(err)
		}
		after, err := Locate(map[string]string{LabelService: "app", LabelConfigFiles: filepath.Join(dir, "compose.yml")}, LocateOptions{})
		if err != nil {
			t.Fatalf("Locate on the new file: %v", err)
		}
		if after.Tag != tag || after.Digest != digest || after.Repository != again.Repository {
			t.Fatalf("new image %s : %s @ %s, want %s : %s @ %s", after.Repository, after.Tag, after.Digest, again.Repository, tag, digest)
		}
		if diff := cmp.Diff(mask(oldV, target.Image), mask(newV, after.Image)); diff != "" {
			t.Fatalf("more than the image changed (-old +new):\n%s", diff)
		}
	})
}

// FuzzLocate feeds arbitrary bytes as a compose file: Locate and Plan must not panic, and a plan they
// make must parse.
func FuzzLocate(f *testing.F) {
	for i := range 10 {
		f.Add([]byte(genCompose(uint64(i))["compose.yml"]))
	}
	f.Add([]byte("services:\n  app:\n    image: &a [*a]\n"))
	f.Add([]byte("services: {app: {<<: [*x]}}\n"))
	f.Add([]byte(mergeChain(10, 8)))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		path := filepath.Join(dir, "compose.yml")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		target, err := Locate(map[string]string{LabelService: "app", LabelConfigFiles: path}, LocateOptions{})
		if err != nil {
			return
		}
		ch, err := target.Plan("9.9.9", "")
		if err != nil {
			return
		}
		if _, err := parseDoc(ch.New); err != nil {
			t.Fatalf("planned file does not parse: %v", err)
		}
		if err := oneLineSplice(ch.Old, ch.New); err != nil {
			t.Fatal(err)
		}
	})
}
