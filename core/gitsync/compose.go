package gitsync

import (
	"bytes"
	"context"
	"fmt"
	"path"
	"reflect"
	"regexp"
	"slices"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"go.yaml.in/yaml/v3"
)

// Bounds of a diff.
const (
	// MaxComposeSize bounds a compose or .env file read from git (1 MiB);
	// a larger one is reported, not read.
	MaxComposeSize = 1 << 20
	// maxDiffFiles bounds the changed files looked at in one diff.
	maxDiffFiles = 10000
)

// File statuses of a FileDiff.
const (
	Added    = "added"
	Modified = "modified"
	Deleted  = "deleted"
)

// FileDiff is one compose file that differs between two commits.
type FileDiff struct {
	// Path is the file's path under the source's Path, with slashes.
	Path string
	// Status is Added, Modified or Deleted. A compose file whose folder's
	// .env changed is Modified.
	Status string
	// Added, Removed and Changed are the services added, removed, and
	// changed (their YAML, normalised: comments, whitespace, quoting style,
	// key order and anchors do not count), sorted.
	Added, Removed, Changed []string
	// Other are the changed top-level keys other than services (networks,
	// volumes, configs, secrets, x-…), sorted.
	Other []string
	// Env are the variables of the folder's .env that changed, sorted;
	// services that interpolate one of them are in Changed.
	Env []string
	// Error says why the file could not be compared (too large, not YAML,
	// a symlink); the deployer should treat every service as changed.
	Error string
}

// Services returns every service the diff touches: added, changed and
// removed.
func (d FileDiff) Services() []string {
	s := slices.Concat(d.Added, d.Changed, d.Removed)
	slices.Sort(s)
	return slices.Compact(s)
}

var composeName = regexp.MustCompile(`^(docker-)?compose(\.[A-Za-z0-9_.-]+)?\.ya?ml$`)

// IsComposeFile reports whether a file name is a compose file's:
// compose.yaml, docker-compose.yml, compose.override.yaml, and so on.
func IsComposeFile(name string) bool { return composeName.MatchString(path.Base(name)) }

// diffCompose compares the compose files (and .env files) of two trees.
func diffCompose(ctx context.Context, s storer.EncodedObjectStorer, from, to *object.Tree) ([]FileDiff, error) {
	changes, err := object.DiffTreeContext(ctx, from, to)
	if err != nil {
		return nil, fmt.Errorf("comparing trees: %w", err)
	}
	if len(changes) > maxDiffFiles {
		return nil, fmt.Errorf("comparing trees: more than %d files changed: %w", maxDiffFiles, ErrTooLarge)
	}
	byPath := map[string]*FileDiff{}
	var envDirs []string
	envChanged := map[string][]string{}
	for _, ch := range changes {
		name := ch.To.Name
		if name == "" {
			name = ch.From.Name
		}
		base := path.Base(name)
		switch {
		case IsComposeFile(base):
			d := compareCompose(s, name, ch.From, ch.To)
			if d.Status == Modified && d.Error == "" && len(d.Added)+len(d.Removed)+len(d.Changed)+len(d.Other) == 0 {
				continue // only comments or layout changed
			}
			byPath[name] = &d
		case base == ".env":
			old, errOld := entryContent(s, ch.From)
			cur, errNew := entryContent(s, ch.To)
			dir := path.Dir(name)
			envDirs = append(envDirs, dir)
			if errOld != nil || errNew != nil {
				envChanged[dir] = nil // unknown: every service
				continue
			}
			envChanged[dir] = changedVars(parseDotEnv(old), parseDotEnv(cur))
		}
	}
	// A changed .env changes the services of its folder's compose files
	// that interpolate a changed variable.
	for _, dir := range envDirs {
		vars := envChanged[dir]
		if vars != nil && len(vars) == 0 {
			continue // only comments or layout changed
		}
		t := to
		if dir != "." {
			if t, err = to.Tree(dir); err != nil {
				continue // the folder is gone: its compose files are Deleted already
			}
		}
		for _, e := range t.Entries {
			name := path.Join(dir, e.Name)
			if !e.Mode.IsFile() || !IsComposeFile(e.Name) {
				continue
			}
			d := byPath[name]
			if d == nil {
				d = &FileDiff{Path: name, Status: Modified}
				byPath[name] = d
			}
			if d.Status != Modified {
				continue // an added file's services are all Added already
			}
			d.Env = vars
			content, err := entryContent(s, object.ChangeEntry{Name: name, TreeEntry: e})
			if err != nil {
				d.Error = err.Error()
				continue
			}
			services, _, err := parseCompose(content)
			if err != nil {
				d.Error = err.Error()
				continue
			}
			for svc, v := range services {
				if vars == nil || mentionsAny(v, vars) {
					d.Changed = append(d.Changed, svc)
				}
			}
			d.Changed = sortedUnique(slices.DeleteFunc(d.Changed, func(s string) bool { return slices.Contains(d.Added, s) }))
		}
	}
	var out []FileDiff
	for _, d := range byPath {
		if len(d.Changed) == 0 {
			d.Changed = nil
		}
		out = append(out, *d)
	}
	slices.SortFunc(out, func(a, b FileDiff) int { return strings.Compare(a.Path, b.Path) })
	return out, nil
}

// compareCompose compares two versions of a compose file.
func compareCompose(s storer.EncodedObjectStorer, name string, from, to object.ChangeEntry) FileDiff {
	d := FileDiff{Path: name, Status: Modified}
	switch {
	case from.Name == "":
		d.Status = Added
	case to.Name == "":
		d.Status = Deleted
	}
	var oldSvc, newSvc, oldTop, newTop map[string]any
	if from.Name != "" {
		c, err := entryContent(s, from)
		if err == nil {
			oldSvc, oldTop, err = parseCompose(c)
		}
		if err != nil && to.Name == "" {
			d.Error = "previous version: " + err.Error()
			return d
		}
	}
	if to.Name != "" {
		c, err := entryContent(s, to)
		if err == nil {
			newSvc, newTop, err = parseCompose(c)
		}
		if err != nil {
			d.Error = err.Error()
			return d
		}
	}
	for name, v := range newSvc {
		old, ok := oldSvc[name]
		switch {
		case !ok:
			d.Added = append(d.Added, name)
		case !reflect.DeepEqual(old, v):
			d.Changed = append(d.Changed, name)
		}
	}
	for name := range oldSvc {
		if _, ok := newSvc[name]; !ok {
			d.Removed = append(d.Removed, name)
		}
	}
	for k, v := range newTop {
		if old, ok := oldTop[k]; !ok || !reflect.DeepEqual(old, v) {
			d.Other = append(d.Other, k)
		}
	}
	for k := range oldTop {
		if _, ok := newTop[k]; !ok {
			d.Other = append(d.Other, k)
		}
	}
	d.Added, d.Removed, d.Changed, d.Other = sortedUnique(d.Added), sortedUnique(d.Removed), sortedUnique(d.Changed), sortedUnique(d.Other)
	return d
}

// entryContent reads a file entry of a change, refusing symlinks (which
// could lead out of the repository), submodules and large files.
func entryContent(s storer.EncodedObjectStorer, e object.ChangeEntry) ([]byte, error) {
	if e.Name == "" {
		return nil, nil
	}
	if e.TreeEntry.Mode != filemode.Regular && e.TreeEntry.Mode != filemode.Executable {
		return nil, fmt.Errorf("%s is not a regular file (mode %s)", e.Name, e.TreeEntry.Mode)
	}
	return blobContent(s, e.TreeEntry.Hash, MaxComposeSize)
}

// parseCompose decodes a compose file into its services and its other
// top-level keys, as plain values: comments, layout, quoting, key order,
// anchors and merge keys leave no trace, so that equal values mean equal
// YAML. An empty file has no services.
func parseCompose(content []byte) (services, top map[string]any, err error) {
	var doc map[string]any
	if err := yaml.Unmarshal(content, &doc); err != nil {
		return nil, nil, fmt.Errorf("not valid YAML: %w", err)
	}
	services = map[string]any{}
	top = map[string]any{}
	for k, v := range doc {
		if k != "services" {
			top[k] = v
			continue
		}
		if v == nil {
			continue
		}
		m, ok := v.(map[string]any)
		if !ok {
			return nil, nil, fmt.Errorf("services is not a mapping")
		}
		for name, svc := range m {
			services[name] = svc
		}
	}
	return services, top, nil
}

// parseDotEnv reads KEY=VALUE lines as compose reads a .env file, closely
// enough to tell which variables changed: comments, blank lines and an
// "export " prefix are skipped; values are compared as written.
func parseDotEnv(b []byte) map[string]string {
	vars := map[string]string{}
	for _, line := range bytes.Split(b, []byte("\n")) {
		l := strings.TrimSpace(string(line))
		l = strings.TrimPrefix(l, "export ")
		if l == "" || l[0] == '#' {
			continue
		}
		k, v, _ := strings.Cut(l, "=")
		vars[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	return vars
}

func changedVars(old, cur map[string]string) []string {
	var out []string
	for k, v := range cur {
		if o, ok := old[k]; !ok || o != v {
			out = append(out, k)
		}
	}
	for k := range old {
		if _, ok := cur[k]; !ok {
			out = append(out, k)
		}
	}
	if out == nil {
		out = []string{}
	}
	return sortedUnique(out)
}

// mentionsAny reports whether a decoded service interpolates one of vars
// ($VAR or ${VAR...}).
func mentionsAny(v any, vars []string) bool {
	b, err := yaml.Marshal(v)
	if err != nil {
		return true
	}
	text := string(b)
	for _, name := range vars {
		for i := 0; ; {
			j := strings.Index(text[i:], "$")
			if j < 0 {
				break
			}
			rest := text[i+j+1:]
			rest = strings.TrimPrefix(rest, "{")
			if strings.HasPrefix(rest, name) && (len(rest) == len(name) || !isIdent(rest[len(name)])) {
				return true
			}
			i += j + 1
		}
	}
	return false
}

func isIdent(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func sortedUnique(s []string) []string {
	slices.Sort(s)
	return slices.Compact(s)
}
