package policy

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"text/template"
	"text/template/parse"
	"unicode/utf8"

	"github.com/tidewatch/tidewatch/core"
)

// MaxLinkLen is the most bytes a rendered link may have, surrounding spaces included.
const MaxLinkLen = 2048

// ErrLinkTooLong is returned by RenderLink, wrapped, when the link would be
// longer than MaxLinkLen.
var ErrLinkTooLong = errors.New("link longer than 2048 bytes")

// LinkData is what a tidewatch.link.template sees. A link template is data,
// not code: it may hold text, fields of LinkData printed as they are
// ({{.Candidate}}, not {{.}} or {{.Candidate.X}}), and {{if .Field}} …
// {{else if .Field}} … {{else}} … {{end}} on a field, and nothing else: no
// function calls (builtins such as print, len, index, call included), no
// pipes, variables, literals, range, with, define, block or template.
// FromLabels rejects any other template, so rendering one is bounded:
//
//	https://github.com/nginx/nginx/releases/tag/release-{{.Major}}.{{.Minor}}.{{.Patch}}{{if .Prerelease}}-{{.Prerelease}}{{end}}
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

// linkForm is what tidewatch.link.template expects.
const linkForm = "text with the fields {{.Image}}, {{.Current}}, {{.Candidate}}, {{.Major}}, {{.Minor}}, {{.Patch}}, {{.Prerelease}}, " +
	"optionally inside {{if .Field}}…{{else}}…{{end}}; no functions, pipes, variables, range, with, define or template"

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
// Rendering stops with an error wrapping ErrLinkTooLong past MaxLinkLen bytes.
func (p Policy) RenderLink(d LinkData) (string, error) {
	if p.Link == nil {
		return "", nil
	}
	s, err := renderLink(p.Link, d)
	if err != nil {
		return "", fmt.Errorf("rendering link template for %s:%s: %w", d.Image, d.Candidate, err)
	}
	return strings.TrimSpace(s), nil
}

func renderLink(t *template.Template, d LinkData) (string, error) {
	w := cappedWriter{max: MaxLinkLen}
	if err := t.Execute(&w, d); err != nil {
		return "", err
	}
	return w.b.String(), nil
}

// cappedWriter keeps what is written to it, and fails past max bytes.
type cappedWriter struct {
	b   strings.Builder
	max int
}

func (w *cappedWriter) Write(p []byte) (int, error) {
	if w.b.Len()+len(p) > w.max {
		return 0, ErrLinkTooLong
	}
	return w.b.Write(p)
}

// parseLink parses a link template, checks that it only fills in fields
// (see LinkData), and renders it once with sample data, so that a template
// that cannot render is reported when labels are read.
func parseLink(s string) (*template.Template, error) {
	t, err := template.New(core.LabelLinkTemplate).Option("missingkey=error").Parse(s)
	if err != nil {
		return nil, err
	}
	if len(t.Templates()) > 1 {
		return nil, errors.New("{{define}} and {{block}} are not allowed")
	}
	if t.Tree != nil && t.Tree.Root != nil {
		if err := checkLinkNodes(t.Tree, t.Tree.Root); err != nil {
			return nil, err
		}
	}
	sample := LinkData{
		Image: "index.docker.io/library/nginx", Current: "1.25.3", Candidate: "1.26.0-rc1",
		Major: "1", Minor: "26", Patch: "0", Prerelease: "rc1",
	}
	if _, err := renderLink(t, sample); err != nil {
		return nil, err
	}
	return t, nil
}

// checkLinkNodes reports the first node of list that a link template may not
// hold: only text, actions that print a field, and if on a field are allowed.
func checkLinkNodes(tree *parse.Tree, list *parse.ListNode) error {
	for _, n := range list.Nodes {
		var problem string
		switch n := n.(type) {
		case *parse.TextNode, *parse.CommentNode:
		case *parse.ActionNode:
			problem = checkLinkPipe(n.Pipe)
		case *parse.IfNode:
			if problem = checkLinkPipe(n.Pipe); problem != "" {
				break
			}
			if err := checkLinkNodes(tree, n.List); err != nil {
				return err
			}
			if n.ElseList != nil {
				if err := checkLinkNodes(tree, n.ElseList); err != nil {
					return err
				}
			}
		case *parse.RangeNode:
			problem = "range is not allowed"
		case *parse.WithNode:
			problem = "with is not allowed"
		case *parse.TemplateNode:
			problem = "template and block are not allowed"
		default:
			problem = "not allowed"
		}
		if problem != "" {
			loc, context := tree.ErrorContext(n)
			line, _, _ := strings.Cut(strings.TrimPrefix(loc, tree.ParseName+":"), ":")
			if len(context) > 40 {
				k := 40
				for k > 0 && !utf8.RuneStart(context[k]) {
					k--
				}
				context = context[:k] + "…"
			}
			return fmt.Errorf("%s on line %s: %s", context, line, problem)
		}
	}
	return nil
}

// checkLinkPipe says what is wrong with a pipeline of a link template, ""
// when it is a plain field of LinkData.
func checkLinkPipe(p *parse.PipeNode) string {
	if len(p.Decl) > 0 {
		return "variables are not allowed"
	}
	if len(p.Cmds) != 1 {
		return "pipes are not allowed"
	}
	args := p.Cmds[0].Args
	if len(args) == 0 {
		return "empty action"
	}
	if id, ok := args[0].(*parse.IdentifierNode); ok {
		return fmt.Sprintf("functions such as %s are not allowed", id.Ident)
	}
	if len(args) != 1 {
		return "only a field such as {{.Candidate}} is allowed"
	}
	switch a := args[0].(type) {
	case *parse.FieldNode:
		if len(a.Ident) != 1 {
			return "only a field such as {{.Candidate}} is allowed, not a field of a field"
		}
		if f, ok := reflect.TypeFor[LinkData]().FieldByName(a.Ident[0]); !ok || !f.IsExported() {
			return fmt.Sprintf("LinkData has no field %s", a.Ident[0])
		}
		return ""
	case *parse.VariableNode:
		return "variables are not allowed"
	case *parse.DotNode:
		return "{{.}} is not allowed: name a field, such as {{.Candidate}}"
	}
	return "only a field such as {{.Candidate}} is allowed"
}
