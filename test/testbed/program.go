package testbed

import (
	"context"
	"fmt"
)

// Open returns the running test bed for a program that is not a test (the
// demo). Unlike Require it takes no engine lock and starts nothing.
func Open(ctx context.Context) (*Bed, error) {
	path, err := FindState()
	if err != nil {
		return nil, fmt.Errorf("finding the test bed (start it with go run ./test/bedctl up): %w", err)
	}
	st, err := ReadState(path)
	if err != nil {
		return nil, err
	}
	if err := PingEngine(ctx, st.DockerHost); err != nil {
		return nil, err
	}
	if err := PingRegistry(ctx, st.Registry); err != nil {
		return nil, err
	}
	return &Bed{DockerHost: st.DockerHost, Registry: st.Registry, State: st, statePath: path}, nil
}

// Build builds the test app image for opts and pushes it to ref, returning
// its digest: BuildImage for programs.
func (b *Bed) Build(ctx context.Context, ref string, opts AppOptions) (string, error) {
	img, err := b.appImage(ctx, opts)
	if err != nil {
		return "", fmt.Errorf("building test app image for %s: %w", ref, err)
	}
	return b.push(ctx, ref, img)
}

// Pull pulls ref through the engine: PullImage for programs.
func (b *Bed) Pull(ctx context.Context, ref string) error {
	return b.ensureImage(ctx, ref)
}

// Close releases the bed's Docker client.
func (b *Bed) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.docker != nil {
		return b.docker.Close()
	}
	return nil
}
