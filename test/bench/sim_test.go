package bench

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/tidewatch/tidewatch/core"
)

// Costs of a real Docker engine, for the simulated ones. The peer bench
// measured GET /containers/json for 300 containers at about 40 ms, and the
// issue saw 108 image inspects one after another take 0.2–0.5 s on a loaded
// machine: about 2 ms each (0.4 ms on a quiet one).
const (
	listCostPer300 = 40 * time.Millisecond
	inspectCost    = 2 * time.Millisecond
)

// simEngine is a simulated Docker host that costs what a real one does:
// listing takes list, each image inspect takes inspect (side by side when
// asked side by side, as dockerd serves them). It counts the inspects. Its
// answers are made afresh on every call, as a real engine's JSON is decoded
// afresh (gen, image), or copied from tables (ctrs, images): a fleet's
// engines hold no table, so that the containers of ten hosts do not sit in
// the memory of the process measured, where dockerd keeps them elsewhere.
type simEngine struct {
	n        int
	gen      func(i int) core.Container
	image    func(id string) core.LocalImage
	ctrs     []core.Container
	images   map[string]core.LocalImage
	list     time.Duration
	inspect  time.Duration
	inspects atomic.Int64
}

// newSimEngine returns a host running ctrs, whose images say what images
// holds, with a real engine's costs for its size.
func newSimEngine(ctrs []core.Container, images map[string]core.LocalImage) *simEngine {
	return &simEngine{n: len(ctrs), ctrs: ctrs, images: images, list: listCostPer300 * time.Duration(len(ctrs)) / 300, inspect: inspectCost}
}

// genSimEngine returns a host running n containers, the i-th made by gen,
// whose images image makes, with a real engine's costs for its size.
func genSimEngine(n int, gen func(i int) core.Container, image func(id string) core.LocalImage) *simEngine {
	return &simEngine{n: n, gen: gen, image: image, list: listCostPer300 * time.Duration(n) / 300, inspect: inspectCost}
}

func (e *simEngine) Containers(ctx context.Context, all bool) ([]core.Container, error) {
	if err := wait(ctx, e.list); err != nil {
		return nil, err
	}
	if e.gen == nil {
		return append([]core.Container(nil), e.ctrs...), nil
	}
	out := make([]core.Container, e.n)
	for i := range out {
		out[i] = e.gen(i)
	}
	return out, nil
}

func (e *simEngine) Image(ctx context.Context, id string) (core.LocalImage, error) {
	e.inspects.Add(1)
	if err := wait(ctx, e.inspect); err != nil {
		return core.LocalImage{}, err
	}
	if e.image != nil {
		return e.image(id), nil
	}
	return e.images[id], nil
}

func (e *simEngine) Inspect(ctx context.Context, id string) (core.Container, error) {
	return core.Container{}, core.ErrNotFound
}

func (e *simEngine) Ping(ctx context.Context) error { return nil }

func (e *simEngine) Events(ctx context.Context, since time.Time) (<-chan core.EngineEvent, <-chan error) {
	errs := make(chan error, 1)
	errs <- errors.New("no events in the benchmark")
	return nil, errs
}

// wait is the engine's work: d, or until ctx ends.
func wait(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// simImageID is the ID of the image of repository number r as pulled: a
// hash-like string that ends with r, so that a simulated engine finds the
// image's repository without a table (simRepoOf).
func simImageID(r int) string {
	sum := sha256.Sum256([]byte(fmt.Sprintf("image %d", r)))
	return fmt.Sprintf("sha256:%s%016x", hex.EncodeToString(sum[:])[:48], r)
}

// simRepoOf returns the repository number simImageID wrote into id.
func simRepoOf(id string) int {
	var r int
	if len(id) >= 16 {
		fmt.Sscanf(id[len(id)-16:], "%x", &r)
	}
	return r
}

// simImage is what the engine says of the image of repo:tag pulled from
// host: its RepoDigest (made up from the name: the benchmarks watch semver
// tags, no digest is compared) and platform.
func simImage(host, repo, tag string) core.LocalImage {
	sum := sha256.Sum256([]byte(host + "/" + repo + ":" + tag))
	return core.LocalImage{
		RepoDigests: []string{host + "/" + repo + "@sha256:" + hex.EncodeToString(sum[:])},
		Platform:    core.Platform{OS: "linux", Architecture: "amd64"},
	}
}

// simContainer is container name running repo:tag from host.
func simContainer(host, name, repo, tag, id string) core.Container {
	return core.Container{ID: name, Name: name, DisplayName: name, State: "running", Image: fmt.Sprintf("%s/%s:%s", host, repo, tag), ImageID: id}
}
