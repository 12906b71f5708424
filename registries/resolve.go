package registries

import (
	"context"
	"fmt"
	"slices"

	"github.com/tidewatch/tidewatch/core"
)

// maxChildGets bounds the child manifests Resolve fetches for an index when
// the running image is known only by its ID.
const maxChildGets = 8

// Resolve tells whether the manifest at digest, in ref's repository, is the
// image that runs: an index one of whose platform children is among local
// (the running image's digests in that repository), or an image whose config
// digest is imageID. It is for a digest that differs from every local one,
// and costs one manifest GET (plus, for an index when local is empty, one per
// child up to a small bound), so the caller should remember its answer.
func (c *Client) Resolve(ctx context.Context, ref core.ImageRef, digest string, local []string, imageID string) (bool, error) {
	at := core.ImageRef{Registry: ref.Registry, Repository: ref.Repository, Digest: digest}
	m, err := c.Manifest(ctx, at)
	if err != nil {
		return false, fmt.Errorf("resolving %s: %w", at, err)
	}
	if m.ConfigDigest != "" {
		return m.ConfigDigest == imageID, nil
	}
	for _, ch := range m.Children {
		if slices.Contains(local, ch.Digest) {
			return true, nil
		}
	}
	if len(local) > 0 || imageID == "" {
		return false, nil
	}
	for i, ch := range m.Children {
		if i == maxChildGets {
			break
		}
		cm, err := c.Manifest(ctx, core.ImageRef{Registry: ref.Registry, Repository: ref.Repository, Digest: ch.Digest})
		if err != nil {
			return false, fmt.Errorf("resolving %s: %w", at, err)
		}
		if cm.ConfigDigest == imageID {
			return true, nil
		}
	}
	return false, nil
}
