package registries

import (
	"context"
	"errors"
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

	// The config digest of the single image and of the index's children, as image IDs would be.
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
	arm64ID := configOf("multi", children["linux/arm64"])
	amd64 := core.Platform{OS: "linux", Architecture: "amd64"}
	arm64 := core.Platform{OS: "linux", Architecture: "arm64"}
	old := digestOf('a') // the index digest the running image was pulled under, before a rebuild

	tests := []struct {
		name     string
		repo     string
		digest   string
		local    []string
		imageID  string
		platform core.Platform
		want     bool
		gets     int // manifest GETs it may cost
	}{
		{name: "index one of whose children was pulled by digest", repo: "multi", digest: idx, local: []string{children["linux/arm64"]}, platform: arm64, want: true, gets: 1},
		{name: "index rebuilt for other platforms only: this platform's child runs", repo: "multi", digest: idx, local: []string{old}, imageID: amd64ID, platform: amd64, want: true, gets: 2},
		{name: "index whose child for this platform is new", repo: "multi", digest: idx, local: []string{old}, imageID: arm64ID, platform: amd64, want: false, gets: 2},
		{name: "index, platform unknown: children tried", repo: "multi", digest: idx, local: []string{old}, imageID: arm64ID, want: true, gets: 3},
		{name: "index, unrelated image", repo: "multi", digest: idx, local: []string{old}, imageID: "sha256:" + digestOf('b')[7:], platform: amd64, want: false, gets: 2},
		{name: "image with the running config", repo: "single", digest: single, local: []string{old}, imageID: singleID, want: true, gets: 1},
		{name: "image with another config", repo: "single", digest: single, local: []string{old}, imageID: amd64ID, want: false, gets: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s.ResetCounts()
			got, err := c.Resolve(ctx, core.ImageRef{Registry: s.Host, Repository: tc.repo, Tag: "1.0"}, tc.digest, tc.local, tc.imageID, tc.platform)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("Resolve(%s, local %v, id %s, %s) = %v, want %v", tc.digest, tc.local, tc.imageID, tc.platform, got, tc.want)
			}
			if n := s.Counts().ManifestGet; n > tc.gets {
				t.Errorf("Resolve cost %d manifest GETs, want at most %d", n, tc.gets)
			}
		})
	}

	if _, err := c.Resolve(ctx, core.ImageRef{Registry: s.Host, Repository: "nosuch", Tag: "1.0"}, single, nil, singleID, amd64); err == nil {
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

// TestManifestKeepsPullsForTheEngine: where a registry announces a pull rate
// limit, manifest GETs (which count) stop at the reserve, HEADs go on.
func TestManifestKeepsPullsForTheEngine(t *testing.T) {
	s := registrytest.New(t, registrytest.WithRateLimit(12))
	d := s.Push(t, "app", "1.0")
	c, _ := newClient(t, Options{PullReserve: 10})
	ctx := context.Background()
	ref := core.ImageRef{Registry: s.Host, Repository: "app", Digest: d}
	for i := range 2 {
		if _, err := c.Manifest(ctx, ref); err != nil {
			t.Fatalf("GET %d: %v", i+1, err)
		}
	}
	if _, err := c.Manifest(ctx, ref); !errors.Is(err, core.ErrRateLimited) {
		t.Errorf("GET at the reserve = %v, want ErrRateLimited", err)
	}
	if got := s.Counts().ManifestGet; got != 2 {
		t.Errorf("%d manifest GETs reached the registry, want 2", got)
	}
	if _, err := c.Digest(ctx, core.ImageRef{Registry: s.Host, Repository: "app", Tag: "1.0"}); err != nil {
		t.Errorf("HEAD at the reserve: %v, want it to go on (HEADs do not count)", err)
	}
}
