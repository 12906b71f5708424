package composefile

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"go.yaml.in/yaml/v3"
)

var (
	tagRE    = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
	digestRE = regexp.MustCompile(`^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$`)
)

// ValidTag reports whether s is a valid image tag.
func ValidTag(s string) bool { return tagRE.MatchString(s) }

// ValidDigest reports whether s is a valid digest ("sha256:" and 64 hex digits, or another algorithm).
func ValidDigest(s string) bool { return digestRE.MatchString(s) }

// Plan computes the rewrite that changes the service's tag to newTag and, when newDigest is not "",
// pins it to newDigest (written tag@digest), without writing anything.
//
// newTag "" keeps the current tag (a digest-only update; an untagged image gets just "@digest").
// A value already pinned by digest needs newDigest, since keeping the old digest would keep the old
// image; a tag set by a variable cannot be pinned. The change is to one file: the compose file, or
// the env file that sets the tag's variable (else the variable's default in the compose file). Plan
// proves, by parsing both versions, that the only difference is that value. Errors wrap ErrInvalidRef,
// ErrUnsupported or ErrNoChange.
func (t *Target) Plan(newTag, newDigest string) (*Change, error) {
	switch {
	case newTag == "" && newDigest == "":
		return nil, fmt.Errorf("planning update of service %q: no tag and no digest: %w", t.Service, ErrInvalidRef)
	case newTag != "" && !ValidTag(newTag):
		return nil, fmt.Errorf("planning update of service %q: tag %q: %w", t.Service, newTag, ErrInvalidRef)
	case newDigest != "" && !ValidDigest(newDigest):
		return nil, fmt.Errorf("planning update of service %q: digest %q: %w", t.Service, newDigest, ErrInvalidRef)
	}
	val := &t.val
	v := t.Image
	if val.hasDigest && newDigest == "" {
		return nil, fmt.Errorf("planning update of service %q: image %q is pinned by digest and the update gives no digest: %w", t.Service, v, ErrUnsupported)
	}
	oldImage := refString(t.Repository, t.Tag, t.Digest)

	if val.tagExpr >= 0 {
		e := val.exprs[val.tagExpr]
		switch {
		case newDigest != "":
			return nil, fmt.Errorf("planning update of service %q: the tag of %q is the variable %s, which cannot be pinned by digest: %w", t.Service, v, e.name, ErrUnsupported)
		case newTag == t.Tag:
			return nil, fmt.Errorf("service %q: %s is already %s: %w", t.Service, e.name, newTag, ErrNoChange)
		}
		newImage := refString(t.Repository, newTag, "")
		if t.Var.EnvFile != "" {
			return t.planEnv(newTag, oldImage, newImage)
		}
		if !t.Var.HasDefault {
			return nil, fmt.Errorf("planning update of service %q: the tag of %q is the variable %s, set neither in %s nor by a default: %w",
				t.Service, v, e.name, t.envPath, ErrUnsupported)
		}
		if strings.ContainsAny(t.Var.Default, "${}") {
			return nil, fmt.Errorf("planning update of service %q: the default of %s in %q is not a plain tag: %w", t.Service, e.name, v, ErrUnsupported)
		}
		return t.planYAML(e.argStart, e.argEnd, newTag, oldImage, newImage)
	}

	tag := newTag
	if tag == "" && val.hasColon {
		tag = v[val.tagStart:val.nameEnd]
	}
	tail := ""
	if tag != "" {
		tail = ":" + tag
	}
	if newDigest != "" {
		tail += "@" + newDigest
	}
	if v[val.repoEnd:] == tail {
		return nil, fmt.Errorf("service %q: image is already %s: %w", t.Service, v, ErrNoChange)
	}
	return t.planYAML(val.repoEnd, len(v), tail, oldImage, refString(t.Repository, tag, newDigest))
}

func refString(repo, tag, digest string) string {
	s := repo
	if tag != "" {
		s += ":" + tag
	}
	if digest != "" {
		s += "@" + digest
	}
	return s
}

// planYAML replaces bytes [from, to) of the image value with repl in the compose file.
func (t *Target) planYAML(from, to int, repl, oldImage, newImage string) (*Change, error) {
	want := t.Image[:from] + repl + t.Image[to:]
	nb := splice(t.src, t.val.start+from, t.val.start+to, repl)
	if err := verifyYAML(t.val.doc, nb, t.val.node, want); err != nil {
		return nil, fmt.Errorf("planning update of service %q in %s: the rewrite would change more than the image, refusing: %w", t.Service, t.File, err)
	}
	return t.proven(&Change{
		Path: t.File, Old: t.src, New: nb, Diff: diff(t.File, t.src, nb),
		OldImage: oldImage, NewImage: newImage, Shared: t.Shared,
	})
}

// proven returns c once compose's own loader agrees that it changes only the
// image (verifyWithCompose): the second proof beside the byte-level one.
func (t *Target) proven(c *Change) (*Change, error) {
	if err := t.verifyWithCompose(c); err != nil {
		return nil, fmt.Errorf("planning update of service %q in %s: %w: %w", t.Service, c.Path, err, ErrUnsupported)
	}
	return c, nil
}

// planEnv replaces the value of the tag's variable in the env file.
func (t *Target) planEnv(newTag, oldImage, newImage string) (*Change, error) {
	entries, err := parseEnv(t.env)
	if err != nil {
		return nil, fmt.Errorf("parsing env file %s: %w", t.envPath, err)
	}
	i := lastEntry(entries, t.Var.Name)
	if i < 0 {
		return nil, fmt.Errorf("env file %s no longer sets %s: %w", t.envPath, t.Var.Name, ErrChanged)
	}
	en := entries[i]
	if !en.editable {
		return nil, fmt.Errorf("planning update of service %q: %s in %s (line %d) has escapes, interpolation or several lines: %w",
			t.Service, t.Var.Name, t.envPath, en.line, ErrUnsupported)
	}
	nb := splice(t.env, en.start, en.end, newTag)
	if err := verifyEnv(entries, nb, i, newTag); err != nil {
		return nil, fmt.Errorf("planning update of service %q in %s: the rewrite would change more than %s, refusing: %w", t.Service, t.envPath, t.Var.Name, err)
	}
	return t.proven(&Change{
		Path: t.envPath, Old: t.env, New: nb, Diff: diff(t.envPath, t.env, nb),
		OldImage: oldImage, NewImage: newImage, Shared: t.Shared, varValue: newTag,
	})
}

func splice(b []byte, from, to int, repl string) []byte {
	out := make([]byte, 0, len(b)-(to-from)+len(repl))
	out = append(out, b[:from]...)
	out = append(out, repl...)
	return append(out, b[to:]...)
}

// verifyYAML parses nb and checks that its node tree equals old's in everything (kinds, styles, tags,
// anchors, aliases, comments, lines, order, values) except mask's value, which must be want.
func verifyYAML(old *yaml.Node, nb []byte, mask *yaml.Node, want string) error {
	doc, err := parseDoc(nb)
	if err != nil {
		return fmt.Errorf("the new file does not parse: %w", err)
	}
	found := false
	if err := sameTree(old, doc, mask, want, &found); err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("the image value is missing from the new file")
	}
	return nil
}

func sameTree(a, b, mask *yaml.Node, want string, found *bool) error {
	if a.Kind != b.Kind || a.Style != b.Style || a.Tag != b.Tag || a.Anchor != b.Anchor || a.Line != b.Line ||
		a.HeadComment != b.HeadComment || a.LineComment != b.LineComment || a.FootComment != b.FootComment ||
		len(a.Content) != len(b.Content) {
		return fmt.Errorf("node at line %d differs", a.Line)
	}
	if a == mask {
		if b.Value != want {
			return fmt.Errorf("image value at line %d is %q, want %q", a.Line, b.Value, want)
		}
		*found = true
	} else if a.Value != b.Value {
		return fmt.Errorf("value at line %d differs: %q → %q", a.Line, a.Value, b.Value)
	}
	if a.Kind == yaml.AliasNode {
		return nil
	}
	for i := range a.Content {
		if err := sameTree(a.Content[i], b.Content[i], mask, want, found); err != nil {
			return err
		}
	}
	return nil
}

// verifyEnv parses nb and checks that it has the same assignments as old but entry i's value, which
// must be want.
func verifyEnv(old []envEntry, nb []byte, i int, want string) error {
	nw, err := parseEnv(nb)
	if err != nil {
		return fmt.Errorf("the new env file does not parse: %w", err)
	}
	if len(nw) != len(old) {
		return fmt.Errorf("the new env file has %d assignments, want %d", len(nw), len(old))
	}
	for j := range old {
		w := old[j].value
		if j == i {
			w = want
		}
		if nw[j].key != old[j].key || nw[j].line != old[j].line || nw[j].value != w {
			return fmt.Errorf("line %d differs", old[j].line)
		}
	}
	return nil
}

// diff shows the lines that differ between a and b, unified-diff style, line endings dropped.
func diff(path string, a, b []byte) string {
	al, bl := splitLines(a), splitLines(b)
	first := 0
	for first < len(al) && first < len(bl) && bytes.Equal(al[first], bl[first]) {
		first++
	}
	la, lb := len(al), len(bl)
	for la > first && lb > first && bytes.Equal(al[la-1], bl[lb-1]) {
		la, lb = la-1, lb-1
	}
	var s strings.Builder
	fmt.Fprintf(&s, "--- %s\n+++ %s\n@@ -%s +%s @@\n", path, path, hunkRange(first, la-first), hunkRange(first, lb-first))
	for _, l := range al[first:la] {
		fmt.Fprintf(&s, "-%s\n", trimEOL(l))
	}
	for _, l := range bl[first:lb] {
		fmt.Fprintf(&s, "+%s\n", trimEOL(l))
	}
	return s.String()
}

func hunkRange(start, n int) string {
	if n == 1 {
		return fmt.Sprint(start + 1)
	}
	return fmt.Sprintf("%d,%d", start+1, n)
}

func splitLines(b []byte) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			out = append(out, b)
			break
		}
		out = append(out, b[:i+1])
		b = b[i+1:]
	}
	return out
}

func trimEOL(l []byte) []byte { return bytes.TrimRight(l, "\r\n") }

// CheckRepository returns an error wrapping ErrOtherRepository unless image (a reference with or
// without tag or digest, such as the update's "127.0.0.1:5000/app:1.1.0") names the same repository as
// the target's image, after normalisation (docker.io/library/ and the like).
func (t *Target) CheckRepository(image string) error {
	ref, err := name.ParseReference(image)
	if err != nil {
		return fmt.Errorf("parsing image %q: %w", image, err)
	}
	mine, err := name.NewRepository(t.Repository)
	if err != nil {
		return fmt.Errorf("service %q: repository %q of %q: %v: %w", t.Service, t.Repository, t.Image, err, ErrUnsupported)
	}
	if ref.Context().Name() != mine.Name() {
		return fmt.Errorf("service %q uses %s, the update is for %s: %w", t.Service, mine.Name(), ref.Context().Name(), ErrOtherRepository)
	}
	return nil
}
