package testbed

import (
	"archive/tar"
	"bytes"
	"io"
	"path"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
)

// BuildVolumeImage builds the test app image as BuildImage does, declaring
// volumes (VOLUME /data…) in its configuration: a container of it gets an
// anonymous volume at each unless it mounts something there. It pushes it to
// ref and returns its digest.
func (b *Bed) BuildVolumeImage(t testing.TB, ref string, opts AppOptions, volumes ...string) string {
	t.Helper()
	img := b.AppImage(t, opts)
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatalf("reading image config: %v", err)
	}
	cf = cf.DeepCopy()
	cf.Config.Volumes = map[string]struct{}{}
	for _, v := range volumes {
		cf.Config.Volumes[v] = struct{}{}
	}
	var withVolumes v1.Image
	if withVolumes, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatalf("setting image config: %v", err)
	}
	return b.PushImage(t, ref, withVolumes)
}

// WriteFile writes content to the file at file (an absolute path) in the
// container id, running or not, through the engine (images FROM scratch
// have no shell): what a test puts in a volume to see it survive.
func (b *Bed) WriteFile(t testing.TB, id, file string, content []byte) {
	t.Helper()
	ctx, cancel := testContext(t)
	defer cancel()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: path.Base(file), Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(content); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Docker().CopyToContainer(ctx, id, path.Dir(file), &buf, container.CopyToContainerOptions{}); err != nil {
		t.Fatalf("writing %s into container %s: %v", file, id, err)
	}
}

// ReadFile returns the content of the file at file in the container id, and
// false when there is no such file.
func (b *Bed) ReadFile(t testing.TB, id, file string) ([]byte, bool) {
	t.Helper()
	ctx, cancel := testContext(t)
	defer cancel()
	rc, _, err := b.Docker().CopyFromContainer(ctx, id, file)
	if client.IsErrNotFound(err) {
		return nil, false
	}
	if err != nil {
		t.Fatalf("reading %s from container %s: %v", file, id, err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	hdr, err := tr.Next()
	if err != nil || hdr.Typeflag != tar.TypeReg {
		t.Fatalf("reading %s from container %s: not a file (%v)", file, id, err)
	}
	content, err := io.ReadAll(tr)
	if err != nil {
		t.Fatalf("reading %s from container %s: %v", file, id, err)
	}
	return content, true
}

// VolumeExists says whether the engine has the volume name.
func (b *Bed) VolumeExists(t testing.TB, name string) bool {
	t.Helper()
	ctx, cancel := testContext(t)
	defer cancel()
	_, err := b.Docker().VolumeInspect(ctx, name)
	return err == nil
}

// VolumeAt returns the name of the volume mounted at dst in the container
// id; the test fails when none is.
func (b *Bed) VolumeAt(t testing.TB, id, dst string) string {
	t.Helper()
	for _, m := range b.Inspect(t, id).Mounts {
		if m.Destination == dst && m.Type == "volume" {
			return m.Name
		}
	}
	t.Fatalf("container %s has no volume at %s", id, dst)
	return ""
}
