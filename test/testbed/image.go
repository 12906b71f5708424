package testbed

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// FailMode is how the test app misbehaves.
type FailMode string

// The test app's failure modes.
const (
	// FailNone serves and is healthy.
	FailNone FailMode = ""
	// FailExit exits 1 at start.
	FailExit FailMode = "exit"
	// FailUnhealthy serves, but its health probe fails.
	FailUnhealthy FailMode = "unhealthy"
	// FailCrashLater serves, then exits 2 after AppOptions.CrashAfter.
	FailCrashLater FailMode = "crash-later"
)

// AppOptions says which test app image to build.
type AppOptions struct {
	// Version is what the app answers on "/" and its VERSION env; default "0.0.0".
	Version string
	// Fail is how the app misbehaves; default FailNone.
	Fail FailMode
	// CrashAfter is when a FailCrashLater app exits; default 3s.
	CrashAfter time.Duration
	// Healthcheck adds a Docker HEALTHCHECK that runs "/app -probe" every second.
	Healthcheck bool
	// Labels are the image's labels.
	Labels map[string]string
	// Created is the image's creation time; zero leaves it unset, so that the
	// same options give the same digest.
	Created time.Time
}

// appImagePath is where the binary lives in the image.
const appImagePath = "/app"

var safeLDValue = regexp.MustCompile(`^[A-Za-z0-9._+:-]*$`)

// BuildImage builds the test app (package test/testapp) into a one-layer image
// FROM scratch, pushes it to ref (e.g. Registry+"/app:1.0.0") and returns its
// manifest digest ("sha256:..."). The app is compiled once per process for
// each Version, Fail and CrashAfter.
func (b *Bed) BuildImage(t testing.TB, ref string, opts AppOptions) string {
	t.Helper()
	ctx, cancel := testContext(t)
	defer cancel()
	img, err := b.appImage(ctx, opts)
	if err != nil {
		t.Fatalf("building test app image for %s: %v", ref, err)
	}
	digest, err := b.push(ctx, ref, img)
	if err != nil {
		t.Fatalf("%v", err)
	}
	return digest
}

// PushImage pushes img to ref in any registry reached over plain HTTP and
// returns its digest; for images that BuildImage cannot make.
func (b *Bed) PushImage(t testing.TB, ref string, img v1.Image) string {
	t.Helper()
	ctx, cancel := testContext(t)
	defer cancel()
	digest, err := b.push(ctx, ref, img)
	if err != nil {
		t.Fatalf("%v", err)
	}
	return digest
}

// PushIndex pushes idx (e.g. built with mutate.AppendManifests over AppImage
// results) to ref and returns the index digest, for multi-platform tests.
func (b *Bed) PushIndex(t testing.TB, ref string, idx v1.ImageIndex) string {
	t.Helper()
	ctx, cancel := testContext(t)
	defer cancel()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatalf("parsing image reference %s: %v", ref, err)
	}
	if err := remote.WriteIndex(r, idx, remote.WithContext(ctx)); err != nil {
		t.Fatalf("pushing index %s: %v", ref, err)
	}
	d, err := idx.Digest()
	if err != nil {
		t.Fatalf("computing digest of index %s: %v", ref, err)
	}
	return d.String()
}

// AppImage returns the test app image for opts without pushing it, for tests
// that build indexes or change it further.
func (b *Bed) AppImage(t testing.TB, opts AppOptions) v1.Image {
	t.Helper()
	ctx, cancel := testContext(t)
	defer cancel()
	img, err := b.appImage(ctx, opts)
	if err != nil {
		t.Fatalf("building test app image: %v", err)
	}
	return img
}

func (b *Bed) push(ctx context.Context, ref string, img v1.Image) (string, error) {
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		return "", fmt.Errorf("parsing image reference %s: %w", ref, err)
	}
	if err := remote.Write(r, img, remote.WithContext(ctx)); err != nil {
		return "", fmt.Errorf("pushing %s: %w", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		return "", fmt.Errorf("computing digest of %s: %w", ref, err)
	}
	return d.String(), nil
}

func (b *Bed) appImage(ctx context.Context, opts AppOptions) (v1.Image, error) {
	if opts.Version == "" {
		opts.Version = "0.0.0"
	}
	if opts.Fail == FailCrashLater && opts.CrashAfter == 0 {
		opts.CrashAfter = 3 * time.Second
	}
	layer, err := b.appLayer(ctx, opts)
	if err != nil {
		return nil, err
	}
	img, err := mutate.Append(empty.Image, mutate.Addendum{Layer: layer, History: v1.History{CreatedBy: "tidewatch testbed: COPY app /app", Created: v1.Time{Time: opts.Created}}})
	if err != nil {
		return nil, fmt.Errorf("adding app layer: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("reading image config: %w", err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	cf.Created = v1.Time{Time: opts.Created}
	cf.Config.Entrypoint = []string{appImagePath}
	cf.Config.Env = []string{"PATH=/", "VERSION=" + opts.Version}
	cf.Config.ExposedPorts = map[string]struct{}{"8080/tcp": {}}
	cf.Config.Labels = opts.Labels
	cf.Config.StopSignal = "SIGTERM"
	if opts.Healthcheck {
		cf.Config.Healthcheck = &v1.HealthConfig{
			Test:     []string{"CMD", appImagePath, "-probe"},
			Interval: time.Second,
			Timeout:  3 * time.Second,
			Retries:  2,
		}
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("setting image config: %w", err)
	}
	return img, nil
}

// appBuild is one compiled app, shared by the tests of a process.
type appBuild struct {
	once  sync.Once
	layer v1.Layer
	err   error
}

var appBuilds sync.Map // "version|fail|crashAfter" → *appBuild

// appLayer compiles the app for opts (once per process) and wraps it in a layer.
func (b *Bed) appLayer(ctx context.Context, opts AppOptions) (v1.Layer, error) {
	key := fmt.Sprintf("%s|%s|%s", opts.Version, opts.Fail, opts.CrashAfter)
	v, _ := appBuilds.LoadOrStore(key, &appBuild{})
	ab := v.(*appBuild)
	ab.once.Do(func() {
		var bin []byte
		bin, ab.err = compileApp(ctx, b.State.Dir, opts)
		if ab.err == nil {
			ab.layer, ab.err = fileLayer(appImagePath, bin)
		}
	})
	return ab.layer, ab.err
}

// compileApp builds test/testapp statically with the options baked in.
func compileApp(ctx context.Context, stateDir string, opts AppOptions) ([]byte, error) {
	for _, v := range []string{opts.Version, string(opts.Fail)} {
		if !safeLDValue.MatchString(v) {
			return nil, fmt.Errorf("compiling test app: %q has characters a linker flag cannot carry", v)
		}
	}
	root, err := ModuleRoot()
	if err != nil {
		root = filepath.Dir(stateDir) // the state folder sits in the module root
	}
	dir := filepath.Join(stateDir, "apps")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("compiling test app: %w", err)
	}
	tmp, err := os.MkdirTemp(dir, "build-")
	if err != nil {
		return nil, fmt.Errorf("compiling test app: %w", err)
	}
	defer os.RemoveAll(tmp)
	out := filepath.Join(tmp, "app")
	ldflags := fmt.Sprintf("-s -w -X main.version=%s -X main.fail=%s", opts.Version, opts.Fail)
	if opts.CrashAfter > 0 {
		ldflags += " -X main.crashAfter=" + opts.CrashAfter.String()
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", ldflags, "-o", out, "github.com/tidewatch/tidewatch/test/testapp")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	if msg, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("compiling test app: %w\n%s", err, msg)
	}
	bin, err := os.ReadFile(out)
	if err != nil {
		return nil, fmt.Errorf("reading compiled test app: %w", err)
	}
	return bin, nil
}

// fileLayer makes a layer holding one executable file at path.
func fileLayer(path string, content []byte) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	hdr := &tar.Header{Name: path[1:], Mode: 0o755, Size: int64(len(content)), Typeflag: tar.TypeReg, Format: tar.FormatPAX}
	if err := tw.WriteHeader(hdr); err != nil {
		return nil, fmt.Errorf("writing layer: %w", err)
	}
	if _, err := tw.Write(content); err != nil {
		return nil, fmt.Errorf("writing layer: %w", err)
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("writing layer: %w", err)
	}
	data := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	})
	if err != nil {
		return nil, fmt.Errorf("making layer: %w", err)
	}
	return layer, nil
}
