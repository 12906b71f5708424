package registries

import (
	"context"
	"fmt"
	"slices"

	"github.com/tidewatch/tidewatch/core"
)

// maxChildGets bounds the child manifests Resolve fetches for an index whose
// children's platforms do not say which one runs.
const maxChildGets = 4

// Resolve tells whether the manifest at digest, in ref's repository, is the
// image that runs (known locally under the digests local, with image ID
// imageID, on platform). It is for a digest that differs from every local
// one, and costs a manifest GET: an image is the same when its config digest
// is imageID; an index is the same when one of its children is among local,
// or when its child for platform (fetched: a second GET) has config digest
// imageID, which is the case when an index was rebuilt for other platforms
// only. The caller should remember the answer, so that a changed digest
// costs its GETs once.
func (c *Client) Resolve(ctx context.Context, ref core.ImageRef, digest string, local []string, imageID string, platform core.Platform) (bool, error) {
	at := core.ImageRef{Registry: ref.Registry, Repository: ref.Repository, Digest: digest}
	m, err := c.Manifest(ctx, at)
	if err != nil {
		return false, fmt.Errorf("resolving %s: %w", at, err)
	}
	if len(m.Children) == 0 {
		return m.ConfigDigest != "" && m.ConfigDigest == imageID, nil
	}
	for _, ch := range m.Children {
		if slices.Contains(local, ch.Digest) {
			return true, nil
		}
	}
	if imageID == "" {
		return false, nil
	}
	gets := 0
	for _, ch := range m.Children {
		if !platformMatches(ch, platform) {
			continue
		}
		if gets == maxChildGets {
			break
		}
		gets++
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

// platformMatches reports whether an index child can be the image that runs
// on p; an unknown platform (or child platform) matches every child, and an
// unknown variant every variant.
func platformMatches(ch Platform, p core.Platform) bool {
	if p.OS == "" || p.Architecture == "" || ch.OS == "" || ch.Architecture == "" {
		return ch.OS != "unknown" // attestation manifests say unknown/unknown
	}
	if ch.OS != p.OS || ch.Architecture != p.Architecture {
		return false
	}
	return p.Variant == "" || ch.Variant == "" || ch.Variant == p.Variant
}
