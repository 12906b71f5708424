package testbed

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Defaults of the apt-get step.
const (
	// aptLockWait is how long apt-get waits for a lock held by another
	// apt-get, dpkg or unattended-upgrades before it gives up.
	aptLockWait = 15 * time.Minute
	// aptListsMaxAge: package lists older than this are refreshed first, as
	// the mirror may no longer hold the versions they name.
	aptListsMaxAge = 24 * time.Hour
	// aptTimeout bounds one apt-get run (the install downloads ~300 MB on a
	// fresh machine).
	aptTimeout = 30 * time.Minute
)

// apt runs apt-get for Install: one apt-get update when needed, then one
// apt-get install of every missing package, each waiting for the locks of
// other package managers.
type apt struct {
	// bin is the apt-get program; cache is apt-cache. Default: from PATH.
	bin, cache string
	// lists is apt's package list folder. Default: /var/lib/apt/lists.
	lists string
	// lockWait bounds the wait for a lock; retry is how often apt-get is
	// run again while the lock is held by someone else.
	lockWait, retry time.Duration
	log             *slog.Logger
	// took records the time of each step: "apt-get update", "apt-get install".
	took map[string]time.Duration
	// updated is set once apt-get update ran.
	updated bool
	// download is what apt-get install said it fetches ("Need to get …").
	download string
}

func newApt(log *slog.Logger) *apt {
	return &apt{bin: "apt-get", cache: "apt-cache", lists: "/var/lib/apt/lists",
		lockWait: aptLockWait, retry: 2 * time.Second, log: log, took: map[string]time.Duration{}}
}

// install installs pkgs. It runs apt-get update first when the lists are
// missing, older than aptListsMaxAge, or know no candidate for one of pkgs;
// when it did not and the install fails to fetch a package, it updates and
// installs once more.
func (a *apt) install(ctx context.Context, pkgs []string) error {
	if why := a.needUpdate(ctx, pkgs); why != "" {
		if err := a.update(ctx, why); err != nil {
			return err
		}
	}
	a.log.Info("installing Debian packages with apt-get (once, before the tests)", "packages", strings.Join(pkgs, " "))
	start := time.Now()
	out, err := a.run(ctx, append([]string{"install", "-y"}, pkgs...)...)
	if err != nil && !a.updated && fetchFailed(out) {
		a.log.Warn("apt-get could not fetch a package: updating the package lists and trying again")
		if uerr := a.update(ctx, "a package could not be fetched"); uerr != nil {
			return errors.Join(err, uerr)
		}
		start = time.Now()
		out, err = a.run(ctx, append([]string{"install", "-y"}, pkgs...)...)
	}
	if m := needToGet.FindSubmatch(out); m != nil {
		a.download = string(m[1])
	}
	a.took["apt-get install"] = time.Since(start)
	if err != nil {
		return fmt.Errorf("installing the test bed's Debian packages: %w", err)
	}
	a.log.Info("installed Debian packages", "packages", strings.Join(pkgs, " "), "took", a.took["apt-get install"].Round(time.Second),
		"cpu", a.took["apt-get install cpu"].Round(time.Second), "download", a.download)
	return nil
}

// update runs apt-get update.
func (a *apt) update(ctx context.Context, why string) error {
	a.log.Info("updating the package lists with apt-get update", "because", why)
	start := time.Now()
	if _, err := a.run(ctx, "update"); err != nil {
		return fmt.Errorf("updating the package lists: %w", err)
	}
	a.updated = true
	a.took["apt-get update"] = time.Since(start)
	a.log.Info("updated the package lists", "took", a.took["apt-get update"].Round(time.Second))
	return nil
}

// needUpdate tells why apt-get update must run before installing pkgs, or "".
func (a *apt) needUpdate(ctx context.Context, pkgs []string) string {
	age, ok := listsAge(a.lists)
	switch {
	case !ok:
		return "there are no package lists"
	case age > aptListsMaxAge:
		return fmt.Sprintf("the package lists are %s old", age.Round(time.Hour))
	}
	out, err := exec.CommandContext(ctx, a.cache, append([]string{"policy"}, pkgs...)...).Output()
	if err != nil {
		return fmt.Sprintf("apt-cache policy failed: %v", err)
	}
	cand := parsePolicy(out)
	for _, p := range pkgs {
		if cand[p] == "" {
			return "the package lists know no candidate for " + p
		}
	}
	return ""
}

// listsAge returns the age of the newest package list in dir; false when
// there is none.
func listsAge(dir string) (time.Duration, bool) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, false
	}
	var newest time.Time
	for _, e := range entries {
		if !strings.Contains(e.Name(), "_Packages") {
			continue
		}
		if info, err := e.Info(); err == nil && info.ModTime().After(newest) {
			newest = info.ModTime()
		}
	}
	if newest.IsZero() {
		return 0, false
	}
	return time.Since(newest), true
}

// parsePolicy reads `apt-cache policy PKG...`: package → candidate version,
// "" when it has none. Packages the lists do not know are not in its output.
func parsePolicy(out []byte) map[string]string {
	cand := map[string]string{}
	var pkg string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if line != "" && line[0] != ' ' && strings.HasSuffix(line, ":") {
			pkg = strings.TrimSuffix(line, ":")
			pkg, _, _ = strings.Cut(pkg, ":") // chromium:amd64
			cand[pkg] = ""
			continue
		}
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "Candidate:"); ok && pkg != "" {
			if v = strings.TrimSpace(v); v != "(none)" {
				cand[pkg] = v
			}
		}
	}
	return cand
}

// needToGet finds how much apt-get install downloads.
var needToGet = regexp.MustCompile(`Need to get ([0-9.,]+ [kMG]?B)`)

// lockHeld matches what apt-get and dpkg say when another process holds one
// of their locks.
var lockHeld = regexp.MustCompile(`Could not get lock|Unable to lock|Unable to acquire the dpkg frontend lock|dpkg status database is locked`)

// fetchFailed matches what apt-get says when a download failed (a mirror that
// no longer has the version the lists name).
var fetchFailed = regexp.MustCompile(`Failed to fetch|Unable to fetch some archives`).Match

// run runs apt-get with args, non-interactively and waiting for the dpkg lock
// (DPkg::Lock::Timeout). apt-get update and the download lock do not honour
// that option: while the output says a lock is held, run tries again every
// a.retry until a.lockWait has passed. It returns the output, and an error
// with its end.
func (a *apt) run(ctx context.Context, args ...string) ([]byte, error) {
	deadline := time.Now().Add(a.lockWait)
	full := append([]string{"-o", "DPkg::Lock::Timeout=" + strconv.Itoa(int(a.lockWait.Seconds())), "-o", "Dpkg::Use-Pty=0", "-q"}, args...)
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("running apt-get %s: %w", args[0], err)
		}
		// apt-get is not stopped halfway when ctx ends (Ctrl-C): a dpkg run cut
		// short leaves the system to repair with dpkg --configure -a. It runs in
		// a process group of its own, so the terminal's Ctrl-C does not reach it
		// either, and is only killed after aptTimeout.
		runCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), aptTimeout)
		cmd := exec.CommandContext(runCtx, a.bin, full...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive", "NEEDRESTART_MODE=l")
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		warn := context.AfterFunc(ctx, func() {
			a.log.Warn("stopping: waiting for apt-get to finish first", "apt_get", args[0])
		})
		out, err := cmd.CombinedOutput()
		warn()
		cancel()
		if ps := cmd.ProcessState; ps != nil {
			a.took["apt-get "+args[0]+" cpu"] += ps.UserTime() + ps.SystemTime()
		}
		if err == nil {
			if waited := lockWaited(out); waited != "" {
				a.log.Info("apt-get waited for another package manager's lock", "apt_get", args[0], "output", waited)
			}
			if ctx.Err() != nil {
				return out, fmt.Errorf("apt-get %s finished, then stopping: %w", args[0], ctx.Err())
			}
			return out, nil
		}
		if ctx.Err() != nil {
			return out, fmt.Errorf("running apt-get %s: %w", args[0], ctx.Err())
		}
		held := lockHeld.Match(out)
		if !held || time.Now().After(deadline) {
			what := fmt.Sprintf("running %s %s", filepath.Base(a.bin), strings.Join(full, " "))
			if held {
				what += fmt.Sprintf(" (a lock stayed held for %s)", a.lockWait)
			}
			return out, fmt.Errorf("%s: %w\n%s", what, err, tail(out, 3000))
		}
		if attempt == 1 {
			a.log.Info("another package manager holds a lock: waiting", "apt_get", args[0], "output", lastLine(out))
		}
		t := time.NewTimer(a.retry)
		select {
		case <-ctx.Done():
			t.Stop()
			return out, fmt.Errorf("running apt-get %s: waiting for a lock: %w", args[0], ctx.Err())
		case <-t.C:
		}
	}
}

// lockWaited returns the first line in which apt-get says it waits for a
// lock (DPkg::Lock::Timeout at work), or "".
func lockWaited(out []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if line := sc.Text(); strings.Contains(line, "Waiting for cache lock") {
			return strings.TrimSpace(line)
		}
	}
	return ""
}

func lastLine(b []byte) string {
	s := strings.TrimSpace(string(b))
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return s
}
