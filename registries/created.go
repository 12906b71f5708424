package registries

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/tidewatch/tidewatch/core"
)

// MaxConfigSize bounds the image config Created reads: configs are a few
// KB; a registry that sends more is refused, not read to the end.
const MaxConfigSize = 4 << 20

// Created returns when the image at ref (a digest, or a tag) was created:
// the "created" field of its config. For an index it reads the child of
// platform (its OS, architecture and variant; an unknown platform takes the
// first child that is not an attestation). It costs one or two manifest
// GETs, which Docker Hub counts as a pull (refused with core.ErrRateLimited
// near the limit, as Manifest is), and one config blob GET, which it does
// not count: call it once per candidate and keep the answer. A config
// without a creation time, or with one that does not parse, gives the zero
// time and no error.
func (c *Client) Created(ctx context.Context, ref core.ImageRef, platform core.Platform) (time.Time, error) {
	const action = "reading the creation time of"
	m, err := c.Manifest(ctx, ref)
	if err != nil {
		return time.Time{}, err
	}
	if len(m.Children) > 0 {
		child := pickChild(m.Children, platform)
		if child == "" {
			return time.Time{}, fmt.Errorf("%s %s: no image for %s in the index: %w", action, ref, platformName(platform), core.ErrNotFound)
		}
		if m, err = c.Manifest(ctx, core.ImageRef{Registry: ref.Registry, Repository: ref.Repository, Digest: child}); err != nil {
			return time.Time{}, err
		}
	}
	if m.ConfigDigest == "" {
		return time.Time{}, fmt.Errorf("%s %s: the manifest (%s) names no config", action, ref, m.MediaType)
	}
	repo, r, err := c.repository(ref)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s %s: %w", action, ref, err)
	}
	rt, err := r.transportFor(ctx, repo)
	if err != nil {
		return time.Time{}, c.fail(r, action, ref.String(), err)
	}
	layer, err := remote.Layer(repo.Digest(m.ConfigDigest), remote.WithTransport(rt), remote.WithContext(ctx))
	if err != nil {
		return time.Time{}, c.fail(r, action, ref.String(), err)
	}
	body, err := layer.Compressed()
	if err != nil {
		return time.Time{}, c.fail(r, action, ref.String(), err)
	}
	defer body.Close()
	data, err := io.ReadAll(io.LimitReader(body, MaxConfigSize+1))
	if err != nil {
		return time.Time{}, c.fail(r, action, ref.String(), err)
	}
	if len(data) > MaxConfigSize {
		return time.Time{}, fmt.Errorf("%s %s: the config is over %d bytes", action, ref, MaxConfigSize)
	}
	var cfg struct {
		Created string `json:"created"`
	}
	if err := json.Unmarshal(data, &cfg); err != nil {
		return time.Time{}, fmt.Errorf("%s %s: the config is not JSON: %w", action, ref, err)
	}
	t, err := time.Parse(time.RFC3339Nano, cfg.Created)
	if err != nil {
		return time.Time{}, nil
	}
	return t.UTC(), nil
}

// pickChild returns the digest of the index child that runs on p: the same
// OS, architecture and variant, else a child without variant (or any, when
// p has none); for an unknown platform, linux/amd64, else the first child
// that is not an attestation; "" when no child runs on a known p.
func pickChild(children []Platform, p core.Platform) string {
	known := p.OS != "" && p.Architecture != ""
	if !known {
		p = core.Platform{OS: "linux", Architecture: "amd64"}
	}
	var loose, first string
	for _, ch := range children {
		if ch.OS == "unknown" {
			continue
		}
		if first == "" {
			first = ch.Digest
		}
		if ch.OS == p.OS && ch.Architecture == p.Architecture {
			if ch.Variant == p.Variant {
				return ch.Digest
			}
			if loose == "" && (p.Variant == "" || ch.Variant == "") {
				loose = ch.Digest
			}
		}
	}
	if loose != "" {
		return loose
	}
	if !known {
		return first
	}
	return ""
}

func platformName(p core.Platform) string {
	if s := p.String(); s != "" {
		return s
	}
	return "an unknown platform"
}
