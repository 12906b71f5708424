package registries

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tidewatch/tidewatch/core"
	"github.com/tidewatch/tidewatch/registries/registrytest"
)

// TestCreated reads creation times from configs, and counts what it costs:
// one manifest GET and one config blob GET for an image, two manifest GETs
// for an index (the child of the platform asked), never a HEAD.
func TestCreated(t *testing.T) {
	s := registrytest.New(t, registrytest.WithBearerAuth("", ""))
	created := time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)
	single := s.PushCreated(t, "dated", "2.0", created)
	s.Push(t, "undated", "2.0") // random.Image: no creation time
	idx, _ := s.PushIndex(t, "multi", "2.0", "linux/amd64", "linux/arm64")
	c, _ := newClient(t, Options{})
	ctx := context.Background()
	ref := func(repo, tag, digest string) core.ImageRef {
		return core.ImageRef{Registry: s.Host, Repository: repo, Tag: tag, Digest: digest}
	}
	amd64, riscv := core.Platform{OS: "linux", Architecture: "amd64"}, core.Platform{OS: "linux", Architecture: "riscv64"}
	if _, err := c.Tags(ctx, ref("dated", "2.0", "")); err != nil { // ping and token out of the counts
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		ref       core.ImageRef
		platform  core.Platform
		want      time.Time
		wantErr   error
		manifests int
	}{
		{name: "image by digest", ref: ref("dated", "", single), want: created, manifests: 1},
		{name: "image by tag", ref: ref("dated", "2.0", ""), want: created, manifests: 1},
		{name: "config without a creation time", ref: ref("undated", "2.0", ""), manifests: 1},
		{name: "index: the child of the platform", ref: ref("multi", "", idx), platform: amd64, manifests: 2},
		{name: "index, platform unknown: linux/amd64", ref: ref("multi", "", idx), manifests: 2},
		{name: "index without the platform", ref: ref("multi", "", idx), platform: riscv, wantErr: core.ErrNotFound, manifests: 1},
		{name: "no such repository", ref: ref("nosuch", "2.0", ""), wantErr: core.ErrNotFound, manifests: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s.ResetCounts()
			got, err := c.Created(ctx, tc.ref, tc.platform)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Created = %v, %v; want an error wrapping %v", got, err, tc.wantErr)
				}
			} else if err != nil || !got.Equal(tc.want) {
				t.Fatalf("Created = %v, %v; want %v", got, err, tc.want)
			}
			n := s.Counts()
			blobs := 1
			if tc.wantErr != nil {
				blobs = 0
			}
			if n.ManifestGet != tc.manifests || n.BlobGet != blobs || n.ManifestHead != 0 {
				t.Errorf("cost %d manifest GETs, %d blob GETs, %d HEADs; want %d, %d, 0", n.ManifestGet, n.BlobGet, n.ManifestHead, tc.manifests, blobs)
			}
		})
	}
}

// TestCreatedKeepsThePullReserve: near the registry's pull limit, Created
// spends no manifest GET.
func TestCreatedKeepsThePullReserve(t *testing.T) {
	s := registrytest.New(t, registrytest.WithRateLimit(10))
	s.PushCreated(t, "dated", "2.0", time.Now())
	c, _ := newClient(t, Options{})
	ctx := context.Background()
	if _, err := c.Tags(ctx, core.ImageRef{Registry: s.Host, Repository: "dated", Tag: "2.0"}); err != nil { // reads the limit
		t.Fatal(err)
	}
	s.ResetCounts()
	if _, err := c.Created(ctx, core.ImageRef{Registry: s.Host, Repository: "dated", Tag: "2.0"}, core.Platform{}); !errors.Is(err, core.ErrRateLimited) {
		t.Errorf("Created near the limit = %v, want core.ErrRateLimited", err)
	}
	if n := s.Counts().ManifestGet; n != 0 {
		t.Errorf("%d manifest GETs near the limit, want 0", n)
	}
}
