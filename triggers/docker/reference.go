package docker

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/tidewatch/tidewatch/core"
	"github.com/tidewatch/tidewatch/plugins/sdk"
)

var (
	tagPattern    = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
	digestPattern = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
)

// newReference is the reference of u's candidate written as the container's
// own reference was (current, from its configuration): the same spelling of
// the repository ("nginx", not index.docker.io/library/nginx) with the
// candidate's tag, and its digest where the container's reference pinned
// one. It refuses a reference of another repository than u's, an image ID,
// and a candidate that is not a tag (or digest).
func newReference(current string, u sdk.Update) (string, error) {
	if current == "" || strings.HasPrefix(current, "sha256:") || regexp.MustCompile(`^[0-9a-f]{12,64}$`).MatchString(current) {
		return "", fmt.Errorf("the container was created from image ID %q, not a reference: nothing names a newer version of it", current)
	}
	ref, err := core.ParseImageRef(current)
	if err != nil {
		return "", fmt.Errorf("the container's image %q: %w", current, err)
	}
	if want, err := core.ParseImageRef(u.Image); err != nil || want.Repo() != ref.Repo() {
		return "", fmt.Errorf("the update is for %s, but the container runs %s", u.Image, ref.Repo())
	}
	if !tagPattern.MatchString(u.Candidate) && (ref.Tag != "" || u.Candidate != "") {
		return "", fmt.Errorf("candidate %q is not a tag", u.Candidate)
	}
	if u.CandidateDigest != "" && !digestPattern.MatchString(u.CandidateDigest) {
		return "", fmt.Errorf("candidate digest %q is not a sha256 digest", u.CandidateDigest)
	}
	// The repository as the container spells it: the reference without
	// its digest and tag.
	repo := current
	if i := strings.Index(repo, "@"); i >= 0 {
		repo = repo[:i]
	}
	if i := strings.LastIndex(repo, ":"); i >= 0 && !strings.Contains(repo[i:], "/") {
		repo = repo[:i]
	}
	out := repo
	if ref.Tag != "" && (strings.Contains(current, ":"+ref.Tag) || u.Candidate != ref.Tag) {
		out += ":" + u.Candidate
	}
	if ref.Digest != "" {
		if u.CandidateDigest == "" {
			return "", fmt.Errorf("the container pins digest %s, and the update has no digest for %s", ref.Digest, u.Candidate)
		}
		out += "@" + u.CandidateDigest
	}
	return out, nil
}
