package testbed

import (
	"context"
	"debug/buildinfo"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// The compose v2 CLI plugin of the bed, built from the Go module proxy.
const (
	// ComposeV2Module is the module that holds the plugin's main package.
	ComposeV2Module = "github.com/docker/compose/v2"
	// ComposeV2Version is the version the bed builds; a plugin of another
	// version is replaced.
	ComposeV2Version = "v2.40.3"

	composeV2Package    = ComposeV2Module + "/cmd"
	composeV2BuildLimit = 40 * time.Minute // a guard against a hung build: a loaded 2-core machine needs far more than an idle one
	// composeV2BuildModule is the throw-away module the plugin is built in:
	// go install refuses compose for the replace directives of its go.mod.
	composeV2BuildModule = "tidewatch.test/composebuild"
)

// dockerConfigDir returns the folder the docker CLI reads its config and
// plugins from: $DOCKER_CONFIG, else ~/.docker.
func dockerConfigDir() (string, error) {
	if d := os.Getenv("DOCKER_CONFIG"); d != "" {
		return filepath.Abs(d)
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("finding the docker CLI's config folder: %w", err)
	}
	return filepath.Join(home, ".docker"), nil
}

// ensureComposeV2 returns the path of the compose v2 CLI plugin of
// ComposeV2Version in the docker CLI's plugin folder, building it when
// missing (fresh). The build runs in a throw-away module under the cache
// folder; a plugin of another version or origin is moved aside to
// docker-compose.before-tidewatch (once) and reported.
func ensureComposeV2(ctx context.Context, cache string, log *slog.Logger) (path string, built *buildStats, err error) {
	cfg, err := dockerConfigDir()
	if err != nil {
		return "", nil, err
	}
	dest := filepath.Join(cfg, "cli-plugins", "docker-compose")
	if composeV2VersionOf(dest) == ComposeV2Version {
		return dest, nil, nil
	}
	goBin, err := lookGo()
	if err != nil {
		return "", nil, err
	}
	work := filepath.Join(cache, "compose-build-"+ComposeV2Version)
	if err := os.MkdirAll(work, 0o755); err != nil {
		return "", nil, fmt.Errorf("creating the compose build folder: %w", err)
	}
	if err := os.WriteFile(filepath.Join(work, "go.mod"), []byte("module "+composeV2BuildModule+"\n\ngo 1.24\n"), 0o644); err != nil {
		return "", nil, fmt.Errorf("writing the compose build module: %w", err)
	}
	_ = os.Remove(filepath.Join(work, "go.sum"))
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return "", nil, fmt.Errorf("creating the docker CLI plugin folder: %w", err)
	}
	log.Info("building the compose v2 CLI plugin from the Go module proxy (once; a few minutes)", "version", ComposeV2Version, "into", dest)
	ctx, cancel := context.WithTimeout(ctx, composeV2BuildLimit)
	defer cancel()
	tmp := dest + ".tidewatch-build"
	built = &buildStats{}
	start := time.Now()
	steps := [][]string{
		{goBin, "get", composeV2Package + "@" + ComposeV2Version},
		{goBin, "build", "-trimpath", "-ldflags", "-s -w -X " + ComposeV2Module + "/internal.Version=" + ComposeV2Version, "-o", tmp, composeV2Package},
	}
	for _, args := range steps {
		cmd := exec.CommandContext(ctx, args[0], args[1:]...)
		cmd.Dir = work
		cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off", "CGO_ENABLED=0", "GO111MODULE=on")
		out, err := cmd.CombinedOutput()
		built.add(cmd)
		if err != nil {
			_ = os.Remove(tmp)
			return "", nil, fmt.Errorf("building the compose v2 plugin: go %s: %w\n%s", args[1], err, tail(out, 3000))
		}
	}
	if v := composeV2VersionOf(tmp); v != ComposeV2Version {
		_ = os.Remove(tmp)
		return "", nil, fmt.Errorf("building the compose v2 plugin: the build is version %q, want %s", v, ComposeV2Version)
	}
	if _, err := os.Stat(dest); err == nil {
		aside := dest + ".before-tidewatch"
		if _, err := os.Stat(aside); err != nil {
			if err := os.Rename(dest, aside); err != nil {
				return "", nil, fmt.Errorf("moving the docker compose plugin there aside: %w", err)
			}
			log.Warn("moved a docker compose plugin of another version aside", "from", dest, "to", aside)
		}
	}
	if err := os.Rename(tmp, dest); err != nil {
		return "", nil, fmt.Errorf("installing the compose v2 plugin: %w", err)
	}
	built.wall = time.Since(start)
	log.Info("built the compose v2 CLI plugin", "path", dest, "took", built.wall.Round(time.Second), "cpu", built.cpu.Round(time.Second))
	return dest, built, nil
}

// composeV2VersionOf returns the version of the compose module a plugin
// binary was built from (as the main module or a dependency), or "" when
// path is not a Go build of compose v2.
func composeV2VersionOf(path string) string {
	info, err := buildinfo.ReadFile(path)
	if err != nil {
		return ""
	}
	if info.Main.Path == ComposeV2Module {
		return info.Main.Version
	}
	for _, d := range info.Deps {
		if d.Path == ComposeV2Module {
			if d.Replace != nil {
				return ""
			}
			return d.Version
		}
	}
	return ""
}
