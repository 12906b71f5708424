package testbed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/docker/docker/client"
)

// Limits of the one-time installs.
const (
	// installLockWait bounds the wait for another bedctl that is installing.
	installLockWait = 90 * time.Minute
	// partCheckTimeout bounds one `--version` run of an installed part.
	partCheckTimeout = time.Minute
)

// debPart is a part that comes from a Debian package.
type debPart struct {
	name string // the part, one of the Part* constants
	pkg  string // the Debian package that provides it
	// cmd is a command looked up on PATH and in the sbin and bin folders;
	// path is a file that must exist instead. One of the two is set.
	cmd, path string
	// env, when set in the environment, names the part's file instead
	// (TIDEWATCH_CHROMIUM); the file must then exist.
	env string
	// withoutEngine: needed only when no engine answers (dockerd).
	withoutEngine bool
}

// debParts are the parts that the bed installs with apt-get, in the order of
// the apt-get install command line.
var debParts = []debPart{
	{name: PartDocker, pkg: "docker.io", cmd: "docker"},
	{name: PartDockerd, pkg: "docker.io", cmd: "dockerd", withoutEngine: true},
	{name: PartRegistry, pkg: "docker-registry", cmd: "docker-registry"},
	// Debian's own path: a docker-compose v2 elsewhere on PATH is not the 1.29 the tests compare with.
	{name: PartComposeV1, pkg: "docker-compose", path: "/usr/bin/docker-compose"},
	{name: PartChromium, pkg: "chromium", path: "/usr/bin/chromium", env: EnvChromium},
	{name: PartMosquitto, pkg: "mosquitto", cmd: "mosquitto"},
	{name: PartMosquittoPasswd, pkg: "mosquitto", cmd: "mosquitto_passwd"},
	{name: PartGit, pkg: "git", cmd: "git"},
	{name: PartCACerts, pkg: "ca-certificates", path: "/etc/ssl/certs/ca-certificates.crt"},
}

// lookup finds parts on this machine; tests replace it.
type lookup struct {
	command func(name string) (string, error) // a command's path
	file    func(path string) bool            // whether a regular file exists
	getenv  func(key string) string
}

// hostLookup looks at this machine.
var hostLookup = lookup{
	command: lookCommand,
	file: func(path string) bool {
		st, err := os.Stat(path)
		return err == nil && st.Mode().IsRegular()
	},
	getenv: os.Getenv,
}

// debPlan is what is there of the Debian parts, and what to install.
type debPlan struct {
	found   map[string]string // part → path
	missing map[string]string // part → package that provides it
	pkgs    []string          // packages to install, each once, in debParts order
}

// planDebian finds the Debian parts with l and lists the packages of those
// missing. dockerd counts only when no engine answers. A variable that names
// a part's file (TIDEWATCH_CHROMIUM) must name an existing file: its part is
// then never installed.
func planDebian(parts []debPart, l lookup, engineAnswers bool) (debPlan, error) {
	plan := debPlan{found: map[string]string{}, missing: map[string]string{}}
	seen := map[string]bool{}
	var errs []error
	for _, p := range parts {
		if p.env != "" {
			if v := l.getenv(p.env); v != "" {
				if !l.file(v) {
					errs = append(errs, fmt.Errorf("%s=%q: no such file; name the %s binary, or unset it to use Debian's %s", p.env, v, p.name, p.pkg))
					continue
				}
				plan.found[p.name] = v
				continue
			}
		}
		if p.cmd != "" {
			if path, err := l.command(p.cmd); err == nil {
				plan.found[p.name] = path
				continue
			}
		} else if l.file(p.path) {
			plan.found[p.name] = p.path
			continue
		}
		if p.withoutEngine && engineAnswers {
			continue
		}
		plan.missing[p.name] = p.pkg
		if !seen[p.pkg] {
			seen[p.pkg] = true
			plan.pkgs = append(plan.pkgs, p.pkg)
		}
	}
	return plan, errors.Join(errs...)
}

// InstallResult is what Install found and installed.
type InstallResult struct {
	// Parts maps each part (Part* constants) to its path.
	Parts map[string]string
	// Missing maps each part that is not there to why: the bed could not
	// install it (not root).
	Missing map[string]string
	// Installed lists the Debian packages that apt-get installed.
	Installed []string
	// Built lists the Go parts that were built (mailpit, compose-v2).
	Built []string
	// Took is how long each step took: "apt-get update", "apt-get install",
	// "mailpit", "compose-v2", and the CPU time of the builds ("mailpit cpu",
	// "compose-v2 cpu").
	Took map[string]time.Duration
}

// Install makes sure that every part the tests need is on this machine, once,
// before any test starts; test packages never install anything. Missing
// Debian packages are installed in one apt-get step (an apt-get update when
// the package lists are old or lack a package, then one apt-get install -y of
// them all) that waits for the dpkg and apt locks held by another apt-get or
// dpkg instead of failing; the Go parts (mailpit with go install, the compose
// v2 CLI plugin built from the module proxy) are built meanwhile, or after
// apt-get when the CA certificates the go command needs are missing. Then each
// part is run once (`--version`) to prove it works. A part already there is
// not touched. Not as root, missing Debian packages are reported in
// InstallResult.Missing and the apt-get command to run is logged. Concurrent
// Installs (bedctl up in several worktrees) take turns on a lock file in the
// user's cache folder.
func Install(ctx context.Context, log *slog.Logger) (*InstallResult, error) {
	cache, err := cacheDir()
	if err != nil {
		return nil, err
	}
	unlock, err := lockFile(ctx, filepath.Join(cache, "install.lock"), installLockWait)
	if err != nil {
		return nil, fmt.Errorf("waiting for another bedctl that installs the test bed's parts: %w", err)
	}
	defer unlock()

	res := &InstallResult{Parts: map[string]string{}, Missing: map[string]string{}, Took: map[string]time.Duration{}}
	host := os.Getenv("DOCKER_HOST")
	if host == "" {
		host = client.DefaultDockerHost
	}
	plan, err := planDebian(debParts, hostLookup, PingEngine(ctx, host) == nil)
	if err != nil {
		return nil, err
	}
	for k, v := range plan.found {
		res.Parts[k] = v
	}

	// The Go parts need the CA certificates to reach the module proxy: they
	// wait for apt-get when it installs them, and run meanwhile otherwise.
	goDone := make(chan error, 1)
	goParts := map[string]string{}
	goBuilt := []string{}
	goTook := map[string]time.Duration{}
	buildGo := func() {
		goDone <- installGoParts(ctx, cache, log, goParts, &goBuilt, goTook)
	}
	_, needCerts := plan.missing[PartCACerts]
	if !needCerts {
		go buildGo()
	}

	var aptErr error
	switch {
	case len(plan.pkgs) == 0:
	case os.Geteuid() != 0:
		for part, pkg := range plan.missing {
			res.Missing[part] = fmt.Sprintf("Debian package %s is not installed, and only root can install it", pkg)
		}
		log.Warn("Debian packages missing; the tests that need them fail under make test and skip otherwise; install them as root with",
			"command", "apt-get install -y "+strings.Join(plan.pkgs, " "))
	default:
		a := newApt(log)
		aptErr = a.install(ctx, plan.pkgs)
		for k, v := range a.took {
			res.Took[k] = v
		}
		if aptErr == nil {
			res.Installed = plan.pkgs
			after, err := planDebian(debParts, hostLookup, true)
			if err != nil {
				aptErr = err
			}
			for part, pkg := range plan.missing {
				if p, ok := after.found[part]; ok {
					res.Parts[part] = p
				} else {
					aptErr = errors.Join(aptErr, fmt.Errorf("finding %s after installing Debian's %s: not there", part, pkg))
				}
			}
		}
	}
	if needCerts {
		if aptErr != nil {
			return nil, aptErr
		}
		buildGo()
	}
	goErr := <-goDone
	if err := errors.Join(aptErr, goErr); err != nil {
		return nil, err
	}
	for k, v := range goParts {
		res.Parts[k] = v
	}
	res.Built = goBuilt
	for k, v := range goTook {
		res.Took[k] = v
	}
	if err := checkParts(ctx, res.Parts); err != nil {
		return nil, err
	}
	return res, nil
}

// installGoParts installs mailpit and builds the compose v2 plugin when
// missing, one after the other (each uses every core).
func installGoParts(ctx context.Context, cache string, log *slog.Logger, parts map[string]string, built *[]string, took map[string]time.Duration) error {
	mailpit, stats, err := ensureMailpit(ctx, cache, log)
	if err != nil {
		return err
	}
	parts[PartMailpit] = mailpit
	if stats != nil {
		*built = append(*built, PartMailpit)
		took[PartMailpit], took[PartMailpit+" cpu"] = stats.wall, stats.cpu
	}
	plugin, stats, err := ensureComposeV2(ctx, cache, log)
	if err != nil {
		return err
	}
	parts[PartComposeV2] = plugin
	if stats != nil {
		*built = append(*built, PartComposeV2)
		took[PartComposeV2], took[PartComposeV2+" cpu"] = stats.wall, stats.cpu
	}
	return nil
}

// buildStats is what a build cost: wall time, and CPU time of the go
// command and the compilers it ran.
type buildStats struct {
	wall, cpu time.Duration
}

// add counts the CPU time of a command that ran.
func (b *buildStats) add(cmd *exec.Cmd) {
	if ps := cmd.ProcessState; ps != nil {
		b.cpu += ps.UserTime() + ps.SystemTime()
	}
}

// checkParts runs each part that has a harmless version command, so that a
// broken install shows here and not in a test.
func checkParts(ctx context.Context, parts map[string]string) error {
	var errs []error
	run := func(part string, env []string, args ...string) string {
		ctx, cancel := context.WithTimeout(ctx, partCheckTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, args[0], args[1:]...)
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			errs = append(errs, fmt.Errorf("checking test bed part %s: %s: %w\n%s", part, strings.Join(args, " "), err, tail(out, 2000)))
		}
		return strings.TrimSpace(string(out))
	}
	if p := parts[PartComposeV1]; p != "" {
		if v := run(PartComposeV1, nil, p, "version", "--short"); !strings.HasPrefix(v, "1.") && len(errs) == 0 {
			errs = append(errs, fmt.Errorf("checking test bed part %s: %s version --short = %q, want Debian's 1.x", PartComposeV1, p, v))
		}
	}
	if p, docker := parts[PartComposeV2], parts[PartDocker]; p != "" && docker != "" {
		want := strings.TrimPrefix(ComposeV2Version, "v")
		if v := run(PartComposeV2, []string{"DOCKER_CONFIG=" + filepath.Dir(filepath.Dir(p))}, docker, "compose", "version", "--short"); v != want && len(errs) == 0 {
			errs = append(errs, fmt.Errorf("checking test bed part %s: docker compose version --short = %q, want %s (plugin %s)", PartComposeV2, v, want, p))
		}
	}
	if p := parts[PartChromium]; p != "" {
		run(PartChromium, nil, p, "--headless", "--no-sandbox", "--version")
	}
	if p := parts[PartGit]; p != "" {
		run(PartGit, nil, p, "--version")
	}
	return errors.Join(errs...)
}

// cacheDir returns the bed's cache folder, ~/.cache/tidewatch, creating it.
func cacheDir() (string, error) {
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("finding the cache folder: %w", err)
	}
	dir := filepath.Join(base, "tidewatch")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("creating the cache folder: %w", err)
	}
	return dir, nil
}

// lockFile takes an exclusive lock on the file at path, waiting up to
// timeout, and returns its release.
func lockFile(ctx context.Context, path string, timeout time.Duration) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening lock file: %w", err)
	}
	var lockErr error
	if !waitFor(ctx, timeout, func() bool {
		lockErr = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		return lockErr == nil
	}) {
		f.Close()
		return nil, fmt.Errorf("locking %s: waited %s or was cancelled: %w", path, timeout, lockErr)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
