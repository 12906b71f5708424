package compose

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/tidewatch/tidewatch/core"
	"github.com/tidewatch/tidewatch/plugins/host"
	"github.com/tidewatch/tidewatch/plugins/sdk"
	"github.com/tidewatch/tidewatch/test/testbed"
	"github.com/tidewatch/tidewatch/triggers/composefile"
	"github.com/tidewatch/tidewatch/triggers/triggertest"
)

// The versions of the test app the tests roll out.
const (
	vGood      = "1.0.0" // healthy: where every project starts
	vNext      = "1.1.0" // healthy
	vSick      = "1.2.0" // fails its healthcheck
	vDies      = "1.3.0" // exits at once
	vNoSuchTag = "9.9.9" // never pushed
	vBare      = "1.4.0" // healthy, without healthcheck
)

// testImages are the test app images, pushed once per test binary.
var testImages struct {
	once sync.Once
	repo string
	ok   bool
}

func requireImages(t testing.TB, bed *testbed.Bed) string {
	t.Helper()
	testImages.once.Do(func() {
		repo := bed.Registry + "/" + unique("composeapp")
		bed.BuildImage(t, repo+":"+vGood, testbed.AppOptions{Version: vGood, Healthcheck: true})
		bed.BuildImage(t, repo+":"+vNext, testbed.AppOptions{Version: vNext, Healthcheck: true})
		bed.BuildImage(t, repo+":"+vSick, testbed.AppOptions{Version: vSick, Healthcheck: true, Fail: testbed.FailUnhealthy})
		bed.BuildImage(t, repo+":"+vDies, testbed.AppOptions{Version: vDies, Healthcheck: true, Fail: testbed.FailExit})
		bed.BuildImage(t, repo+":"+vBare, testbed.AppOptions{Version: vBare})
		testImages.repo, testImages.ok = repo, true
	})
	if !testImages.ok {
		t.Fatal("building the test images failed")
	}
	return testImages.repo
}

func unique(prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// freePort returns a TCP port free on 127.0.0.1 right now.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// project is a compose project of the test app, up on vGood.
type project struct {
	bed      *testbed.Bed
	repo     string
	name     string
	dir      string
	file     string
	original []byte
	urls     map[string]string // service → http://127.0.0.1:port
}

// composeTemplate is the project's file: comments, quoting and a mention of
// the running version outside the image, which must not change.
const composeTemplate = `# test project; first deployed on 1.0.0
services:
%s`

const serviceTemplate = `  %[1]s:
    image: "%[2]s:1.0.0"   # the app, 1.0.0 on day one
    ports:
      - "127.0.0.1:%[3]d:8080"
    labels:
      tidewatch.test: "1"
      note: 'pinned at 1.0.0'
`

// newProject writes a compose project with services on vGood, runs it and
// waits until each answers.
func newProject(t testing.TB, bed *testbed.Bed, services ...string) *project {
	t.Helper()
	repo := requireImages(t, bed)
	p := &project{bed: bed, repo: repo, name: unique("twc"), dir: t.TempDir(), urls: map[string]string{}}
	var body strings.Builder
	for _, s := range services {
		port := freePort(t)
		p.urls[s] = fmt.Sprintf("http://127.0.0.1:%d/", port)
		fmt.Fprintf(&body, serviceTemplate, s, repo, port)
	}
	p.file = filepath.Join(p.dir, "docker-compose.yml")
	p.original = []byte(fmt.Sprintf(composeTemplate, body.String()))
	if err := os.WriteFile(p.file, p.original, 0o644); err != nil {
		t.Fatal(err)
	}
	bed.ComposeUp(t, p.dir, p.name)
	for s, u := range p.urls {
		if got := strings.TrimSpace(bed.WaitHTTP(t, u)); got != vGood {
			t.Fatalf("service %s answers %q, want %s", s, got, vGood)
		}
	}
	return p
}

// container returns the service's running container.
func (p *project) container(t testing.TB, service string) container.InspectResponse {
	t.Helper()
	return p.bed.ComposeContainer(t, p.name, service)
}

// update is the update of service to candidate, as tidewatch fires it.
func (p *project) update(t testing.TB, service, candidate string) sdk.Update {
	t.Helper()
	c := p.container(t, service)
	return sdk.Update{
		Key: unique("key-"), Event: sdk.EventUpdateAvailable, Host: "local",
		Container: strings.TrimPrefix(c.Name, "/"), ContainerID: c.ID,
		Image: p.repo, Current: vGood, Candidate: candidate, Kind: "minor",
		DetectedAt: time.Now().UTC(), Labels: c.Config.Labels,
	}
}

// fileWith is the original file with service's tag changed to tag, in the
// image value only.
func (p *project) fileWith(service, tag string) []byte {
	old := fmt.Sprintf("  %s:\n    image: \"%s:1.0.0\"", service, p.repo)
	return bytes.Replace(p.original, []byte(old), []byte(strings.Replace(old, ":1.0.0\"", ":"+tag+"\"", 1)), 1)
}

// checkFile fails the test unless the compose file holds want.
func (p *project) checkFile(t *testing.T, want []byte) {
	t.Helper()
	got, err := os.ReadFile(p.file)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("the compose file is\n%s\nwant\n%s", got, want)
	}
}

// checkAnswers fails the test unless the service answers version on its port.
func (p *project) checkAnswers(t *testing.T, service, version string) {
	t.Helper()
	if got := strings.TrimSpace(p.bed.WaitHTTP(t, p.urls[service])); got != version {
		t.Errorf("service %s answers %q, want %s", service, got, version)
	}
}

// fire fires u at the plugin and decodes the report.
func fire(t *testing.T, p *host.Plugin, u sdk.Update) (sdk.Result, *Report) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	r := p.Fire(ctx, []sdk.Update{u})[0]
	rep, err := reportOf(r)
	if err != nil {
		t.Fatalf("Fire(%s → %s) = %v: %v", u.Container, u.Candidate, r.Err, err)
	}
	t.Logf("Fire(%s → %s): err %v, event %q, report %+v", u.Container, u.Candidate, r.Err, r.Event, rep)
	return r, rep
}

// reportOf reads the Rollout that came back through the protocol into the
// trigger's own Report, so that the tests check what tidewatch receives.
func reportOf(r sdk.Result) (*Report, error) {
	ro := r.Rollout
	if ro == nil {
		return nil, fmt.Errorf("no rollout in the result (was the plugin cut off?); detail %q", r.Detail)
	}
	rep := &Report{Outcome: ro.Outcome, Recreate: strings.TrimPrefix(ro.Method, "compose "), From: ro.From, To: ro.To,
		Container: ro.Container, FailedStep: ro.FailedStep, Reason: ro.Reason, Logs: ro.Logs, Diff: ro.Diff, Plan: ro.Plan}
	rep.Project, rep.Service, _ = strings.Cut(ro.Target, "/")
	if len(ro.Files) > 0 {
		rep.File, rep.Backup = ro.Files[0].Path, ro.Files[0].Backup
	}
	for _, st := range ro.Steps {
		rep.Steps = append(rep.Steps, Step{Name: st.Name, At: st.At, DurationMS: st.Duration.Milliseconds(), OK: st.Error == "", Error: st.Error, Note: st.Note})
	}
	return rep, nil
}

// options are the trigger's options for the tests, in mode.
func options(bed *testbed.Bed, mode string, extra ...string) map[string]string {
	o := map[string]string{OptDockerHost: bed.DockerHost, OptRecreate: mode, OptHealthTimeout: "30s", OptStableFor: "2s"}
	for i := 0; i+1 < len(extra); i += 2 {
		o[extra[i]] = extra[i+1]
	}
	return o
}

// TestRollout rolls a service out through a real plugin process, in both
// modes: a tag that cannot be pulled, an image that turns unhealthy and one
// that exits at once are each put back as they were; a good one is applied,
// and applied again (the same delivery fired twice) does nothing.
func TestRollout(t *testing.T) {
	bed := testbed.Require(t)
	cli := bed.ComposeCLI(t)
	for _, mode := range []string{RecreateCLI, RecreateEngine} {
		t.Run(mode, func(t *testing.T) {
			p := newProject(t, bed, "web")
			opts := options(bed, mode, OptSmokeHTTP, p.urls["web"])
			if mode == RecreateCLI {
				opts[OptCompose] = cli
			} else {
				opts[OptPrune] = "true"
			}
			plugin, _ := triggertest.Start(t, "compose", opts)
			before := p.container(t, "web")

			t.Run("failed smoke check is rolled back", func(t *testing.T) {
				o := maps.Clone(opts)
				o[OptSmokeTCP], o[OptHealthTimeout] = fmt.Sprintf("127.0.0.1:%d", freePort(t)), "3s"
				smoky, _ := triggertest.Start(t, "compose", o)
				r, rep := fire(t, smoky, p.update(t, "web", vNext))
				if r.Err == nil || r.Event != sdk.EventUpdateRolledBack || rep.FailedStep != StepSmoke || !strings.Contains(rep.Reason, "connecting to") {
					t.Errorf("result: err %v, event %q, failed step %q, reason %q; want rolled back after the TCP smoke check", r.Err, r.Event, rep.FailedStep, rep.Reason)
				}
				p.checkFile(t, p.original)
				p.checkAnswers(t, "web", vGood)
			})

			t.Run("unpullable tag changes nothing", func(t *testing.T) {
				before := p.container(t, "web")
				r, rep := fire(t, plugin, p.update(t, "web", vNoSuchTag))
				if r.Err == nil || !sdk.IsPermanent(r.Err) || r.Event != sdk.EventUpdateFailed {
					t.Errorf("result: err %v (permanent %v), event %q; want a permanent failure, update-failed", r.Err, sdk.IsPermanent(r.Err), r.Event)
				}
				if rep.Outcome != OutcomeFailed || rep.FailedStep != StepPull {
					t.Errorf("report: outcome %q, failed step %q; want failed at pull", rep.Outcome, rep.FailedStep)
				}
				p.checkFile(t, p.original)
				if now := p.container(t, "web"); now.ID != before.ID {
					t.Errorf("the container is %s now, want %s untouched", now.ID[:12], before.ID[:12])
				}
			})

			for _, bad := range []struct{ version, reason string }{{vSick, "unhealthy"}, {vDies, "exited"}} {
				t.Run(bad.version+" is rolled back", func(t *testing.T) {
					before := p.container(t, "web")
					r, rep := fire(t, plugin, p.update(t, "web", bad.version))
					if r.Err == nil || !sdk.IsPermanent(r.Err) || r.Event != sdk.EventUpdateRolledBack {
						t.Errorf("result: err %v (permanent %v), event %q; want a permanent failure, update-rolled-back", r.Err, sdk.IsPermanent(r.Err), r.Event)
					}
					if rep.Outcome != OutcomeRolledBack || rep.FailedStep != StepHealth || !strings.Contains(rep.Reason, bad.reason) {
						t.Errorf("report: outcome %q, failed step %q, reason %q; want rolled-back after health, saying %s", rep.Outcome, rep.FailedStep, rep.Reason, bad.reason)
					}
					if logs := strings.Join(rep.Logs, "\n"); !strings.Contains(logs, "version="+bad.version) {
						t.Errorf("report logs = %q, want the failed container's lines", logs)
					}
					p.checkFile(t, p.original)
					now := p.container(t, "web")
					if now.Image != before.Image {
						t.Errorf("the service runs image %s, want the previous %s", now.Image, before.Image)
					}
					if mode == RecreateEngine && now.ID != before.ID {
						t.Errorf("the service runs container %s, want the previous %s back", now.ID[:12], before.ID[:12])
					}
					if rep.Container != now.ID {
						t.Errorf("report container %s, want the running %s", rep.Container, now.ID)
					}
					p.checkAnswers(t, "web", vGood)
					if _, err := bed.Docker().ContainerInspect(t.Context(), now.Name+ArchiveSuffix); err == nil {
						t.Errorf("a container %s%s is left", now.Name, ArchiveSuffix)
					}
				})
			}

			t.Run("applied", func(t *testing.T) {
				u := p.update(t, "web", vNext)
				r, rep := fire(t, plugin, u)
				if r.Err != nil || r.Event != sdk.EventUpdateApplied || rep.Outcome != OutcomeApplied {
					t.Fatalf("result: err %v, event %q, outcome %q; want applied", r.Err, r.Event, rep.Outcome)
				}
				p.checkFile(t, p.fileWith("web", vNext))
				p.checkAnswers(t, "web", vNext)
				now := p.container(t, "web")
				wantName := before.Name
				if mode == RecreateEngine {
					// compose's library names containers as compose v2 does,
					// project-service-1, also those docker-compose 1.x named project_service_1.
					wantName = "/" + p.name + "-web-1"
				}
				if rep.Container != now.ID || now.Name != wantName {
					t.Errorf("running %s (%s), report says %s; want the service's container under the name %s", now.ID[:12], now.Name, rep.Container, wantName)
				}
				var names []string
				for _, s := range rep.Steps {
					names = append(names, s.Name)
					if !s.OK {
						t.Errorf("step %s failed: %s", s.Name, s.Error)
					}
				}
				want := []string{StepInspect, StepLock, StepLocate, StepPull, StepWrite, StepRecreate, StepHealth, StepSmoke, StepCleanup}
				if strings.Join(names, " ") != strings.Join(want, " ") {
					t.Errorf("steps %q, want %q", names, want)
				}
				if _, err := bed.Docker().ContainerInspect(t.Context(), before.Name+ArchiveSuffix); err == nil {
					t.Errorf("the previous container %s%s is left after success", before.Name, ArchiveSuffix)
				}
				backups, _ := filepath.Glob(p.file + ".tidewatch-*.bak")
				if len(backups) == 0 {
					t.Errorf("no backup beside %s", p.file)
				}
				if stepOf(rep, StepSmoke).OK != true {
					t.Errorf("the smoke check did not pass: %+v", stepOf(rep, StepSmoke))
				}
				if mode == RecreateEngine { // with PRUNE
					if _, err := bed.Docker().ImageInspect(t.Context(), before.Config.Image); err == nil {
						t.Errorf("with PRUNE, the previous image %s is still there", before.Config.Image)
					}
				}

				// The same delivery again (tidewatch crashed before recording it).
				r, rep = fire(t, plugin, u)
				if r.Err != nil || r.Event != sdk.EventUpdateApplied || rep.Outcome != OutcomeAlreadyApplied {
					t.Errorf("fired again: err %v, event %q, outcome %q; want already-applied", r.Err, r.Event, rep.Outcome)
				}
				if again := p.container(t, "web"); again.ID != now.ID {
					t.Errorf("fired again, the service was recreated (%s → %s)", now.ID[:12], again.ID[:12])
				}
				p.checkFile(t, p.fileWith("web", vNext))
			})
		})
	}
}

// TestDryRunTouchesNothing reports the diff and the plan, and changes
// neither the file nor the container.
func TestDryRunTouchesNothing(t *testing.T) {
	bed := testbed.Require(t)
	p := newProject(t, bed, "web")
	plugin, _ := triggertest.Start(t, "compose", options(bed, RecreateEngine, OptDryRun, "true"))
	before := p.container(t, "web")
	r, rep := fire(t, plugin, p.update(t, "web", vNext))
	if r.Err != nil || r.Event != "" || rep.Outcome != OutcomeDryRun {
		t.Fatalf("result: err %v, event %q, outcome %q; want a dry run", r.Err, r.Event, rep.Outcome)
	}
	if !strings.Contains(rep.Diff, "-    image: \""+p.repo+":1.0.0\"") || !strings.Contains(rep.Diff, "+    image: \""+p.repo+":1.1.0\"") {
		t.Errorf("diff = %q, want the image line from 1.0.0 to 1.1.0", rep.Diff)
	}
	if plan := strings.Join(rep.Plan, "\n"); !strings.Contains(plan, "pull "+p.repo+":1.1.0") || !strings.Contains(plan, "rename") {
		t.Errorf("plan = %q, want the pull and the recreate", plan)
	}
	p.checkFile(t, p.original)
	if now := p.container(t, "web"); now.ID != before.ID {
		t.Errorf("the container changed in a dry run")
	}
	if backups, _ := filepath.Glob(p.file + ".tidewatch-*.bak"); len(backups) != 0 {
		t.Errorf("a dry run left backups: %v", backups)
	}
}

// TestOneRolloutPerProject fires updates of two services of one project at
// once: the second waits until the first is done.
func TestOneRolloutPerProject(t *testing.T) {
	bed := testbed.Require(t)
	p := newProject(t, bed, "web", "api")
	plugin, _ := triggertest.Start(t, "compose", options(bed, RecreateEngine))
	updates := []sdk.Update{p.update(t, "web", vNext), p.update(t, "api", vNext)}
	results := make([]sdk.Result, 2)
	reports := make([]*Report, 2)
	var wg sync.WaitGroup
	for i := range updates {
		wg.Go(func() { results[i], reports[i] = fire(t, plugin, updates[i]) })
	}
	wg.Wait()
	for i, r := range results {
		if r.Err != nil || reports[i] == nil || reports[i].Outcome != OutcomeApplied {
			t.Fatalf("update of %s: %v; want applied", updates[i].Container, r.Err)
		}
	}
	// The one that waited took its lock after the other's last step ended.
	first, second := reports[0], reports[1]
	if lockStep(second).DurationMS < lockStep(first).DurationMS {
		first, second = second, first
	}
	end := first.Steps[len(first.Steps)-1]
	firstDone := end.At.Add(time.Duration(end.DurationMS) * time.Millisecond)
	acquired := lockStep(second).At.Add(time.Duration(lockStep(second).DurationMS) * time.Millisecond)
	if acquired.Before(firstDone.Add(-5*time.Millisecond)) || !strings.Contains(lockStep(second).Note, "waited") {
		t.Errorf("the second rollout took the lock at %s (%q), before the first ended at %s", acquired, lockStep(second).Note, firstDone)
	}
	if recreate := stepOf(second, StepRecreate); recreate.At.Before(firstDone) {
		t.Errorf("the second rollout recreated at %s, before the first ended at %s", recreate.At, firstDone)
	}
	want := p.fileWith("web", vNext)
	want = bytes.Replace(want, []byte(fmt.Sprintf("  api:\n    image: \"%s:1.0.0\"", p.repo)), []byte(fmt.Sprintf("  api:\n    image: \"%s:1.1.0\"", p.repo)), 1)
	p.checkFile(t, want)
	p.checkAnswers(t, "web", vNext)
	p.checkAnswers(t, "api", vNext)
}

func lockStep(r *Report) Step { return stepOf(r, StepLock) }

func stepOf(r *Report, name string) Step {
	for _, s := range r.Steps {
		if s.Name == name {
			return s
		}
	}
	return Step{}
}

// TestRefusals: tidewatch's own container, a built service, and an event
// that is not an update are refused, permanently, touching nothing.
func TestRefusals(t *testing.T) {
	bed := testbed.Require(t)
	p := newProject(t, bed, "web")
	before := p.container(t, "web")
	name := strings.TrimPrefix(before.Name, "/")

	t.Run("own container", func(t *testing.T) {
		plugin, _ := triggertest.Start(t, "compose", options(bed, RecreateEngine, OptSelf, name))
		r, rep := fire(t, plugin, p.update(t, "web", vNext))
		if r.Err == nil || !sdk.IsPermanent(r.Err) || r.Event != "" || rep.Outcome != OutcomeRefused {
			t.Errorf("result: err %v, event %q, outcome %q; want a permanent refusal without event", r.Err, r.Event, rep.Outcome)
		}
		if !strings.Contains(r.Err.Error(), "docker compose pull tidewatch && docker compose up -d tidewatch") {
			t.Errorf("error %q does not say how to update tidewatch", r.Err)
		}
	})
	t.Run("built service", func(t *testing.T) {
		dir := t.TempDir()
		file := filepath.Join(dir, "docker-compose.yml")
		built := []byte("services:\n  web:\n    build: .\n")
		if err := os.WriteFile(file, built, 0o644); err != nil {
			t.Fatal(err)
		}
		ctr := bed.RunContainer(t, unique("built"), p.repo+":"+vGood, map[string]string{
			"com.docker.compose.project": unique("built"), "com.docker.compose.service": "web",
			"com.docker.compose.project.working_dir": dir, "com.docker.compose.project.config_files": "docker-compose.yml",
		}, testbed.RunOptions{NoWait: true})
		u := p.update(t, "web", vNext)
		u.ContainerID, u.Labels = ctr.ID, nil
		plugin, _ := triggertest.Start(t, "compose", options(bed, RecreateEngine))
		r, rep := fire(t, plugin, u)
		if r.Err == nil || !sdk.IsPermanent(r.Err) || rep.Outcome != OutcomeRefused || rep.FailedStep != StepLocate || !strings.Contains(rep.Reason, "built") {
			t.Errorf("result: err %v, outcome %q, failed step %q; want refused at locate, saying it is built", r.Err, rep.Outcome, rep.FailedStep)
		}
		if got, _ := os.ReadFile(file); !bytes.Equal(got, built) {
			t.Errorf("the file of a built service changed: %q", got)
		}
		if st := bed.Inspect(t, ctr.ID); st.Name != "/"+ctr.Name || st.Config.Image != p.repo+":"+vGood {
			t.Errorf("the container of a built service changed: %s on %s", st.Name, st.Config.Image)
		}
	})
	t.Run("file in a git source's clone", func(t *testing.T) {
		clone := t.TempDir()
		if err := os.MkdirAll(filepath.Join(clone, ".git"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(clone, ".git", core.GitSourceMarker), []byte("prod\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(clone, "apps")
		os.MkdirAll(dir, 0o755)
		file := filepath.Join(dir, "docker-compose.yml")
		declared := []byte("services:\n  web:\n    image: " + p.repo + ":" + vGood + "\n")
		if err := os.WriteFile(file, declared, 0o644); err != nil {
			t.Fatal(err)
		}
		ctr := bed.RunContainer(t, unique("fromgit"), p.repo+":"+vGood, map[string]string{
			"com.docker.compose.project": unique("fromgit"), "com.docker.compose.service": "web",
			"com.docker.compose.project.working_dir": dir, "com.docker.compose.project.config_files": "docker-compose.yml",
		}, testbed.RunOptions{NoWait: true})
		u := p.update(t, "web", vNext)
		u.ContainerID, u.Labels = ctr.ID, nil
		plugin, _ := triggertest.Start(t, "compose", options(bed, RecreateEngine))
		r, rep := fire(t, plugin, u)
		if r.Err == nil || !sdk.IsPermanent(r.Err) || rep.Outcome != OutcomeRefused || rep.FailedStep != StepLocate || !strings.Contains(rep.Reason, "git source prod") {
			t.Errorf("result: err %v, outcome %q, failed step %q; want refused at locate, naming the git source", r.Err, rep.Outcome, rep.FailedStep)
		}
		if got, _ := os.ReadFile(file); !bytes.Equal(got, declared) {
			t.Errorf("the source's file changed: %q", got)
		}
	})
	t.Run("not an update", func(t *testing.T) {
		plugin, _ := triggertest.Start(t, "compose", options(bed, RecreateEngine))
		u := p.update(t, "web", vNext)
		u.Event = sdk.EventUpdateRolledBack
		r, rep := fire(t, plugin, u)
		if r.Err == nil || !sdk.IsPermanent(r.Err) || rep.Outcome != OutcomeRefused {
			t.Errorf("result: err %v, outcome %q; want a permanent refusal", r.Err, rep.Outcome)
		}
	})
	p.checkFile(t, p.original)
	if now := p.container(t, "web"); now.ID != before.ID {
		t.Errorf("the container changed")
	}
}

// TestRolloutEnvVariable rolls out a service whose tag comes from the
// project's .env, with the compose CLI: the .env changes, the compose file
// does not, and compose reads the new value.
func TestRolloutEnvVariable(t *testing.T) {
	bed := testbed.Require(t)
	repo := requireImages(t, bed)
	dir := t.TempDir()
	port := freePort(t)
	file := []byte(fmt.Sprintf("services:\n  web:\n    image: %s:${WEB_TAG:-0.0.1}\n    ports: [\"127.0.0.1:%d:8080\"]\n    labels: {tidewatch.test: \"1\"}\n", repo, port))
	env := []byte("# pinned versions\nOTHER=1.0.0\nWEB_TAG=1.0.0\n")
	if err := os.WriteFile(filepath.Join(dir, "docker-compose.yml"), file, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".env"), env, 0o600); err != nil {
		t.Fatal(err)
	}
	p := &project{bed: bed, repo: repo, name: unique("twcenv"), dir: dir, file: filepath.Join(dir, "docker-compose.yml"), original: file, urls: map[string]string{"web": fmt.Sprintf("http://127.0.0.1:%d/", port)}}
	bed.ComposeUp(t, dir, p.name)
	p.checkAnswers(t, "web", vGood)

	plugin, _ := triggertest.Start(t, "compose", options(bed, RecreateCLI, OptCompose, bed.ComposeCLI(t)))
	r, rep := fire(t, plugin, p.update(t, "web", vNext))
	if r.Err != nil || rep.Outcome != OutcomeApplied || rep.File != filepath.Join(dir, ".env") {
		t.Fatalf("result: err %v, outcome %q, file %q; want applied to the .env", r.Err, rep.Outcome, rep.File)
	}
	p.checkFile(t, file)
	if got, _ := os.ReadFile(filepath.Join(dir, ".env")); string(got) != "# pinned versions\nOTHER=1.0.0\nWEB_TAG=1.1.0\n" {
		t.Errorf(".env = %q, want only WEB_TAG changed", got)
	}
	p.checkAnswers(t, "web", vNext)
}

// TestDeadlineLeavesTimeForRollback fires with a deadline shorter than the
// gate needs: the rollout gives up at half the deadline and rolls back in
// the other half, so that the plugin answers before tidewatch cuts it off.
func TestDeadlineLeavesTimeForRollback(t *testing.T) {
	bed := testbed.Require(t)
	p := newProject(t, bed, "web")
	before := p.container(t, "web")
	plugin, _ := triggertest.Start(t, "compose", options(bed, RecreateEngine, OptStableFor, "5m"))
	const deadline = 40 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	begin := time.Now()
	r := plugin.Fire(ctx, []sdk.Update{p.update(t, "web", vBare)})[0]
	took := time.Since(begin)
	rep, err := reportOf(r)
	if err != nil {
		t.Fatalf("Fire = %v: %v; want a report", r.Err, err)
	}
	if r.Event != sdk.EventUpdateRolledBack || rep.FailedStep != StepHealth || !strings.Contains(rep.Reason, "deadline") {
		t.Errorf("result: err %v, event %q, failed step %q, reason %q; want rolled back after the health gate ran out of time", r.Err, r.Event, rep.FailedStep, rep.Reason)
	}
	if took >= deadline {
		t.Errorf("Fire took %s, past its %s deadline", took, deadline)
	}
	p.checkFile(t, p.original)
	if now := p.container(t, "web"); now.ID != before.ID {
		t.Errorf("the service runs %s, want the previous container %s back", now.ID[:12], before.ID[:12])
	}
	p.checkAnswers(t, "web", vGood)
}

// TestInterruptedRolloutRollsBack: a rollout killed after it rewrote the
// file (the file names the new tag, the old container still runs) is fired
// again; when the new version fails its healthcheck, the rollback restores
// the file from that rollout's backup, not the half-done one.
func TestInterruptedRolloutRollsBack(t *testing.T) {
	bed := testbed.Require(t)
	p := newProject(t, bed, "web")
	// The interrupted rollout's write, with its backup, and nothing else.
	target, err := composefile.Locate(p.container(t, "web").Config.Labels, composefile.LocateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	change, err := target.Plan(vSick, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := change.Apply(3); err != nil {
		t.Fatal(err)
	}
	p.checkFile(t, p.fileWith("web", vSick))

	plugin, _ := triggertest.Start(t, "compose", options(bed, RecreateEngine))
	r, rep := fire(t, plugin, p.update(t, "web", vSick))
	if r.Event != sdk.EventUpdateRolledBack || rep.Outcome != OutcomeRolledBack {
		t.Fatalf("result: err %v, event %q, outcome %q; want rolled back", r.Err, r.Event, rep.Outcome)
	}
	p.checkFile(t, p.original)
	p.checkAnswers(t, "web", vGood)
}
