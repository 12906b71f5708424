package docker

import (
	"strings"
	"testing"

	"github.com/tidewatch/tidewatch/plugins/sdk"
)

func TestNewReference(t *testing.T) {
	const (
		d1 = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
		d2 = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
	)
	tests := []struct {
		current, image, candidate, digest string
		want                              string // "" when refused
		reason                            string
	}{
		{current: "nginx:1.25", image: "index.docker.io/library/nginx", candidate: "1.26", want: "nginx:1.26"},
		{current: "docker.io/library/nginx:1.25", image: "index.docker.io/library/nginx", candidate: "1.26", want: "docker.io/library/nginx:1.26"},
		{current: "nginx", image: "index.docker.io/library/nginx", candidate: "latest", digest: d2, want: "nginx"},
		{current: "127.0.0.1:5000/team/app:1.0.0", image: "127.0.0.1:5000/team/app", candidate: "1.1.0", want: "127.0.0.1:5000/team/app:1.1.0"},
		{current: "127.0.0.1:5000/app", image: "127.0.0.1:5000/app", candidate: "latest", want: "127.0.0.1:5000/app"},
		{current: "ghcr.io/o/app:1.0@" + d1, image: "ghcr.io/o/app", candidate: "1.1", digest: d2, want: "ghcr.io/o/app:1.1@" + d2},
		{current: "ghcr.io/o/app@" + d1, image: "ghcr.io/o/app", digest: d2, want: "ghcr.io/o/app@" + d2},
		{current: "ghcr.io/o/app@" + d1, image: "ghcr.io/o/app", candidate: "1.1", reason: "has no digest"},
		{current: "nginx:1.25", image: "index.docker.io/library/redis", candidate: "7", reason: "the update is for"},
		{current: "sha256:" + strings.Repeat("a", 64), image: "index.docker.io/library/nginx", candidate: "1", reason: "image ID"},
		{current: strings.Repeat("a", 12), image: "index.docker.io/library/nginx", candidate: "1", reason: "image ID"},
		{current: "", image: "index.docker.io/library/nginx", candidate: "1", reason: "image ID"},
		{current: "nginx:1.25", image: "index.docker.io/library/nginx", candidate: "1.26;rm -rf /", reason: "not a tag"},
		{current: "nginx:1.25", image: "index.docker.io/library/nginx", candidate: "../../x", reason: "not a tag"},
		{current: "nginx:1.25", image: "index.docker.io/library/nginx", candidate: "", reason: "not a tag"},
		{current: "nginx:1.25", image: "index.docker.io/library/nginx", candidate: "1.26", digest: "md5:abc", reason: "not a sha256 digest"},
		{current: "NGINX:1", image: "index.docker.io/library/nginx", candidate: "2", reason: "invalid repository"},
	}
	for _, tc := range tests {
		got, err := newReference(tc.current, sdk.Update{Image: tc.image, Candidate: tc.candidate, CandidateDigest: tc.digest})
		switch {
		case tc.reason == "" && (err != nil || got != tc.want):
			t.Errorf("newReference(%q, %s:%s) = %q, %v; want %q", tc.current, tc.image, tc.candidate, got, err, tc.want)
		case tc.reason != "" && (err == nil || !strings.Contains(err.Error(), tc.reason)):
			t.Errorf("newReference(%q, %s:%s) = %q, %v; want an error saying %q", tc.current, tc.image, tc.candidate, got, err, tc.reason)
		}
	}
}
