package testbed

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fakeMachine is a lookup over a made-up set of commands, files and variables.
type fakeMachine struct {
	commands map[string]string // command → path
	files    []string
	env      map[string]string
}

func (m fakeMachine) lookup() lookup {
	return lookup{
		command: func(name string) (string, error) {
			if p, ok := m.commands[name]; ok {
				return p, nil
			}
			return "", exec.ErrNotFound
		},
		file:   func(path string) bool { return slices.Contains(m.files, path) },
		getenv: func(key string) string { return m.env[key] },
	}
}

// everything is a machine with every Debian part.
func everything() fakeMachine {
	return fakeMachine{
		commands: map[string]string{"docker": "/usr/bin/docker", "dockerd": "/usr/sbin/dockerd", "docker-registry": "/usr/bin/docker-registry",
			"mosquitto": "/usr/sbin/mosquitto", "mosquitto_passwd": "/usr/bin/mosquitto_passwd", "git": "/usr/bin/git"},
		files: []string{"/usr/bin/docker-compose", "/usr/bin/chromium", "/etc/ssl/certs/ca-certificates.crt"},
	}
}

func TestPlanDebian(t *testing.T) {
	all := []string{"docker.io", "docker-registry", "docker-compose", "chromium", "mosquitto", "git", "ca-certificates"}
	without := func(m fakeMachine, cmds []string, files ...string) fakeMachine {
		c := map[string]string{}
		for k, v := range m.commands {
			if !slices.Contains(cmds, k) {
				c[k] = v
			}
		}
		var f []string
		for _, p := range m.files {
			if !slices.Contains(files, p) {
				f = append(f, p)
			}
		}
		return fakeMachine{commands: c, files: f, env: m.env}
	}
	tests := []struct {
		name          string
		machine       fakeMachine
		engineAnswers bool
		wantPkgs      []string
		wantFound     map[string]string // checked when set
		wantErr       string
	}{
		{name: "everything there", machine: everything(), wantPkgs: nil},
		{name: "fresh machine, no engine", machine: fakeMachine{}, wantPkgs: all},
		{name: "fresh machine, an engine answers elsewhere: docker.io for the CLI only", machine: fakeMachine{}, engineAnswers: true, wantPkgs: all},
		{name: "only dockerd missing, an engine answers", machine: without(everything(), []string{"dockerd"}), engineAnswers: true, wantPkgs: nil},
		{name: "only dockerd missing, no engine", machine: without(everything(), []string{"dockerd"}), wantPkgs: []string{"docker.io"}},
		{name: "docker CLI and dockerd missing: docker.io once", machine: without(everything(), []string{"docker", "dockerd"}), wantPkgs: []string{"docker.io"}},
		{name: "mosquitto_passwd alone missing", machine: without(everything(), []string{"mosquitto_passwd"}), wantPkgs: []string{"mosquitto"}},
		{name: "chromium and compose missing", machine: without(everything(), nil, "/usr/bin/chromium", "/usr/bin/docker-compose"),
			wantPkgs: []string{"docker-compose", "chromium"}},
		{name: "a docker-compose on PATH is not Debian's", machine: func() fakeMachine {
			m := without(everything(), nil, "/usr/bin/docker-compose")
			m.commands["docker-compose"] = "/usr/local/bin/docker-compose"
			return m
		}(), wantPkgs: []string{"docker-compose"}},
		{name: "CA certificates missing", machine: without(everything(), nil, "/etc/ssl/certs/ca-certificates.crt"), wantPkgs: []string{"ca-certificates"}},
		{name: "TIDEWATCH_CHROMIUM names a browser: no chromium package", machine: func() fakeMachine {
			m := without(everything(), nil, "/usr/bin/chromium")
			m.files = append(m.files, "/opt/chrome/chrome")
			m.env = map[string]string{EnvChromium: "/opt/chrome/chrome"}
			return m
		}(), wantPkgs: nil, wantFound: map[string]string{PartChromium: "/opt/chrome/chrome"}},
		{name: "TIDEWATCH_CHROMIUM names nothing", machine: func() fakeMachine {
			m := everything()
			m.env = map[string]string{EnvChromium: "/nowhere/chrome\n; rm -rf /"}
			return m
		}(), wantErr: EnvChromium + `="/nowhere/chrome\n; rm -rf /": no such file`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			plan, err := planDebian(debParts, tc.machine.lookup(), tc.engineAnswers)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("planDebian error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("planDebian: %v", err)
			}
			if diff := cmp.Diff(tc.wantPkgs, plan.pkgs); diff != "" {
				t.Errorf("packages to install (-want +got):\n%s", diff)
			}
			for part, want := range tc.wantFound {
				if got := plan.found[part]; got != want {
					t.Errorf("found[%s] = %q, want %q", part, got, want)
				}
			}
			for part, pkg := range plan.missing {
				if !slices.Contains(plan.pkgs, pkg) {
					t.Errorf("part %s is missing but its package %s is not installed", part, pkg)
				}
				if _, ok := plan.found[part]; ok {
					t.Errorf("part %s both found and missing", part)
				}
			}
		})
	}
}

func TestParsePolicy(t *testing.T) {
	out := `chromium:
  Installed: (none)
  Candidate: 156.0.8078.114-1~deb12u1
  Version table:
     156.0.8078.114-1~deb12u1 500
        500 http://deb.debian.org/debian-security bookworm-security/main amd64 Packages
docker.io:
  Installed: 20.10.24+dfsg1-1+deb12u1+b6
  Candidate: 20.10.24+dfsg1-1+deb12u1+b6
  Version table:
 *** 20.10.24+dfsg1-1+deb12u1+b6 500
        100 /var/lib/dpkg/status
mosquitto:amd64:
  Installed: (none)
  Candidate: (none)
  Version table:
`
	want := map[string]string{"chromium": "156.0.8078.114-1~deb12u1", "docker.io": "20.10.24+dfsg1-1+deb12u1+b6", "mosquitto": ""}
	if diff := cmp.Diff(want, parsePolicy([]byte(out))); diff != "" {
		t.Errorf("parsePolicy (-want +got):\n%s", diff)
	}
	if got := parsePolicy(nil); len(got) != 0 {
		t.Errorf("parsePolicy(nothing) = %v, want empty", got)
	}
}

func TestListsAge(t *testing.T) {
	dir := t.TempDir()
	if _, ok := listsAge(dir); ok {
		t.Errorf("listsAge(empty folder) ok, want none")
	}
	if _, ok := listsAge(filepath.Join(dir, "missing")); ok {
		t.Errorf("listsAge(missing folder) ok, want none")
	}
	write := func(name string, age time.Duration) {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		at := time.Now().Add(-age)
		if err := os.Chtimes(p, at, at); err != nil {
			t.Fatal(err)
		}
	}
	write("lock", 0)
	write("deb.debian.org_debian_dists_bookworm_InRelease", 0)
	if _, ok := listsAge(dir); ok {
		t.Errorf("listsAge without a Packages file ok, want none")
	}
	write("deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages.lz4", 72*time.Hour)
	write("deb.debian.org_debian-security_dists_bookworm-security_main_binary-amd64_Packages.lz4", 3*time.Hour)
	age, ok := listsAge(dir)
	if !ok || age < 3*time.Hour || age > 4*time.Hour {
		t.Errorf("listsAge = %s, %v; want about 3h (the newest list)", age, ok)
	}
}

// fakeApt writes an apt-get and an apt-cache into a folder: apt-get appends
// its arguments to calls, and for the first lockedRuns runs (counted in
// count) prints the lock message and exits 100; a run whose first argument
// after the options is in fail prints failOut and exits 100. apt-cache
// policy answers policyOut.
func fakeApt(t *testing.T, lockedRuns int, lockMsg string, fail map[string]string, policyOut string) (a *apt, calls string) {
	t.Helper()
	dir := t.TempDir()
	calls = filepath.Join(dir, "calls")
	count := filepath.Join(dir, "count")
	var cases strings.Builder
	for verb, out := range fail {
		fmt.Fprintf(&cases, "  %s) printf '%%s\\n' %q; exit 100;;\n", verb, out)
	}
	script := fmt.Sprintf(`#!/bin/sh
echo "$*" >> %[1]s
n=$(cat %[2]s 2>/dev/null || echo 0); n=$((n+1)); echo $n > %[2]s
if [ $n -le %[3]d ]; then echo %[4]q; exit 100; fi
while [ "$1" = -o ] || [ "$1" = -q ]; do if [ "$1" = -o ]; then shift; fi; shift; done
case "$1" in
%[5]s  *) echo "did $*";;
esac
`, calls, count, lockedRuns, lockMsg, cases.String())
	if err := os.WriteFile(filepath.Join(dir, "apt-get"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "policy"), []byte(policyOut), 0o644); err != nil {
		t.Fatal(err)
	}
	cache := fmt.Sprintf("#!/bin/sh\ncat %s\n", filepath.Join(dir, "policy"))
	if err := os.WriteFile(filepath.Join(dir, "apt-cache"), []byte(cache), 0o755); err != nil {
		t.Fatal(err)
	}
	lists := filepath.Join(dir, "lists")
	if err := os.Mkdir(lists, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(lists, "x_main_binary-amd64_Packages"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	return &apt{bin: filepath.Join(dir, "apt-get"), cache: filepath.Join(dir, "apt-cache"), lists: lists,
		lockWait: 5 * time.Second, retry: 20 * time.Millisecond, log: log, took: map[string]time.Duration{}}, calls
}

// aptCalls returns the apt-get command lines that ran, one per run.
func aptCalls(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

func TestAptInstall(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh")
	}
	const opts = "-o DPkg::Lock::Timeout=5 -o Dpkg::Use-Pty=0 -q"
	known := "git:\n  Candidate: 1:2.39.5\nchromium:\n  Candidate: 156.0\n"
	tests := []struct {
		name       string
		lockedRuns int
		lockMsg    string
		fail       map[string]string
		policy     string
		staleLists bool
		lockWait   time.Duration
		want       []string // apt-get command lines
		wantErr    string
	}{
		{name: "fresh lists know every package: install only", policy: known,
			want: []string{opts + " install -y git chromium"}},
		{name: "a package without candidate: update first", policy: "git:\n  Candidate: 1:2.39.5\nchromium:\n  Candidate: (none)\n",
			want: []string{opts + " update", opts + " install -y git chromium"}},
		{name: "a package the lists do not know: update first", policy: "git:\n  Candidate: 1:2.39.5\n",
			want: []string{opts + " update", opts + " install -y git chromium"}},
		{name: "stale lists: update first", policy: known, staleLists: true,
			want: []string{opts + " update", opts + " install -y git chromium"}},
		{name: "dpkg frontend lock held twice: waits, then installs", policy: known, lockedRuns: 2,
			lockMsg: "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 4242 (apt-get)",
			want:    []string{opts + " install -y git chromium", opts + " install -y git chromium", opts + " install -y git chromium"}},
		{name: "lists lock held during update: waits", policy: "", lockedRuns: 1,
			lockMsg: "E: Could not get lock /var/lib/apt/lists/lock. It is held by process 77 (apt-get)",
			want:    []string{opts + " update", opts + " update", opts + " install -y git chromium"}},
		{name: "lock held for longer than the wait: fails naming it", policy: known, lockedRuns: 1000, lockWait: 300 * time.Millisecond,
			lockMsg: "E: Unable to acquire the dpkg frontend lock (/var/lib/dpkg/lock-frontend), is another process using it?",
			wantErr: "a lock stayed held for 300ms"},
		{name: "fetch failure with fresh lists: update, install again", policy: known,
			fail: map[string]string{"install": "E: Failed to fetch http://deb.debian.org/debian/pool/main/c/chromium/chromium_1_amd64.deb 404 Not Found"},
			want: []string{opts + " install -y git chromium", opts + " update", opts + " install -y git chromium"}, wantErr: "Failed to fetch"},
		{name: "another error: no retry", policy: known,
			fail:    map[string]string{"install": "E: Unable to locate package chromium"},
			want:    []string{opts + " install -y git chromium"},
			wantErr: "Unable to locate package chromium"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, calls := fakeApt(t, tc.lockedRuns, tc.lockMsg, tc.fail, tc.policy)
			if tc.lockWait != 0 {
				a.lockWait = tc.lockWait
			}
			if tc.staleLists {
				old := time.Now().Add(-3 * aptListsMaxAge)
				if err := os.Chtimes(filepath.Join(a.lists, "x_main_binary-amd64_Packages"), old, old); err != nil {
					t.Fatal(err)
				}
			}
			err := a.install(context.Background(), []string{"git", "chromium"})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("install error = %v, want one containing %q", err, tc.wantErr)
				}
			} else if err != nil {
				t.Fatalf("install: %v", err)
			}
			if tc.want == nil {
				return
			}
			got := aptCalls(t, calls)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("apt-get runs (-want +got):\n%s", diff)
			}
		})
	}
}

// TestAptInstallStopsWhenCancelled: a cancelled bedctl does not keep waiting for a lock.
func TestAptInstallStopsWhenCancelled(t *testing.T) {
	a, _ := fakeApt(t, 1000, "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 1 (apt-get)", nil, "git:\n  Candidate: 1\n")
	a.lockWait = time.Hour
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := a.install(ctx, []string{"git"})
	if err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("install error = %v, want the context's deadline", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("install took %s after its context ended, want it to stop waiting", took)
	}
}

// TestAptInstallFinishesWhenCancelled: Ctrl-C while apt-get runs does not
// cut it short (a dpkg run stopped halfway breaks the system); Install then
// stops with the context's error.
func TestAptInstallFinishesWhenCancelled(t *testing.T) {
	a, calls := fakeApt(t, 0, "", nil, "git:\n  Candidate: 1\n")
	// The fake apt-get takes 1 s and then records that it finished.
	script, err := os.ReadFile(a.bin)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	started, done := filepath.Join(dir, "started"), filepath.Join(dir, "finished")
	script = bytes.Replace(script, []byte("#!/bin/sh\n"), []byte("#!/bin/sh\ntouch "+started+"; sleep 1; touch "+done+"\n"), 1)
	if err := os.WriteFile(a.bin, script, 0o755); err != nil {
		t.Fatal(err)
	}
	// Ctrl-C once apt-get runs, however long a loaded machine takes to start it.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		deadline := time.Now().Add(time.Minute)
		for time.Now().Before(deadline) {
			if _, err := os.Stat(started); err == nil {
				cancel()
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	err = a.install(ctx, []string{"git"})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("install error = %v, want the context's cancellation", err)
	}
	if _, err := os.Stat(done); err != nil {
		t.Errorf("apt-get did not finish before install returned: %v", err)
	}
	if got := aptCalls(t, calls); len(got) != 1 {
		t.Errorf("apt-get ran %d times (%q), want once", len(got), got)
	}
}

// TestOnlyTheBedInstalls keeps installing in one place: no Go file of the
// module outside test/testbed runs apt-get, dpkg or go install (parallel test
// packages that installed what they missed fought over the dpkg lock).
func TestOnlyTheBedInstalls(t *testing.T) {
	root, err := ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	forbidden := regexp.MustCompile(`"(apt-get|apt|dpkg|aptitude)"|"go",\s*"install"|goBin,\s*"install"`)
	own := filepath.Join(root, "test", "testbed")
	checked := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path == own || strings.HasPrefix(d.Name(), ".") || d.Name() == "bin" || d.Name() == "testdata" {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		checked++
		if loc := forbidden.FindIndex(b); loc != nil {
			line := 1 + bytes.Count(b[:loc[0]], []byte("\n"))
			t.Errorf("%s:%d runs %s: only the test bed installs (test/testbed Install, before any test starts)", path, line, b[loc[0]:loc[1]])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 50 {
		t.Fatalf("checked %d Go files under %s, want the whole module", checked, root)
	}
	// The pattern finds what it is meant to.
	for _, s := range []string{`exec.Command("apt-get", "install", "-y", "chromium")`, `exec.CommandContext(ctx, "go", "install", m)`} {
		if !forbidden.MatchString(s) {
			t.Errorf("pattern misses %s", s)
		}
	}
}
