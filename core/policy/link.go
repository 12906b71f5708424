package policy

import (
	"fmt"
	"strings"
)

// LinkData is what a tidewatch.link.template sees. The template may use
// these fields and text/template's builtins, nothing else:
//
//	https://github.com/nginx/nginx/releases/tag/release-{{.Major}}.{{.Minor}}.{{.Patch}}
type LinkData struct {
	// Image is the normalised repository: "index.docker.io/library/nginx".
	Image string
	// Current is the running tag, Candidate the tag offered, both as written.
	Current   string
	Candidate string
	// Major, Minor and Patch are the candidate's numeric parts 0, 1 and 2
	// (after the transform) as written; "" when it has fewer parts.
	Major string
	Minor string
	Patch string
	// Prerelease is the candidate's prerelease ("rc1"), "" for a release.
	Prerelease string
}

// LinkData fills a LinkData for candidate, read through p's transform.
func (p Policy) LinkData(image, current, candidate string) LinkData {
	d := LinkData{Image: image, Current: current, Candidate: candidate}
	if t, ok := ParseTag(p.Transform.Apply(candidate)); ok {
		d.Major, d.Minor, d.Patch, d.Prerelease = t.Part(0), t.Part(1), t.Part(2), t.Prerelease
	}
	return d
}

// RenderLink renders p's link template with d. It returns "" and no error
// when the policy has no link template. Surrounding spaces are trimmed.
func (p Policy) RenderLink(d LinkData) (string, error) {
	if p.Link == nil {
		return "", nil
	}
	var b strings.Builder
	if err := p.Link.Execute(&b, d); err != nil {
		return "", fmt.Errorf("rendering link template for %s:%s: %w", d.Image, d.Candidate, err)
	}
	return strings.TrimSpace(b.String()), nil
}
