package core

import (
	"strings"
	"time"
)

// Labels read from containers. Each refines how one container is watched.
const (
	// LabelWatch ("true"/"false") includes or excludes a container, overriding the watcher's WATCHBYDEFAULT.
	LabelWatch = "tidewatch.watch"
	// LabelTagInclude is a regular expression a candidate tag must match.
	LabelTagInclude = "tidewatch.tag.include"
	// LabelTagExclude is a regular expression a candidate tag must not match.
	LabelTagExclude = "tidewatch.tag.exclude"
	// LabelTagTransform rewrites tags before they are compared: "^(\d+)\.(\d+)-(\d+)$ => $1.$2.$3".
	LabelTagTransform = "tidewatch.tag.transform"
	// LabelTagConstraint is a semver range a candidate must be inside: "~1.4", ">=2.0, <3".
	LabelTagConstraint = "tidewatch.tag.constraint"
	// LabelWatchDigest ("true"/"false") watches the digest of the running tag, for rebuilt tags.
	LabelWatchDigest = "tidewatch.watch.digest"
	// LabelLinkTemplate is a text/template that renders a release-notes link for a candidate.
	LabelLinkTemplate = "tidewatch.link.template"
	// LabelDisplayName is the name shown for the container instead of its own.
	LabelDisplayName = "tidewatch.display.name"
	// LabelTriggerInclude lists the triggers that may act on this container.
	LabelTriggerInclude = "tidewatch.trigger.include"
	// LabelTriggerExclude lists the triggers that must not act on this container.
	LabelTriggerExclude = "tidewatch.trigger.exclude"
	// LabelUpdateMinAge is a cooldown: how old a candidate image must be
	// (from its creation time) before triggers act on it: "3d", "12h" (see ParseMinAge).
	LabelUpdateMinAge = "tidewatch.update.min-age"
)

// Container is one container running on a watched Docker host, as the watch
// loop sees it: what it runs, and the image it was created from.
type Container struct {
	// ID is the engine's container ID.
	ID string `json:"id"`
	// Name is the container's name without the leading slash.
	Name string `json:"name"`
	// DisplayName is the tidewatch.display.name label, or Name.
	DisplayName string `json:"display_name"`
	// Host is the name of the watcher (Docker host) that runs it.
	Host string `json:"host"`
	// Image is the image reference the container was created with, as written ("nginx:1.25").
	Image string `json:"image"`
	// ImageID is the ID (config digest) of the image the container runs.
	ImageID string `json:"image_id"`
	// RepoDigests are the manifest digests ("sha256:…") under which the running
	// image is known in its repository, taken from the image's RepoDigests.
	RepoDigests []string `json:"repo_digests,omitempty"`
	// Platform is the running image's platform, from its config.
	Platform Platform `json:"platform"`
	// Labels are the container's labels.
	Labels map[string]string `json:"labels,omitempty"`
	// State is the engine's state ("running", "exited", …).
	State string `json:"state"`
	// Created is when the container was created.
	Created time.Time `json:"created"`
}

// LocalImage is what the watch loop needs of an image on a Docker host.
type LocalImage struct {
	// RepoDigests are the image's RepoDigests ("127.0.0.1:5000/app@sha256:…").
	RepoDigests []string
	// Platform is the image's platform, from its config.
	Platform Platform
}

// Platform is an image's operating system and architecture.
type Platform struct {
	OS           string `json:"os,omitempty"`
	Architecture string `json:"architecture,omitempty"`
	Variant      string `json:"variant,omitempty"`
}

// String returns "linux/arm64/v8", or "" when unknown.
func (p Platform) String() string {
	if p.OS == "" && p.Architecture == "" {
		return ""
	}
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// HasDigest reports whether the running image is known under digest d.
func (c Container) HasDigest(d string) bool {
	for _, rd := range c.RepoDigests {
		if rd == d {
			return true
		}
	}
	return false
}

// RepoDigestsFor returns the digests of the RepoDigests entries
// ("127.0.0.1:5000/app@sha256:…") that belong to repository repo, given in
// its normalised form (ImageRef.Repo()). Entries that do not parse are skipped.
func RepoDigestsFor(entries []string, repo string) []string {
	var out []string
	for _, e := range entries {
		name, digest, ok := strings.Cut(e, "@")
		if !ok {
			continue
		}
		ref, err := ParseImageRef(name)
		if err == nil && ref.Repo() == repo {
			out = append(out, digest)
		}
	}
	return out
}

// EngineEvent is a container event from a Docker host that the watch loop acts on.
type EngineEvent struct {
	// ContainerID is the container the event is about.
	ContainerID string
	// Action is the engine's action ("start", "die", "destroy", …).
	Action string
	// At is when the engine says it happened.
	At time.Time
}
