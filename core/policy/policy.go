package policy

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/Masterminds/semver/v3"

	"github.com/tidewatch/tidewatch/core"
)

// Policy is one container's watch policy, read from its labels. The zero
// Policy is the default: every tag of the running tag's shape is a
// candidate, no transform, digest watched only for non-versioned tags, no link.
type Policy struct {
	// Include, from tidewatch.tag.include, is a regular expression a candidate
	// tag (as written, before any transform) must match. Nil: every tag.
	Include *regexp.Regexp
	// Exclude, from tidewatch.tag.exclude, is a regular expression a candidate
	// tag (as written) must not match. Nil: none excluded.
	Exclude *regexp.Regexp
	// Transform, from tidewatch.tag.transform, rewrites every tag (the running
	// one and the candidates) before it is parsed and compared. Nil: none.
	Transform *Transform
	// Constraint, from tidewatch.tag.constraint, is a semver range
	// (Masterminds/semver syntax: "~1.4", "^2", ">=2.0, <3", "1.2.x || 2.x")
	// a candidate, read as a version after the transform, must be inside.
	// Nil: every version. See Select for how a tag is read as a semver.
	Constraint *semver.Constraints
	// Digest, from tidewatch.watch.digest, says when the running tag's digest
	// is watched. Default DigestAuto.
	Digest DigestMode
	// Link, from tidewatch.link.template, renders a release-notes link from a
	// LinkData. Nil when unset. FromLabels only accepts a template that fills
	// in fields (see LinkData); one set here by hand is not checked.
	Link *template.Template
	// MinAge, from tidewatch.update.min-age, is a cooldown: triggers act on
	// a candidate only once it is this old (see core.ParseMinAge). 0: none.
	MinAge time.Duration
}

// DigestMode says when the digest of the running tag is watched, to catch a
// tag that was pushed again (a rebuilt "latest" or "1.25").
type DigestMode int

const (
	// DigestAuto (the default, label unset) watches the digest of
	// non-versioned tags ("latest", "stable", "main") only.
	DigestAuto DigestMode = iota
	// DigestOn (label "true") watches the digest whatever the tag.
	DigestOn
	// DigestOff (label "false") never watches the digest.
	DigestOff
)

// String returns "auto", "on" or "off".
func (m DigestMode) String() string {
	switch m {
	case DigestAuto:
		return "auto"
	case DigestOn:
		return "on"
	case DigestOff:
		return "off"
	}
	return "DigestMode(" + strconv.Itoa(int(m)) + ")"
}

// LabelError is a label whose value cannot be used. FromLabels joins one per
// bad label.
type LabelError struct {
	// Label is the label's name ("tidewatch.tag.include").
	Label string
	// Value is the label's value as found.
	Value string
	// Problem says what is wrong with the value.
	Problem string
	// Want says what the label expects.
	Want string
	// Err is the underlying error (a regexp or template error), when there is one.
	Err error
}

// Error reads `label tidewatch.tag.include="(": invalid regular expression: …; want …`.
func (e *LabelError) Error() string {
	s := fmt.Sprintf("label %s=%q: %s", e.Label, e.Value, e.Problem)
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s + "; want " + e.Want
}

// Unwrap returns the underlying error.
func (e *LabelError) Unwrap() error { return e.Err }

// FromLabels reads a container's policy from its labels (core.LabelTagInclude,
// core.LabelTagExclude, core.LabelTagTransform, core.LabelTagConstraint,
// core.LabelWatchDigest, core.LabelLinkTemplate, core.LabelUpdateMinAge). A label that is absent or empty keeps its default.
// Every bad label is reported at once, as *LabelError values joined with
// errors.Join; the Policy returned alongside holds the labels that were good,
// so a caller that goes on with it must still show the error.
func FromLabels(labels map[string]string) (Policy, error) {
	var p Policy
	var errs []error
	bad := func(label, value, problem, want string, err error) {
		errs = append(errs, &LabelError{Label: label, Value: value, Problem: problem, Want: want, Err: err})
	}
	const wantRegexp = "a regular expression in Go (RE2) syntax"

	if v := labels[core.LabelTagInclude]; v != "" {
		re, err := regexp.Compile(v)
		if err != nil {
			bad(core.LabelTagInclude, v, "invalid regular expression", wantRegexp, err)
		}
		p.Include = re
	}
	if v := labels[core.LabelTagExclude]; v != "" {
		re, err := regexp.Compile(v)
		if err != nil {
			bad(core.LabelTagExclude, v, "invalid regular expression", wantRegexp, err)
		}
		p.Exclude = re
	}
	if v := labels[core.LabelTagTransform]; v != "" {
		t, err := ParseTransform(v)
		if err != nil {
			var te *transformError
			if errors.As(err, &te) {
				bad(core.LabelTagTransform, v, te.problem, transformForm, te.err)
			} else {
				bad(core.LabelTagTransform, v, err.Error(), transformForm, nil)
			}
		}
		p.Transform = t
	}
	if v := strings.TrimSpace(labels[core.LabelTagConstraint]); v != "" {
		c, err := ParseConstraint(v)
		if err != nil {
			bad(core.LabelTagConstraint, labels[core.LabelTagConstraint], "invalid constraint", constraintForm, err)
		}
		p.Constraint = c
	}
	if v := strings.TrimSpace(labels[core.LabelWatchDigest]); v != "" {
		on, err := strconv.ParseBool(v)
		switch {
		case err != nil:
			bad(core.LabelWatchDigest, labels[core.LabelWatchDigest], "not a boolean",
				`"true" (always watch the digest) or "false" (never); leave unset to watch it for non-versioned tags only`, nil)
		case on:
			p.Digest = DigestOn
		default:
			p.Digest = DigestOff
		}
	}
	if v := labels[core.LabelLinkTemplate]; v != "" {
		t, err := parseLink(v)
		if err != nil {
			bad(core.LabelLinkTemplate, v, "invalid link template", linkForm, err)
		}
		p.Link = t
	}
	if v := labels[core.LabelUpdateMinAge]; strings.TrimSpace(v) != "" {
		d, err := core.ParseMinAge(v)
		if err != nil {
			bad(core.LabelUpdateMinAge, v, "not a minimum age", core.MinAgeForm, err)
		}
		p.MinAge = d
	}
	return p, errors.Join(errs...)
}

// constraintForm is what tidewatch.tag.constraint expects.
const constraintForm = `a semver range like "~1.4", "^2", ">=2.0, <3" or "1.2.x || 2.x"`

// ParseConstraint reads a semver range with github.com/Masterminds/semver/v3
// ("~1.4", "^2", ">=2.0, <3", "1.2 - 1.4", "1.2.x || 2.x"; at most
// semver.MaxConstraintLen bytes). Any failure of the library, a panic
// included, is an error: a label never stops a watch run.
func ParseConstraint(s string) (c *semver.Constraints, err error) {
	defer func() {
		if r := recover(); r != nil {
			c, err = nil, fmt.Errorf("the semver library failed on it: %v", r)
		}
	}()
	return semver.NewConstraint(s)
}

// transformForm is what tidewatch.tag.transform expects.
const transformForm = `the form "REGEX => REPLACEMENT", e.g. "^(\d+)\.(\d+)-(\d+)$ => $1.$2.$3" ($1 or ${1} names a group)`

// Transform rewrites a tag before it is parsed: when its expression matches
// the tag, the tag becomes the replacement with $1, ${1} or ${name} filled
// from the first match; otherwise the tag is kept as it is.
type Transform struct {
	re   *regexp.Regexp
	repl string
}

// transformError says what is wrong with a transform, for FromLabels.
type transformError struct {
	problem string
	err     error
}

func (e *transformError) Error() string {
	if e.err != nil {
		return e.problem + ": " + e.err.Error()
	}
	return e.problem
}

func (e *transformError) Unwrap() error { return e.err }

// ParseTransform reads a transform written "REGEX => REPLACEMENT" (spaces
// around "=>" are optional; the last "=>" separates the two). The replacement
// must not be empty and may only name groups the expression has.
func ParseTransform(s string) (*Transform, error) {
	i := strings.LastIndex(s, "=>")
	if i < 0 {
		return nil, &transformError{problem: `no "=>" between expression and replacement`}
	}
	expr, repl := strings.TrimSpace(s[:i]), strings.TrimSpace(s[i+2:])
	if expr == "" {
		return nil, &transformError{problem: `empty expression before "=>"`}
	}
	if repl == "" {
		return nil, &transformError{problem: `empty replacement after "=>"`}
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		return nil, &transformError{problem: "invalid regular expression", err: err}
	}
	if err := checkGroups(re, repl); err != nil {
		return nil, &transformError{problem: err.Error()}
	}
	return &Transform{re: re, repl: repl}, nil
}

// checkGroups reports a replacement that names a group re does not have,
// reading "$name" the way regexp.Expand does ("$1a" is the group "1a").
func checkGroups(re *regexp.Regexp, repl string) error {
	for i := 0; i < len(repl); i++ {
		if repl[i] != '$' || i+1 >= len(repl) {
			continue
		}
		rest := repl[i+1:]
		var name string
		switch {
		case rest[0] == '$':
			i++
			continue
		case rest[0] == '{':
			end := strings.IndexByte(rest, '}')
			if end < 0 {
				return fmt.Errorf("unclosed ${ in replacement %q", repl)
			}
			name = rest[1:end]
			i += end + 1
		default:
			n := 0
			for n < len(rest) && (isLetter(rest[n]) || isDigit(rest[n]) || rest[n] == '_') {
				n++
			}
			if n == 0 {
				continue
			}
			name = rest[:n]
			i += n
		}
		if num, err := strconv.Atoi(name); err == nil {
			if num > re.NumSubexp() {
				return fmt.Errorf("replacement names group $%d but the expression has %d", num, re.NumSubexp())
			}
			continue
		}
		if re.SubexpIndex(name) < 0 {
			return fmt.Errorf("replacement names group %q, which the expression does not have (write ${1}x for group 1 followed by x)", name)
		}
	}
	return nil
}

// Apply returns tag rewritten by t; a nil Transform returns tag unchanged.
func (t *Transform) Apply(tag string) string {
	if t == nil {
		return tag
	}
	m := t.re.FindStringSubmatchIndex(tag)
	if m == nil {
		return tag
	}
	return string(t.re.ExpandString(nil, t.repl, tag, m))
}

// String returns the transform as written: "REGEX => REPLACEMENT".
func (t *Transform) String() string {
	if t == nil {
		return ""
	}
	return t.re.String() + " => " + t.repl
}
