package policy

import (
	"errors"
	"regexp/syntax"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tidewatch/tidewatch/core"
)

func TestFromLabels(t *testing.T) {
	labels := map[string]string{
		core.LabelTagInclude:   `^\d+\.\d+\.\d+$`,
		core.LabelTagExclude:   `^2\.`,
		core.LabelTagTransform: `^(\d+)\.(\d+)-(\d+)$ => $1.$2.$3`,
		core.LabelWatchDigest:  "true",
		core.LabelLinkTemplate: `https://example.com/{{.Major}}.{{.Minor}}`,
		"unrelated":            "x",
	}
	p, err := FromLabels(labels)
	if err != nil {
		t.Fatalf("FromLabels(%v): %v", labels, err)
	}
	if p.Include == nil || p.Include.String() != labels[core.LabelTagInclude] {
		t.Errorf("FromLabels(...).Include = %v, want %s", p.Include, labels[core.LabelTagInclude])
	}
	if p.Exclude == nil || p.Exclude.String() != labels[core.LabelTagExclude] {
		t.Errorf("FromLabels(...).Exclude = %v, want %s", p.Exclude, labels[core.LabelTagExclude])
	}
	if got := p.Transform.Apply("1.2-3"); got != "1.2.3" {
		t.Errorf("FromLabels(...).Transform.Apply(1.2-3) = %q, want 1.2.3", got)
	}
	if p.Digest != DigestOn {
		t.Errorf("FromLabels(...).Digest = %v, want on", p.Digest)
	}
	got, err := p.RenderLink(LinkData{Major: "1", Minor: "26"})
	if err != nil || got != "https://example.com/1.26" {
		t.Errorf("FromLabels(...).RenderLink() = %q, %v, want https://example.com/1.26", got, err)
	}
}

func TestFromLabelsDefaults(t *testing.T) {
	for _, labels := range []map[string]string{
		nil,
		{},
		{core.LabelTagInclude: "", core.LabelTagExclude: "", core.LabelTagTransform: "", core.LabelWatchDigest: " ", core.LabelLinkTemplate: ""},
	} {
		p, err := FromLabels(labels)
		if err != nil {
			t.Fatalf("FromLabels(%v): %v", labels, err)
		}
		if p.Include != nil || p.Exclude != nil || p.Transform != nil || p.Digest != DigestAuto || p.Link != nil {
			t.Errorf("FromLabels(%v) = %+v, want the zero Policy", labels, p)
		}
	}
}

func TestFromLabelsDigest(t *testing.T) {
	tests := []struct {
		value string
		want  DigestMode
	}{
		{"true", DigestOn}, {"TRUE", DigestOn}, {"1", DigestOn}, {" true ", DigestOn},
		{"false", DigestOff}, {"False", DigestOff}, {"0", DigestOff},
	}
	for _, tc := range tests {
		p, err := FromLabels(map[string]string{core.LabelWatchDigest: tc.value})
		if err != nil || p.Digest != tc.want {
			t.Errorf("FromLabels(%s=%q).Digest = %v, %v, want %v", core.LabelWatchDigest, tc.value, p.Digest, err, tc.want)
		}
	}
}

func TestFromLabelsErrors(t *testing.T) {
	tests := []struct {
		name  string
		label string
		value string
		want  []string // substrings of the error
	}{
		{"include regex", core.LabelTagInclude, `(`, []string{`label tidewatch.tag.include="("`, "invalid regular expression", "missing closing )", "want a regular expression"}},
		{"exclude regex", core.LabelTagExclude, `[a-`, []string{`label tidewatch.tag.exclude="[a-"`, "invalid regular expression", "want a regular expression"}},
		{"transform without arrow", core.LabelTagTransform, `^(\d+)$ $1`, []string{"tidewatch.tag.transform", `no "=>"`, `want the form "REGEX => REPLACEMENT"`}},
		{"transform empty replacement", core.LabelTagTransform, `^(\d+)$ =>`, []string{"tidewatch.tag.transform", "empty replacement", "REGEX => REPLACEMENT"}},
		{"transform empty regex", core.LabelTagTransform, ` => $1`, []string{"tidewatch.tag.transform", "empty expression", "REGEX => REPLACEMENT"}},
		{"transform bad regex", core.LabelTagTransform, `^(\d+ => $1`, []string{"tidewatch.tag.transform", "invalid regular expression", "missing closing )"}},
		{"transform missing group", core.LabelTagTransform, `^(\d+)\.(\d+)$ => $1.$2.$3`, []string{"tidewatch.tag.transform", "names group $3 but the expression has 2"}},
		{"transform ambiguous group", core.LabelTagTransform, `^(\d+)$ => $1a`, []string{"tidewatch.tag.transform", `names group "1a"`, "${1}"}},
		{"digest not a bool", core.LabelWatchDigest, "maybe", []string{`label tidewatch.watch.digest="maybe"`, "not a boolean", `want "true"`}},
		{"link does not parse", core.LabelLinkTemplate, "{{.Major", []string{"tidewatch.link.template", "invalid link template", "unclosed action"}},
		{"link unknown field", core.LabelLinkTemplate, "{{.Version}}", []string{"tidewatch.link.template", "Version", ".Major"}},
		{"link unknown function", core.LabelLinkTemplate, "{{upper .Major}}", []string{"tidewatch.link.template", `function "upper" not defined`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := FromLabels(map[string]string{tc.label: tc.value})
			if err == nil {
				t.Fatalf("FromLabels(%s=%q) = nil error, want an error", tc.label, tc.value)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("FromLabels(%s=%q) = %q, want it to contain %q", tc.label, tc.value, err, w)
				}
			}
			var le *LabelError
			if !errors.As(err, &le) || le.Label != tc.label || le.Value != tc.value {
				t.Errorf("FromLabels(%s=%q) error %v: want a *LabelError for that label and value, got %+v", tc.label, tc.value, err, le)
			}
		})
	}
}

func TestFromLabelsReportsEveryError(t *testing.T) {
	labels := map[string]string{
		core.LabelTagInclude:   "(",
		core.LabelTagExclude:   "^2\\.", // good
		core.LabelTagTransform: "nothing",
		core.LabelWatchDigest:  "maybe",
		core.LabelLinkTemplate: "{{",
	}
	p, err := FromLabels(labels)
	var got []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var le *LabelError
		if !errors.As(e, &le) {
			t.Fatalf("FromLabels error %v is not a *LabelError", e)
		}
		got = append(got, le.Label)
	}
	want := []string{core.LabelTagInclude, core.LabelTagTransform, core.LabelWatchDigest, core.LabelLinkTemplate}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("FromLabels(...) errors by label (-want +got):\n%s", diff)
	}
	if p.Exclude == nil || !p.Exclude.MatchString("2.0") {
		t.Errorf("FromLabels(...).Exclude = %v, want the good label kept", p.Exclude)
	}
}

func TestRegexpErrorUnwraps(t *testing.T) {
	_, err := FromLabels(map[string]string{core.LabelTagInclude: "a**"})
	var re *syntax.Error
	if !errors.As(err, &re) {
		t.Errorf("FromLabels(include=a**) = %v, want it to wrap the *syntax.Error", err)
	}
}

func TestTransformApply(t *testing.T) {
	tests := []struct {
		transform, in, want string
	}{
		{`^(\d+)\.(\d+)-(\d+)$ => $1.$2.$3`, "1.2-3", "1.2.3"},
		{`^(\d+)\.(\d+)-(\d+)$ => $1.$2.$3`, "1.2.3", "1.2.3"},
		{`^(\d+)\.(\d+)-(\d+)$ => $1.$2.$3`, "latest", "latest"},
		{`^(\d+)\.(\d+)-(\d+)$=>$1.$2.$3`, "1.2-3", "1.2.3"},
		{`^v?(\d+)_(\d+)$ => ${1}.${2}.0`, "v4_5", "4.5.0"},
		{`^(?P<maj>\d+)x(?P<min>\d+)$ => ${maj}.${min}`, "4x5", "4.5"},
		{`^release-(.*)$ => $1`, "release-1.0", "1.0"},
		{`(\d+)-(\d+) => $1.$2`, "build-7-3-final", "7.3"}, // the replacement is the whole result
		{`^a=>b$ => $$x`, "a=>b", "$x"},
	}
	for _, tc := range tests {
		tr := mustTransform(t, tc.transform)
		if got := tr.Apply(tc.in); got != tc.want {
			t.Errorf("ParseTransform(%q).Apply(%q) = %q, want %q", tc.transform, tc.in, got, tc.want)
		}
	}
	var nilT *Transform
	if got := nilT.Apply("1.2-3"); got != "1.2-3" {
		t.Errorf("(*Transform)(nil).Apply(1.2-3) = %q, want it unchanged", got)
	}
}

func TestWatches(t *testing.T) {
	tr := mustTransform(t, `^release-(\d+)$ => $1.0`)
	tests := []struct {
		current   string
		policy    Policy
		tags, dig bool
	}{
		{"1.25.3", Policy{}, true, false},
		{"1.25-alpine", Policy{}, true, false},
		{"v2", Policy{}, true, false},
		{"latest", Policy{}, false, true},
		{"stable", Policy{}, false, true},
		{"main", Policy{}, false, true},
		{"alpine", Policy{}, false, true},
		{"noble", Policy{}, false, true},
		{"1.25.3", Policy{Digest: DigestOn}, true, true},
		{"latest", Policy{Digest: DigestOn}, false, true},
		{"latest", Policy{Digest: DigestOff}, false, false},
		{"1.25.3", Policy{Digest: DigestOff}, true, false},
		{"release-5", Policy{}, true, false},
		{"release-5", Policy{Transform: tr}, true, false},
		{"sha-1234567", Policy{}, false, true},
		{"git-8f42488", Policy{}, false, true},
	}
	for _, tc := range tests {
		if got := tc.policy.WatchesTags(tc.current); got != tc.tags {
			t.Errorf("Policy{Digest: %v}.WatchesTags(%s) = %v, want %v", tc.policy.Digest, tc.current, got, tc.tags)
		}
		if got := tc.policy.WatchesDigest(tc.current); got != tc.dig {
			t.Errorf("Policy{Digest: %v}.WatchesDigest(%s) = %v, want %v", tc.policy.Digest, tc.current, got, tc.dig)
		}
		if got := Select(tc.current, nil, tc.policy).Versioned; got != tc.tags {
			t.Errorf("Select(%s, nil).Versioned = %v, want %v", tc.current, got, tc.tags)
		}
	}
}

func TestRenderLink(t *testing.T) {
	p, err := FromLabels(map[string]string{
		core.LabelLinkTemplate: ` https://github.com/nginx/nginx/releases/tag/release-{{.Major}}.{{.Minor}}.{{.Patch}}{{if .Prerelease}}-{{.Prerelease}}{{end}}?from={{.Current}}&img={{.Image}} `,
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		candidate string
		want      string
	}{
		{"1.26.0-alpine", "https://github.com/nginx/nginx/releases/tag/release-1.26.0?from=1.25.3&img=nginx"},
		{"v2.0.1-rc2", "https://github.com/nginx/nginx/releases/tag/release-2.0.1-rc2?from=1.25.3&img=nginx"},
		{"1.27", "https://github.com/nginx/nginx/releases/tag/release-1.27.?from=1.25.3&img=nginx"},
		{"latest", "https://github.com/nginx/nginx/releases/tag/release-..?from=1.25.3&img=nginx"},
	}
	for _, tc := range tests {
		got, err := p.RenderLink(p.LinkData("nginx", "1.25.3", tc.candidate))
		if err != nil || got != tc.want {
			t.Errorf("RenderLink(%s) = %q, %v, want %q", tc.candidate, got, err, tc.want)
		}
	}
	if got, err := (Policy{}).RenderLink(LinkData{Candidate: "1.0"}); got != "" || err != nil {
		t.Errorf("Policy{}.RenderLink() = %q, %v, want \"\", nil", got, err)
	}
}

func TestLinkDataThroughTransform(t *testing.T) {
	p := Policy{Transform: mustTransform(t, `^(\d+)\.(\d+)-(\d+)$ => $1.$2.$3`)}
	want := LinkData{Image: "img", Current: "1.2-3", Candidate: "1.3-1", Major: "1", Minor: "3", Patch: "1"}
	if diff := cmp.Diff(want, p.LinkData("img", "1.2-3", "1.3-1")); diff != "" {
		t.Errorf("LinkData(img, 1.2-3, 1.3-1) mismatch (-want +got):\n%s", diff)
	}
}

func TestDigestModeString(t *testing.T) {
	for m, want := range map[DigestMode]string{DigestAuto: "auto", DigestOn: "on", DigestOff: "off", 7: "DigestMode(7)"} {
		if got := m.String(); got != want {
			t.Errorf("DigestMode(%d).String() = %q, want %q", int(m), got, want)
		}
	}
}

func TestLinkTemplateRejected(t *testing.T) {
	tests := []struct {
		name     string
		template string
		problem  string
	}{
		{"range over a number", "{{range 100000000000}}{{end}}", "range is not allowed"},
		{"range over a field", "{{range .Major}}x{{end}}", "range is not allowed"},
		{"with", "{{with .Major}}{{.}}{{end}}", "with is not allowed"},
		{"template", `{{template "x"}}`, "template and block are not allowed"},
		{"define", `{{define "x"}}{{.Major}}{{end}}{{template "x" .}}`, "{{define}} and {{block}} are not allowed"},
		{"block", `{{block "x" .}}{{.Major}}{{end}}`, "{{define}} and {{block}} are not allowed"},
		{"variable", "{{$x := .Major}}{{$x}}", "variables are not allowed"},
		{"root variable", "{{$}}", "variables are not allowed"},
		{"assignment", "{{$x := 1}}{{$x = 2}}", "variables are not allowed"},
		{"print", "{{print .Major}}", "functions such as print are not allowed"},
		{"printf", `{{printf "%s" .Major}}`, "functions such as printf are not allowed"},
		{"len", "{{len .Major}}", "functions such as len are not allowed"},
		{"index", "{{index .Major 0}}", "functions such as index are not allowed"},
		{"call", "{{call .Major}}", "functions such as call are not allowed"},
		{"urlquery", "{{urlquery .Candidate}}", "functions such as urlquery are not allowed"},
		{"pipe", "{{.Major | print}}", "pipes are not allowed"},
		{"dot", "{{.}}", "{{.}} is not allowed"},
		{"literal", `{{"x"}}`, "only a field"},
		{"parentheses", "{{(.Major)}}", "only a field"},
		{"field of a field", "{{.Major.Len}}", "not a field of a field"},
		{"unknown field", "{{.Version}}", "LinkData has no field Version"},
		{"function in a condition", "{{if len .Major}}x{{end}}", "functions such as len are not allowed"},
		{"literal condition", "{{if true}}x{{end}}", "only a field"},
		{"range inside if", "{{if .Major}}{{range .Minor}}{{end}}{{end}}", "range is not allowed"},
		{"with inside else", "{{if .Major}}a{{else}}{{with .Minor}}b{{end}}{{end}}", "with is not allowed"},
		{"function inside else", "{{if .Major}}a{{else}}{{print .Minor}}{{end}}", "functions such as print are not allowed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := FromLabels(map[string]string{core.LabelLinkTemplate: tc.template})
			if err == nil {
				t.Fatalf("FromLabels(%s=%q) = nil error, want one saying %q", core.LabelLinkTemplate, tc.template, tc.problem)
			}
			for _, w := range []string{`label tidewatch.link.template=`, "invalid link template", tc.problem, "want text with the fields {{.Image}}", "no functions"} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("FromLabels(%s=%q) = %q, want it to contain %q", core.LabelLinkTemplate, tc.template, err, w)
				}
			}
			if p.Link != nil {
				t.Errorf("FromLabels(%s=%q).Link = %v, want nil", core.LabelLinkTemplate, tc.template, p.Link)
			}
		})
	}
}

func TestLinkTemplateRangeDoesNotHang(t *testing.T) {
	labels := map[string]string{core.LabelLinkTemplate: "{{range 100000000000}}{{end}}"}
	done := make(chan error, 1)
	go func() {
		_, err := FromLabels(labels)
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "range is not allowed") {
			t.Errorf("FromLabels(%v) = %v, want range is not allowed", labels, err)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("FromLabels(%v) still running after 5s", labels)
	}
}

func TestLinkTemplateAllowed(t *testing.T) {
	d := LinkData{Image: "nginx", Current: "1.25.3", Candidate: "1.26.0-rc1", Major: "1", Minor: "26", Patch: "0", Prerelease: "rc1"}
	tests := []struct {
		template string
		want     string
	}{
		{"https://example.com/notes", "https://example.com/notes"},
		{"{{.Image}}/{{.Current}}/{{.Candidate}}/{{.Major}}/{{.Minor}}/{{.Patch}}/{{.Prerelease}}", "nginx/1.25.3/1.26.0-rc1/1/26/0/rc1"},
		{"v{{- .Major -}} . {{- .Minor}}", "v1.26"},
		{"{{/* a comment */}}x{{.Major}}", "x1"},
		{"{{if .Prerelease}}pre-{{.Prerelease}}{{else}}rel{{end}}", "pre-rc1"},
		{"{{if .Image}}{{if .Patch}}{{.Patch}}{{end}}{{end}}", "0"},
		{"{{if .Current}}{{else if .Major}}m{{else}}e{{end}}x", "x"},
		{"  {{.Candidate}}\n", "1.26.0-rc1"},
	}
	for _, tc := range tests {
		p, err := FromLabels(map[string]string{core.LabelLinkTemplate: tc.template})
		if err != nil {
			t.Errorf("FromLabels(%s=%q): %v", core.LabelLinkTemplate, tc.template, err)
			continue
		}
		if got, err := p.RenderLink(d); err != nil || got != tc.want {
			t.Errorf("RenderLink(%q) = %q, %v, want %q", tc.template, got, err, tc.want)
		}
	}
}

func TestRenderLinkTooLong(t *testing.T) {
	long := strings.Repeat("a", MaxLinkLen-len("https://x/"))
	p, err := FromLabels(map[string]string{core.LabelLinkTemplate: "https://x/{{.Candidate}}"})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := p.RenderLink(LinkData{Candidate: long}); err != nil || len(got) != MaxLinkLen {
		t.Errorf("RenderLink(candidate of %d bytes) = %d bytes, %v, want %d bytes", len(long), len(got), err, MaxLinkLen)
	}
	got, err := p.RenderLink(LinkData{Candidate: long + "a"})
	if !errors.Is(err, ErrLinkTooLong) || got != "" {
		t.Errorf("RenderLink(candidate of %d bytes) = %q, %v, want ErrLinkTooLong", len(long)+1, got, err)
	}

	// A template whose own text is too long is refused when labels are read.
	tmpl := strings.Repeat("x", MaxLinkLen+1)
	if _, err := FromLabels(map[string]string{core.LabelLinkTemplate: tmpl}); !errors.Is(err, ErrLinkTooLong) {
		t.Errorf("FromLabels(%s=%d bytes) = %v, want ErrLinkTooLong", core.LabelLinkTemplate, len(tmpl), err)
	}
}

func TestRequestKind(t *testing.T) {
	tests := []struct {
		current, requested string
		want               core.UpdateKind
	}{
		{"1.0.0", "1.1.0", core.KindMinor},
		{"1.1.0", "1.0.0", core.KindMinor}, // a step back
		{"1.0.0", "2.0.0", core.KindMajor},
		{"1.0.0", "1.0.1", core.KindPatch},
		{"latest", "latest", core.KindDigest},
		{"main", "sha-1234abc", core.KindMajor},
		{"1.25-alpine", "1.26", core.KindMajor}, // another shape
		{"1.0", "1.0.0", core.KindMajor},
	}
	for _, tc := range tests {
		if got := RequestKind(tc.current, tc.requested); got != tc.want {
			t.Errorf("RequestKind(%s, %s) = %q, want %q", tc.current, tc.requested, got, tc.want)
		}
	}
}
