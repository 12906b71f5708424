package composefile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// maxDepth bounds alias and merge chains.
const maxDepth = 64

// maxVisits bounds the work of following merge keys (<<) in one file: the mappings visited over all
// the look-ups of one Locate. Each look-up visits a mapping at most once, however many merges reach
// it, so a real compose file needs a few hundred at most; past the bound, Locate fails with
// ErrTooComplex.
const maxVisits = 10_000

// Locate finds where a service's image is set, from a container's compose labels and opts: the
// project's files (config_files, absolute as compose v2 writes them or relative to working_dir as
// docker-compose 1.29 does, mapped through opts.PathMap; or opts.File), the last of them that sets the
// service's image (following aliases and << merges), and the variable its tag comes from, if any.
// It reads the files but writes nothing.
func Locate(labels map[string]string, opts LocateOptions) (*Target, error) {
	t := &Target{Project: labels[LabelProject], Service: labels[LabelService]}
	if opts.Service != "" {
		t.Service = opts.Service
	}
	if t.Service == "" {
		return nil, fmt.Errorf("locating compose file: no %s label and no service configured: %w", LabelService, ErrNoImage)
	}
	if wd := labels[LabelWorkingDir]; wd != "" {
		t.WorkingDir = Map(opts.PathMap, wd)
	}
	var files []string
	if opts.File != "" {
		for _, f := range strings.Split(opts.File, ",") {
			if f = strings.TrimSpace(f); f == "" {
				continue
			}
			if !filepath.IsAbs(f) && t.WorkingDir != "" {
				f = filepath.Join(t.WorkingDir, f)
			}
			files = append(files, filepath.Clean(f))
		}
	} else {
		for _, f := range strings.Split(labels[LabelConfigFiles], ",") {
			if f = strings.TrimSpace(f); f == "" {
				continue
			}
			if !filepath.IsAbs(f) { // docker-compose 1.29: relative to the working dir, on the host
				if labels[LabelWorkingDir] == "" {
					return nil, fmt.Errorf("locating compose file: %s has relative path %q and no %s", LabelConfigFiles, f, LabelWorkingDir)
				}
				f = filepath.Join(labels[LabelWorkingDir], f)
			}
			files = append(files, Map(opts.PathMap, f))
		}
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("locating compose file of service %q: no %s label and no file configured: %w", t.Service, LabelConfigFiles, ErrNoImage)
	}
	t.Files = files
	if t.WorkingDir == "" {
		t.WorkingDir = filepath.Dir(files[0])
	}

	built, found := false, false
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("reading compose file: %w", err)
		}
		doc, err := parseDoc(src)
		if err != nil {
			return nil, fmt.Errorf("parsing compose file %s: %w", f, err)
		}
		b := &budget{left: maxVisits}
		svc, err := serviceNode(b, doc, t.Service)
		if err != nil {
			return nil, fmt.Errorf("compose file %s: %w", f, err)
		}
		if svc == nil {
			continue
		}
		found = true
		if bn, _, err := b.lookup(svc, "build"); err != nil {
			return nil, fmt.Errorf("compose file %s, service %q: %w", f, t.Service, err)
		} else if bn != nil {
			built = true
		}
		img, raw, err := b.lookup(svc, "image")
		if err != nil {
			return nil, fmt.Errorf("compose file %s, service %q: %w", f, t.Service, err)
		}
		if img == nil || isNull(img) {
			continue
		}
		if img.Kind != yaml.ScalarNode {
			return nil, fmt.Errorf("compose file %s, service %q: image is not a string: %w", f, t.Service, ErrUnsupported)
		}
		t.File, t.src, t.Image = f, src, img.Value
		t.val = valueRef{node: img, raw: raw, doc: doc}
	}
	switch {
	case !found:
		return nil, fmt.Errorf("service %q is in none of %s: %w", t.Service, strings.Join(files, ", "), ErrNoImage)
	case t.File == "" && built:
		return nil, fmt.Errorf("service %q has build: and no image: in %s: %w", t.Service, strings.Join(files, ", "), ErrBuilt)
	case t.File == "":
		var ext string
		if doc, _ := parseFile(files[len(files)-1]); doc != nil {
			b := &budget{left: maxVisits}
			if svc, _ := serviceNode(b, doc, t.Service); svc != nil {
				if e, _, _ := b.lookup(svc, "extends"); e != nil {
					ext = " (it extends another service, which tidewatch does not follow)"
				}
			}
		}
		return nil, fmt.Errorf("service %q has no image: in %s%s: %w", t.Service, strings.Join(files, ", "), ext, ErrNoImage)
	}
	if err := t.locateValue(); err != nil {
		return nil, err
	}
	if err := t.checkSharing(); err != nil {
		return nil, err
	}

	envPath := opts.EnvFile
	if envPath == "" {
		envPath = filepath.Join(t.WorkingDir, ".env")
	}
	t.envPath = envPath
	if b, err := os.ReadFile(envPath); err == nil {
		t.env = b
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("reading env file: %w", err)
	}
	if err := t.parseImage(); err != nil {
		return nil, err
	}
	return t, nil
}

func parseFile(path string) (*yaml.Node, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parseDoc(src)
}

// parseDoc parses a compose file's single YAML document. UTF-16 files and files with several
// documents are refused.
func parseDoc(src []byte) (*yaml.Node, error) {
	if bytes.HasPrefix(src, []byte("\xff\xfe")) || bytes.HasPrefix(src, []byte("\xfe\xff")) {
		return nil, fmt.Errorf("UTF-16 file: %w", ErrUnsupported)
	}
	dec := yaml.NewDecoder(bytes.NewReader(src))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("empty file: %w", ErrNoImage)
		}
		return nil, err
	}
	var more yaml.Node
	if err := dec.Decode(&more); err == nil {
		return nil, fmt.Errorf("several YAML documents in one file: %w", ErrUnsupported)
	} else if !errors.Is(err, io.EOF) {
		return nil, err
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, fmt.Errorf("not a YAML document: %w", ErrNoImage)
	}
	return &doc, nil
}

// resolve follows aliases.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < maxDepth; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// serviceNode returns the mapping of services.<name> in doc, nil when the file does not name it.
func serviceNode(b *budget, doc *yaml.Node, name string) (*yaml.Node, error) {
	root := resolve(doc.Content[0])
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("top level is not a mapping: %w", ErrUnsupported)
	}
	services, _, err := b.lookup(root, "services")
	if err != nil || services == nil || isNull(services) {
		return nil, err
	}
	if services.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("services is not a mapping: %w", ErrUnsupported)
	}
	svc, _, err := b.lookup(services, name)
	if err != nil || svc == nil || isNull(svc) {
		return nil, err
	}
	if svc.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("service %q is not a mapping: %w", name, ErrUnsupported)
	}
	return svc, nil
}

// budget is what is left of maxVisits for the look-ups in one file.
type budget struct{ left int }

// lookup finds key in mapping m as YAML merges see it: a key of m itself, else the first merged
// mapping (<<: *a or <<: [*a, *b]) that has it, depth first. It returns the value with aliases
// resolved, and the value node as written (an alias node, when the value is an alias). A mapping
// that several merges reach is visited once: the first visit did not find key in it, nor will a
// second. It fails with ErrTooComplex when the file's budget is spent.
func (b *budget) lookup(m *yaml.Node, key string) (val, raw *yaml.Node, err error) {
	return b.find(m, key, 0, map[*yaml.Node]bool{})
}

func (b *budget) find(m *yaml.Node, key string, depth int, seen map[*yaml.Node]bool) (val, raw *yaml.Node, err error) {
	if depth > maxDepth {
		return nil, nil, fmt.Errorf("merges nested too deep: %w", ErrUnsupported)
	}
	m = resolve(m)
	if m == nil || m.Kind != yaml.MappingNode || seen[m] {
		return nil, nil, nil
	}
	seen[m] = true
	if b.left--; b.left < 0 {
		return nil, nil, fmt.Errorf("following merge keys (<<) visits more than %d mappings: %w", maxVisits, ErrTooComplex)
	}
	var merges []*yaml.Node
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.Tag == "!!merge" {
			merges = append(merges, v)
			continue
		}
		if k.Kind == yaml.ScalarNode && k.Value == key {
			if raw != nil {
				return nil, nil, fmt.Errorf("key %q appears twice: %w", key, ErrUnsupported)
			}
			raw = v
		}
	}
	if raw != nil {
		return resolve(raw), raw, nil
	}
	for _, mv := range merges {
		mv = resolve(mv)
		srcs := []*yaml.Node{mv}
		if mv.Kind == yaml.SequenceNode {
			srcs = mv.Content
		}
		for _, s := range srcs {
			v, r, err := b.find(s, key, depth+1, seen)
			if err != nil || v != nil {
				return v, r, err
			}
		}
	}
	return nil, nil, nil
}

// checkSharing fills t.Shared and refuses an image value that something other than services' images
// (or a top-level x- extension field, where anchors are usually defined) would see change.
func (t *Target) checkSharing() error {
	doc := t.val.doc
	root := resolve(doc.Content[0])
	b := &budget{left: maxVisits}
	services, _, err := b.lookup(root, "services")
	if err != nil {
		return err
	}
	imageRaws := map[*yaml.Node]bool{}
	if services != nil && services.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(services.Content); i += 2 {
			name := services.Content[i].Value
			svc := resolve(services.Content[i+1])
			if svc == nil || svc.Kind != yaml.MappingNode {
				continue
			}
			img, raw, err := b.lookup(svc, "image")
			if errors.Is(err, ErrTooComplex) {
				return err
			}
			if err != nil || img == nil {
				continue
			}
			imageRaws[raw] = true
			if img == t.val.node && name != t.Service {
				t.Shared = append(t.Shared, name)
			}
		}
	}
	slices.Sort(t.Shared)
	t.Shared = slices.Compact(t.Shared)
	if t.val.node.Anchor == "" {
		return nil
	}
	// Every alias of the anchored value must be a service's image, and the anchor itself must be a
	// service's image or inside a top-level x- field.
	var bad []string
	var walk func(n *yaml.Node, path string, inExt bool)
	walk = func(n *yaml.Node, path string, inExt bool) {
		if n == nil {
			return
		}
		if n.Kind == yaml.AliasNode {
			if n.Alias == t.val.node && !imageRaws[n] {
				bad = append(bad, fmt.Sprintf("*%s at line %d", n.Value, n.Line))
			}
			return
		}
		if n == t.val.node && !imageRaws[n] && !inExt {
			bad = append(bad, fmt.Sprintf("&%s at line %d", n.Anchor, n.Line))
		}
		for i, c := range n.Content {
			ext := inExt
			if n == root && n.Kind == yaml.MappingNode && i%2 == 1 && strings.HasPrefix(n.Content[i-1].Value, "x-") {
				ext = true
			}
			walk(c, path, ext)
		}
	}
	walk(doc, "", false)
	if len(bad) > 0 {
		return fmt.Errorf("image of service %q is anchor &%s, also used outside services' images (%s): %w",
			t.Service, t.val.node.Anchor, strings.Join(bad, ", "), ErrUnsupported)
	}
	return nil
}
