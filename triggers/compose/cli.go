package compose

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"time"

	"github.com/tidewatch/tidewatch/core"
	"github.com/tidewatch/tidewatch/core/docker"
	"github.com/tidewatch/tidewatch/triggers/composefile"
	"github.com/tidewatch/tidewatch/triggers/rollout"
)

// CLI is a compose command line: docker-compose (1.x, or 2.x standalone), or
// docker with its compose plugin.
type CLI struct {
	// Path is the executable.
	Path string
	// Sub are the arguments before compose's own: ["compose"] for docker.
	Sub []string
	// Version is what `version --short` printed.
	Version string
}

// String returns the command as a person types it: "docker compose".
func (c CLI) String() string { return strings.Join(append([]string{c.Path}, c.Sub...), " ") }

// searchPath returns the folders the CLI is looked for in: PATH, else DefaultPath.
func searchPath() []string {
	p := os.Getenv("PATH")
	if p == "" {
		p = DefaultPath
	}
	return filepath.SplitList(p)
}

// lookPath finds name in dirs.
func lookPath(name string, dirs []string) string {
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}

// FindCLI returns the compose CLI at explicit (a docker-compose, or a docker
// whose compose plugin is used), or, when explicit is "", the first that
// works of docker compose and docker-compose in PATH (or DefaultPath). It
// runs `version --short` to check it.
func FindCLI(ctx context.Context, explicit string) (CLI, error) {
	var candidates []CLI
	if explicit != "" {
		path := explicit
		if !strings.Contains(path, "/") {
			if path = lookPath(explicit, searchPath()); path == "" {
				return CLI{}, fmt.Errorf("%s not found in %s", explicit, strings.Join(searchPath(), ":"))
			}
		}
		c := CLI{Path: path}
		if filepath.Base(path) == "docker" {
			c.Sub = []string{"compose"}
		}
		candidates = append(candidates, c)
	} else {
		dirs := searchPath()
		if p := lookPath("docker", dirs); p != "" {
			candidates = append(candidates, CLI{Path: p, Sub: []string{"compose"}})
		}
		if p := lookPath("docker-compose", dirs); p != "" {
			candidates = append(candidates, CLI{Path: p})
		}
		if len(candidates) == 0 {
			return CLI{}, fmt.Errorf("neither docker nor docker-compose is in %s", strings.Join(dirs, ":"))
		}
	}
	var errs []error
	for _, c := range candidates {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		out, err := c.command(ctx, "", nil, "version", "--short").CombinedOutput()
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s version: %w: %s", c, err, lastLine(out)))
			continue
		}
		c.Version = lastLine(out)
		return c, nil
	}
	return CLI{}, errors.Join(errs...)
}

// command returns the CLI run with args in dir, with env added to the
// process's environment (and PATH set to DefaultPath when it has none).
func (c CLI) command(ctx context.Context, dir string, env []string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, c.Path, append(append([]string{}, c.Sub...), args...)...)
	cmd.Dir = dir
	base := os.Environ()
	if os.Getenv("PATH") == "" {
		base = append(base, "PATH="+DefaultPath)
	}
	cmd.Env = append(base, env...)
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// projectArgs are the flags that name a project: its name, folder, files
// and env file.
func projectArgs(t *composefile.Target, envFile string) []string {
	args := []string{"-p", t.Project, "--project-directory", t.WorkingDir}
	for _, f := range t.Files {
		args = append(args, "-f", f)
	}
	if envFile != "" {
		args = append(args, "--env-file", envFile)
	}
	return args
}

// up runs `up -d --no-deps <service>` for the target's project, against the
// engine that env names, and returns an error holding the end of the
// CLI's output when it fails. The CLI is tied to this process (it dies
// with it: rollout.RunTied) and holds lock (open, as its fd 3, and so do the
// processes it starts) until it ends; started is told its process group.
func (c CLI) up(ctx context.Context, t *composefile.Target, envFile string, env []string, lock *os.File, started func(rollout.Process)) error {
	args := append(projectArgs(t, envFile), "up", "-d", "--no-deps", t.Service)
	var out bytes.Buffer
	cmd := c.command(context.Background(), t.WorkingDir, env, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if lock != nil {
		cmd.ExtraFiles = []*os.File{lock}
	}
	if err := rollout.RunTied(ctx, cmd, started); err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return fmt.Errorf("running %s %s: %w: %s", c, strings.Join(args, " "), err, tailText(out.Bytes(), 1500))
	}
	return nil
}

// writeDockerConfig writes a Docker CLI config folder holding auth (and,
// linked, the CLI plugins of the user's own config folder, where `docker
// compose` may live), for one run of the compose CLI: a folder of its own,
// 0700, its config.json 0600. The caller removes it.
func writeDockerConfig(auth core.RegistryAuth) (string, error) {
	data, err := docker.CLIConfig(auth)
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", "tidewatch-compose-auth-")
	if err != nil {
		return "", fmt.Errorf("preparing registry credentials for the compose CLI: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), data, 0o600); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("preparing registry credentials for the compose CLI: %w", err)
	}
	if plugins := filepath.Join(userDockerConfig(), "cli-plugins"); plugins != "" {
		if st, err := os.Stat(plugins); err == nil && st.IsDir() {
			_ = os.Symlink(plugins, filepath.Join(dir, "cli-plugins"))
		}
	}
	return dir, nil
}

// userDockerConfig is the Docker CLI's own config folder: DOCKER_CONFIG,
// else .docker in the home folder ($HOME, else the user's from the system:
// a plugin process has no HOME).
func userDockerConfig() string {
	if d := os.Getenv("DOCKER_CONFIG"); d != "" {
		return d
	}
	home := os.Getenv("HOME")
	if home == "" {
		if u, err := user.Current(); err == nil {
			home = u.HomeDir
		}
	}
	if home == "" {
		return ""
	}
	return filepath.Join(home, ".docker")
}

// lastLine returns the last non-empty line of out.
func lastLine(out []byte) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// tailText returns the last n bytes of b, trimmed.
func tailText(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return strings.TrimSpace(string(b))
}
