package registries

import (
	"context"
	"testing"

	"github.com/tidewatch/tidewatch/core"
	"github.com/tidewatch/tidewatch/registries/registrytest"
)

func TestResolve(t *testing.T) {
	s := registrytest.New(t)
	idx, children := s.PushIndex(t, "multi", "1.0", "linux/amd64", "linux/arm64")
	single := s.Push(t, "single", "1.0")
	c, _ := newClient(t, Options{})
	ctx := context.Background()

	// The config digest of the single image and of the amd64 child, as an image ID would be.
	configOf := func(repo, digest string) string {
		t.Helper()
		m, err := c.Manifest(ctx, core.ImageRef{Registry: s.Host, Repository: repo, Digest: digest})
		if err != nil {
			t.Fatal(err)
		}
		return m.ConfigDigest
	}
	singleID := configOf("single", single)
	amd64ID := configOf("multi", children["linux/amd64"])

	tests := []struct {
		name    string
		repo    string
		digest  string
		local   []string
		imageID string
		want    bool
	}{
		{name: "index whose child runs here", repo: "multi", digest: idx, local: []string{children["linux/arm64"]}, want: true},
		{name: "index none of whose children runs here", repo: "multi", digest: idx, local: []string{digestOf('a')}, imageID: amd64ID, want: false},
		{name: "index, running image known only by ID", repo: "multi", digest: idx, imageID: amd64ID, want: true},
		{name: "index, unrelated image ID", repo: "multi", digest: idx, imageID: "sha256:" + digestOf('b')[7:], want: false},
		{name: "image with the running config", repo: "single", digest: single, local: []string{digestOf('c')}, imageID: singleID, want: true},
		{name: "image with another config", repo: "single", digest: single, local: []string{digestOf('c')}, imageID: amd64ID, want: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := c.Resolve(ctx, core.ImageRef{Registry: s.Host, Repository: tc.repo, Tag: "1.0"}, tc.digest, tc.local, tc.imageID)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("Resolve(%s, local %v, id %s) = %v, want %v", tc.digest, tc.local, tc.imageID, got, tc.want)
			}
		})
	}

	if _, err := c.Resolve(ctx, core.ImageRef{Registry: s.Host, Repository: "nosuch", Tag: "1.0"}, single, nil, singleID); err == nil {
		t.Error("Resolve in a missing repository succeeded")
	}
}

func digestOf(c byte) string {
	b := make([]byte, 64)
	for i := range b {
		b[i] = c
	}
	return "sha256:" + string(b)
}
