package bench

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync/atomic"
	"syscall"
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
// asked side by side, as dockerd serves them). It counts the inspects.
type simEngine struct {
	ctrs     []core.Container
	images   map[string]core.LocalImage
	list     time.Duration
	inspect  time.Duration
	inspects atomic.Int64
}

// newSimEngine returns a host running ctrs, whose images say what images
// holds, with a real engine's costs for its size.
func newSimEngine(ctrs []core.Container, images map[string]core.LocalImage) *simEngine {
	return &simEngine{ctrs: ctrs, images: images, list: listCostPer300 * time.Duration(len(ctrs)) / 300, inspect: inspectCost}
}

func (e *simEngine) Containers(ctx context.Context, all bool) ([]core.Container, error) {
	if err := wait(ctx, e.list); err != nil {
		return nil, err
	}
	return append([]core.Container(nil), e.ctrs...), nil
}

func (e *simEngine) Image(ctx context.Context, id string) (core.LocalImage, error) {
	e.inspects.Add(1)
	if err := wait(ctx, e.inspect); err != nil {
		return core.LocalImage{}, err
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

// pulled returns the image a container runs after pulling repo:tag from
// registry host: an image ID and a RepoDigest made up from the name (the
// bench watches semver tags: no digest is compared).
func pulled(host, repo, tag string) (id string, img core.LocalImage) {
	sum := sha256.Sum256([]byte(host + "/" + repo + ":" + tag))
	digest := "sha256:" + hex.EncodeToString(sum[:])
	idSum := sha256.Sum256([]byte("config " + digest))
	return "sha256:" + hex.EncodeToString(idSum[:]), core.LocalImage{
		RepoDigests: []string{host + "/" + repo + "@" + digest},
		Platform:    core.Platform{OS: "linux", Architecture: "amd64"},
	}
}

// simContainer is container name running repo:tag from host.
func simContainer(host, name, repo, tag, id string) core.Container {
	return core.Container{ID: name, Name: name, DisplayName: name, State: "running", Image: fmt.Sprintf("%s/%s:%s", host, repo, tag), ImageID: id}
}

// cpuTime is the CPU time (user and system) the process has used so far:
// the registry's in-process server included.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
