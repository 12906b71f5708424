package core

import (
	"fmt"
	"strings"
)

// DockerHub is the canonical registry host of Docker Hub, as go-containerregistry names it.
const DockerHub = "index.docker.io"

// ImageRef is a parsed, normalised image reference: registry host, repository
// path, and the tag and/or digest it names. Docker Hub names are normalised
// (`nginx` → `index.docker.io/library/nginx`).
type ImageRef struct {
	// Registry is the registry host, with port when one is given ("127.0.0.1:5000").
	Registry string `json:"registry"`
	// Repository is the path within the registry ("library/nginx").
	Repository string `json:"repository"`
	// Tag is the tag, "latest" when the reference names neither tag nor digest.
	Tag string `json:"tag,omitempty"`
	// Digest is the pinned digest ("sha256:…") when the reference carries one.
	Digest string `json:"digest,omitempty"`
}

// Repo returns the full repository name, registry included: "index.docker.io/library/nginx".
func (r ImageRef) Repo() string { return r.Registry + "/" + r.Repository }

// String returns the reference in its normalised form: repo[:tag][@digest].
func (r ImageRef) String() string {
	s := r.Repo()
	if r.Tag != "" {
		s += ":" + r.Tag
	}
	if r.Digest != "" {
		s += "@" + r.Digest
	}
	return s
}

// WithTag returns a copy of r naming tag, without a digest.
func (r ImageRef) WithTag(tag string) ImageRef {
	r.Tag, r.Digest = tag, ""
	return r
}

// ParseImageRef parses an image reference the way the Docker engine does:
// the first path component is a registry host when it holds a '.' or ':' or is
// "localhost"; otherwise the image lives on Docker Hub, and a single-component
// name is under "library/". Names are lower-cased only where Docker allows it
// (the registry host); a repository with upper-case letters is an error.
func ParseImageRef(s string) (ImageRef, error) {
	var ref ImageRef
	if s == "" {
		return ref, fmt.Errorf("parsing image reference: %w", ErrEmptyReference)
	}
	rest := s
	if i := strings.Index(rest, "@"); i >= 0 {
		ref.Digest = rest[i+1:]
		rest = rest[:i]
		if !validDigest(ref.Digest) {
			return ImageRef{}, fmt.Errorf("parsing image reference %q: invalid digest %q", s, ref.Digest)
		}
	}
	// A tag is after the last ':' that follows the last '/'.
	if i := strings.LastIndex(rest, ":"); i >= 0 && !strings.Contains(rest[i+1:], "/") {
		ref.Tag = rest[i+1:]
		rest = rest[:i]
		if !validTag(ref.Tag) {
			return ImageRef{}, fmt.Errorf("parsing image reference %q: invalid tag %q", s, ref.Tag)
		}
	}
	first, path, found := strings.Cut(rest, "/")
	if found && (strings.ContainsAny(first, ".:") || first == "localhost") {
		ref.Registry = strings.ToLower(first)
		ref.Repository = path
	} else {
		ref.Registry = DockerHub
		ref.Repository = rest
	}
	if ref.Registry == "docker.io" || ref.Registry == "registry-1.docker.io" {
		ref.Registry = DockerHub
	}
	if ref.Registry == DockerHub && !strings.Contains(ref.Repository, "/") {
		ref.Repository = "library/" + ref.Repository
	}
	if !validRepository(ref.Repository) {
		return ImageRef{}, fmt.Errorf("parsing image reference %q: invalid repository %q", s, ref.Repository)
	}
	if ref.Tag == "" && ref.Digest == "" {
		ref.Tag = "latest"
	}
	return ref, nil
}

func validTag(t string) bool {
	if t == "" || len(t) > 128 {
		return false
	}
	for i, c := range t {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_':
		case (c == '.' || c == '-') && i > 0:
		default:
			return false
		}
	}
	return true
}

func validRepository(r string) bool {
	if r == "" {
		return false
	}
	for _, part := range strings.Split(r, "/") {
		if part == "" {
			return false
		}
		for i, c := range part {
			switch {
			case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
			case (c == '.' || c == '_' || c == '-') && i > 0 && i < len(part)-1:
			default:
				return false
			}
		}
	}
	return true
}

func validDigest(d string) bool {
	alg, hex, ok := strings.Cut(d, ":")
	if !ok || alg == "" || len(hex) < 32 {
		return false
	}
	for _, c := range hex {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
