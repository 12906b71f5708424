package core

import "time"

// UpdateKind says how far a candidate is from what runs.
type UpdateKind string

// The kinds of update, from the largest jump to the smallest.
const (
	// KindNone means no update.
	KindNone UpdateKind = ""
	// KindMajor is a change of the first numeric part (1.x → 2.x).
	KindMajor UpdateKind = "major"
	// KindMinor is a change of the second numeric part (1.1 → 1.2).
	KindMinor UpdateKind = "minor"
	// KindPatch is a change of any later numeric part (1.1.1 → 1.1.2, -ls45 → -ls100).
	KindPatch UpdateKind = "patch"
	// KindPrerelease is a change only in the prerelease part (2.0.0-rc1 → 2.0.0-rc2).
	KindPrerelease UpdateKind = "prerelease"
	// KindDigest is the same tag pointing to a new image (a rebuilt `latest` or `1.25`).
	KindDigest UpdateKind = "digest"
)

// Check is the result of checking one container against its registry.
type Check struct {
	// Container is the container checked.
	Container Container `json:"container"`
	// Ref is the parsed image reference of the container.
	Ref ImageRef `json:"ref"`
	// Current is the running tag; CurrentDigest the running manifest digest, when known.
	Current       string `json:"current"`
	CurrentDigest string `json:"current_digest,omitempty"`
	// Candidate is the tag offered, "" when none; for a digest update it equals Current.
	Candidate string `json:"candidate,omitempty"`
	// CandidateDigest is the registry's digest of the candidate, when it was read.
	CandidateDigest string `json:"candidate_digest,omitempty"`
	// CandidateCreated is when the candidate image was created, from its
	// config; read only under a cooldown (tidewatch.update.min-age, a
	// trigger's MIN_AGE), zero when not read or not usable.
	CandidateCreated time.Time `json:"candidate_created,omitzero"`
	// Kind is the kind of update, KindNone when none.
	Kind UpdateKind `json:"kind,omitempty"`
	// Link is the rendered release-notes link, when the container has a template.
	Link string `json:"link,omitempty"`
	// Note says something worth knowing that is not an error ("watched by digest").
	Note string `json:"note,omitempty"`
	// Err is what went wrong for this container; the other containers are still checked.
	Err error `json:"-"`
	// CheckedAt is when the check ended.
	CheckedAt time.Time `json:"checked_at"`
}

// HasUpdate reports whether the check found an update.
func (c Check) HasUpdate() bool { return c.Kind != KindNone && c.Err == nil }

// UpdateStatus is where an update stands.
type UpdateStatus string

// The statuses of an update.
const (
	StatusPending    UpdateStatus = "pending"
	StatusNotified   UpdateStatus = "notified"
	StatusApplying   UpdateStatus = "applying"
	StatusApplied    UpdateStatus = "applied"
	StatusFailed     UpdateStatus = "failed"
	StatusRolledBack UpdateStatus = "rolled-back"
	StatusDismissed  UpdateStatus = "dismissed"
)

// Update is a candidate found for a container, as the store remembers it,
// with what every consumer needs of its container: the dispatcher (labels
// for the trigger policies), the triggers (display name, host, digests,
// link, kind) and the API. A new candidate for the same container replaces
// the old pending one.
type Update struct {
	// ID is the store's identifier.
	ID int64 `json:"id"`
	// Host and ContainerName identify the container; ContainerID is the engine's ID when last seen.
	Host          string `json:"host"`
	ContainerName string `json:"container"`
	ContainerID   string `json:"container_id"`
	// DisplayName is the container's tidewatch.display.name label, or its name.
	DisplayName string `json:"display_name"`
	// Image is the normalised repository ("index.docker.io/library/nginx").
	Image string `json:"image"`
	// Current and CurrentDigest describe what runs.
	Current       string `json:"current"`
	CurrentDigest string `json:"current_digest,omitempty"`
	// Candidate and CandidateDigest describe what is offered.
	Candidate       string `json:"candidate"`
	CandidateDigest string `json:"candidate_digest,omitempty"`
	// CandidateCreated is when the candidate image was created, from its
	// config, when it was read (under a cooldown); see AgeFrom.
	CandidateCreated time.Time `json:"candidate_created,omitzero"`
	// Kind is the kind of jump.
	Kind UpdateKind `json:"kind"`
	// Link is the release-notes link, when known.
	Link string `json:"link,omitempty"`
	// Status is where the update stands.
	Status UpdateStatus `json:"status"`
	// Labels are the container's labels. They are never written out as
	// they are (other tools keep credentials in labels): the API leaves
	// them out, and notifying triggers get only those their policy shares.
	Labels map[string]string `json:"-"`
	// FirstSeen and LastSeen bound the runs that found this candidate.
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
}

// Name returns the display name, or the container's name when it has none.
func (u Update) Name() string {
	if u.DisplayName != "" {
		return u.DisplayName
	}
	return u.ContainerName
}

// CandidateRef identifies u's candidate: its tag, and "tag@digest" for a
// digest update (whose tag does not change).
func (u Update) CandidateRef() string { return Ref(u.Candidate, u.CandidateDigest, u.Kind) }

// CurrentRef is CandidateRef for what runs.
func (u Update) CurrentRef() string { return Ref(u.Current, u.CurrentDigest, u.Kind) }

// Ref writes one side of an update: the tag, with its digest for digest
// updates ("latest@sha256:…"; the digest alone when there is no tag).
func Ref(tag, digest string, kind UpdateKind) string {
	if kind == KindDigest && digest != "" {
		if tag == "" {
			return digest
		}
		return tag + "@" + digest
	}
	return tag
}
