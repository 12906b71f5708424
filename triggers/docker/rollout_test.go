package docker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/go-connections/nat"

	"github.com/tidewatch/tidewatch/plugins/host"
	"github.com/tidewatch/tidewatch/plugins/sdk"
	"github.com/tidewatch/tidewatch/test/testbed"
	"github.com/tidewatch/tidewatch/triggers/rollout"
	"github.com/tidewatch/tidewatch/triggers/triggertest"
)

// The versions of the test app the tests roll out.
const (
	vGood      = "1.0.0" // healthy: where every container starts
	vNext      = "1.1.0" // healthy
	vSick      = "1.2.0" // fails its healthcheck
	vDies      = "1.3.0" // exits at once
	vNoSuchTag = "9.9.9" // never pushed
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
		repo := bed.Registry + "/" + unique("dockerapp")
		bed.BuildImage(t, repo+":"+vGood, testbed.AppOptions{Version: vGood, Healthcheck: true})
		bed.BuildImage(t, repo+":"+vNext, testbed.AppOptions{Version: vNext, Healthcheck: true})
		bed.BuildImage(t, repo+":"+vSick, testbed.AppOptions{Version: vSick, Healthcheck: true, Fail: testbed.FailUnhealthy})
		bed.BuildImage(t, repo+":"+vDies, testbed.AppOptions{Version: vDies, Healthcheck: true, Fail: testbed.FailExit})
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

// app is a container of the test app, as `docker run` would make it.
type app struct {
	bed  *testbed.Bed
	repo string
	name string
	url  string // its published port, http://127.0.0.1:port/
}

// spec says how to run an app; zero values are docker run's defaults.
type spec struct {
	cfg  container.Config
	host container.HostConfig
	net  *network.NetworkingConfig
}

// runApp runs a container called name as spec says (the image defaults to
// the test app on vGood, the bed's labels are added), waits until it runs,
// and removes it, and whatever the trigger left under its name, when the
// test ends.
func runApp(t testing.TB, bed *testbed.Bed, name string, s spec) container.InspectResponse {
	t.Helper()
	repo := requireImages(t, bed)
	if s.cfg.Image == "" {
		s.cfg.Image = repo + ":" + vGood
	}
	if !strings.HasPrefix(s.cfg.Image, "sha256:") {
		bed.PullImage(t, s.cfg.Image)
	}
	labels := map[string]string{testbed.LabelTest: "1", testbed.LabelBed: bed.State.ID}
	maps.Copy(labels, s.cfg.Labels)
	s.cfg.Labels = labels
	api := bed.Docker()
	created, err := api.ContainerCreate(t.Context(), &s.cfg, &s.host, s.net, nil, name)
	if err != nil {
		t.Fatalf("creating %s: %v", name, err)
	}
	t.Cleanup(func() {
		for _, n := range []string{name, name + rollout.ArchiveSuffix, created.ID} {
			_ = api.ContainerRemove(context.Background(), n, container.RemoveOptions{Force: true})
		}
	})
	if err := api.ContainerStart(t.Context(), created.ID, container.StartOptions{}); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	return bed.WaitRunning(t, created.ID)
}

// newApp runs the test app on vGood, published on a fixed port of
// 127.0.0.1, with a restart policy, its own environment and a label, and
// waits until it answers.
func newApp(t *testing.T, bed *testbed.Bed) *app {
	t.Helper()
	a := &app{bed: bed, repo: requireImages(t, bed), name: unique("dapp")}
	port := freePort(t)
	a.url = fmt.Sprintf("http://127.0.0.1:%d/", port)
	runApp(t, bed, a.name, spec{
		cfg: container.Config{Env: []string{"OWN=1"}, Labels: map[string]string{"org.example.role": "web"}, ExposedPorts: nat.PortSet{"8080/tcp": {}}},
		host: container.HostConfig{
			PortBindings:  nat.PortMap{"8080/tcp": {{HostIP: "127.0.0.1", HostPort: fmt.Sprint(port)}}},
			RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyUnlessStopped},
		},
	})
	a.checkAnswers(t, vGood)
	return a
}

// inspect returns the app's container as it is now.
func (a *app) inspect(t *testing.T) container.InspectResponse {
	t.Helper()
	return a.bed.Inspect(t, a.name)
}

// update is the update of the app to candidate, as tidewatch fires it.
func (a *app) update(t *testing.T, candidate string) sdk.Update {
	t.Helper()
	c := a.inspect(t)
	return sdk.Update{
		Key: unique("key-"), Event: sdk.EventUpdateAvailable, Host: "local",
		Container: a.name, ContainerName: a.name, ContainerID: c.ID,
		Image: a.repo, Current: vGood, Candidate: candidate, Kind: "minor",
		DetectedAt: time.Now().UTC(), Labels: c.Config.Labels,
	}
}

// checkAnswers fails the test unless the app answers version.
func (a *app) checkAnswers(t *testing.T, version string) {
	t.Helper()
	if got := strings.TrimSpace(a.bed.WaitHTTP(t, a.url)); got != version {
		t.Errorf("%s answers %q, want %s", a.name, got, version)
	}
}

// checkNoArchive fails the test when a container is kept aside under name.
func checkNoArchive(t *testing.T, bed *testbed.Bed, name string) {
	t.Helper()
	if _, err := bed.Docker().ContainerInspect(t.Context(), name+rollout.ArchiveSuffix); err == nil {
		t.Errorf("a container %s%s is left", name, rollout.ArchiveSuffix)
	}
}

// options are the trigger's options for the tests.
func options(bed *testbed.Bed, extra ...string) map[string]string {
	o := map[string]string{OptDockerHost: bed.DockerHost, OptHealthTimeout: "30s", OptStableFor: "2s"}
	for i := 0; i+1 < len(extra); i += 2 {
		o[extra[i]] = extra[i+1]
	}
	return o
}

// fire fires u at the plugin and returns the result, with its rollout.
func fire(t *testing.T, p *host.Plugin, u sdk.Update) (sdk.Result, *sdk.Rollout) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	r := p.Fire(ctx, []sdk.Update{u})[0]
	if r.Rollout == nil {
		t.Fatalf("Fire(%s → %s) = %v: no rollout in the result (was the plugin cut off?); detail %q", u.Container, u.Candidate, r.Err, r.Detail)
	}
	t.Logf("Fire(%s → %s): err %v, event %q, rollout %+v", u.Container, u.Candidate, r.Err, r.Event, *r.Rollout)
	return r, r.Rollout
}

func stepNames(ro *sdk.Rollout) []string {
	var names []string
	for _, s := range ro.Steps {
		names = append(names, s.Name)
	}
	return names
}

func stepOf(ro *sdk.Rollout, name string) sdk.RolloutStep {
	for _, s := range ro.Steps {
		if s.Name == name {
			return s
		}
	}
	return sdk.RolloutStep{}
}

// TestRollout rolls a container out through a real plugin process: a tag
// that cannot be pulled changes nothing; a failed smoke check, an image
// that turns unhealthy and one that exits at once are each rolled back to
// the same container, answering again; a good one is applied (the same
// name, port, restart policy, environment and label, the new image's
// version), and applied again (the same delivery fired twice) does nothing.
func TestRollout(t *testing.T) {
	bed := testbed.Require(t)
	a := newApp(t, bed)
	opts := options(bed, OptSmokeHTTP, a.url, OptPrune, "true")
	plugin, _ := triggertest.Start(t, "docker", opts)
	before := a.inspect(t)

	t.Run("unpullable tag changes nothing", func(t *testing.T) {
		r, ro := fire(t, plugin, a.update(t, vNoSuchTag))
		if r.Err == nil || !sdk.IsPermanent(r.Err) || r.Event != sdk.EventUpdateFailed || ro.Outcome != sdk.OutcomeFailed || ro.FailedStep != StepPull {
			t.Errorf("result: err %v, event %q, outcome %q, failed step %q; want failed at pull, permanent, update-failed", r.Err, r.Event, ro.Outcome, ro.FailedStep)
		}
		if now := a.inspect(t); now.ID != before.ID || !now.State.Running {
			t.Errorf("the container is %s (running %v), want %s untouched", now.ID[:12], now.State.Running, before.ID[:12])
		}
	})

	t.Run("failed smoke check is rolled back", func(t *testing.T) {
		o := maps.Clone(opts)
		o[OptSmokeTCP], o[OptHealthTimeout] = fmt.Sprintf("127.0.0.1:%d", freePort(t)), "3s"
		smoky, _ := triggertest.Start(t, "docker", o)
		r, ro := fire(t, smoky, a.update(t, vNext))
		if r.Err == nil || r.Event != sdk.EventUpdateRolledBack || ro.Outcome != sdk.OutcomeRolledBack || ro.FailedStep != rollout.StepSmoke || !strings.Contains(ro.Reason, "connecting to") {
			t.Errorf("result: err %v, event %q, outcome %q, failed step %q, reason %q; want rolled back after the TCP smoke check", r.Err, r.Event, ro.Outcome, ro.FailedStep, ro.Reason)
		}
		if now := a.inspect(t); now.ID != before.ID {
			t.Errorf("the container is %s, want the previous %s back", now.ID[:12], before.ID[:12])
		}
		a.checkAnswers(t, vGood)
	})

	// vDies exits at once; the restart policy (unless-stopped) restarts it.
	for _, bad := range []struct{ version, reason string }{{vSick, "unhealthy"}, {vDies, "restarted"}} {
		t.Run(bad.version+" is rolled back", func(t *testing.T) {
			r, ro := fire(t, plugin, a.update(t, bad.version))
			if r.Err == nil || !sdk.IsPermanent(r.Err) || r.Event != sdk.EventUpdateRolledBack {
				t.Errorf("result: err %v (permanent %v), event %q; want a permanent failure, update-rolled-back", r.Err, sdk.IsPermanent(r.Err), r.Event)
			}
			if ro.Outcome != sdk.OutcomeRolledBack || ro.FailedStep != rollout.StepHealth || !strings.Contains(ro.Reason, bad.reason) {
				t.Errorf("rollout: outcome %q, failed step %q, reason %q; want rolled-back after health, saying %s", ro.Outcome, ro.FailedStep, ro.Reason, bad.reason)
			}
			if logs := strings.Join(ro.Logs, "\n"); !strings.Contains(logs, "version="+bad.version) {
				t.Errorf("rollout logs = %q, want the failed container's lines", logs)
			}
			if !strings.Contains(r.Err.Error(), "version="+bad.version) {
				t.Errorf("error %q does not carry the failed container's log lines", r.Err)
			}
			now := a.inspect(t)
			if now.ID != before.ID || !now.State.Running || now.Config.Image != before.Config.Image || ro.Container != now.ID {
				t.Errorf("running %s on %s (running %v), report says %s; want the previous %s back", now.ID[:12], now.Config.Image, now.State.Running, ro.Container, before.ID[:12])
			}
			a.checkAnswers(t, vGood)
			checkNoArchive(t, bed, a.name)
		})
	}

	t.Run("applied", func(t *testing.T) {
		u := a.update(t, vNext)
		r, ro := fire(t, plugin, u)
		if r.Err != nil || r.Event != sdk.EventUpdateApplied || ro.Outcome != sdk.OutcomeApplied {
			t.Fatalf("result: err %v, event %q, outcome %q; want applied", r.Err, r.Event, ro.Outcome)
		}
		a.checkAnswers(t, vNext)
		now := a.inspect(t)
		if ro.Container != now.ID || now.ID == before.ID || now.Name != before.Name {
			t.Errorf("running %s (%s), report says %s; want a new container under the name %s", now.ID[:12], now.Name, ro.Container, before.Name)
		}
		want := []string{StepInspect, StepLock, StepPull, rollout.StepRecreate, rollout.StepHealth, rollout.StepSmoke, rollout.StepCleanup, StepPrune}
		if got := stepNames(ro); !slices.Equal(got, want) {
			t.Errorf("steps %q, want %q", got, want)
		}
		for _, s := range ro.Steps {
			if s.Error != "" {
				t.Errorf("step %s failed: %s", s.Name, s.Error)
			}
		}
		if ro.Method != "docker" || ro.Target != a.name || ro.From != a.repo+":"+vGood || ro.To != a.repo+":"+vNext {
			t.Errorf("rollout method %q target %q from %q to %q", ro.Method, ro.Target, ro.From, ro.To)
		}
		if !slices.Contains(now.Config.Env, "OWN=1") || !slices.Contains(now.Config.Env, "VERSION="+vNext) || slices.Contains(now.Config.Env, "VERSION="+vGood) {
			t.Errorf("Env = %q, want OWN=1 kept and VERSION from the new image", now.Config.Env)
		}
		if now.Config.Labels["org.example.role"] != "web" || now.HostConfig.RestartPolicy.Name != container.RestartPolicyUnlessStopped {
			t.Errorf("labels %v, restart policy %q; want the container's own kept", now.Config.Labels, now.HostConfig.RestartPolicy.Name)
		}
		checkNoArchive(t, bed, a.name)
		if _, err := bed.Docker().ImageInspect(t.Context(), before.Config.Image); err == nil {
			t.Errorf("with PRUNE, the previous image %s is still there", before.Config.Image)
		}

		// The same delivery again (tidewatch crashed before recording it):
		// the container it named is gone, the one under its name runs the image.
		r, ro = fire(t, plugin, u)
		if r.Err != nil || r.Event != sdk.EventUpdateApplied || ro.Outcome != sdk.OutcomeAlreadyApplied {
			t.Errorf("fired again: err %v, event %q, outcome %q; want already-applied", r.Err, r.Event, ro.Outcome)
		}
		if again := a.inspect(t); again.ID != now.ID {
			t.Errorf("fired again, the container was recreated (%s → %s)", now.ID[:12], again.ID[:12])
		}
	})
}

// TestDryRunTouchesNothing reports the plan and changes nothing.
func TestDryRunTouchesNothing(t *testing.T) {
	bed := testbed.Require(t)
	a := newApp(t, bed)
	before := a.inspect(t)
	plugin, _ := triggertest.Start(t, "docker", options(bed, OptDryRun, "true"))
	r, ro := fire(t, plugin, a.update(t, vNext))
	if r.Err != nil || r.Event != "" || ro.Outcome != sdk.OutcomeDryRun {
		t.Fatalf("result: err %v, event %q, outcome %q; want a dry run", r.Err, r.Event, ro.Outcome)
	}
	if plan := strings.Join(ro.Plan, "\n"); !strings.Contains(plan, "pull "+a.repo+":"+vNext) || !strings.Contains(plan, "rename "+a.name) {
		t.Errorf("plan = %q, want the pull and the recreate", plan)
	}
	if now := a.inspect(t); now.ID != before.ID {
		t.Errorf("the container changed in a dry run")
	}
	if _, err := bed.Docker().ImageInspect(t.Context(), a.repo+":"+vNext); err == nil {
		t.Logf("%s:%s is in the engine (pulled by another test)", a.repo, vNext)
	}
}

// TestRefusals: what the docker trigger must not touch is refused, for
// good, naming why, and left as it was: a compose service, a Swarm task, a
// container started with --rm, one created from an image ID, one of
// another repository, tidewatch's own container with SELF_UPDATE=false, and
// an event that is not an update.
func TestRefusals(t *testing.T) {
	bed := testbed.Require(t)
	repo := requireImages(t, bed)
	image := repo + ":" + vGood
	tests := []struct {
		name    string
		spec    spec
		opts    []string
		change  func(u *sdk.Update)
		outcome string
		reason  string
	}{
		{name: "compose service", spec: spec{cfg: container.Config{Labels: map[string]string{labelComposeProject: "shop", labelComposeService: "web"}}},
			outcome: sdk.OutcomeRefused, reason: "service web of compose project shop: the compose trigger updates it"},
		{name: "swarm task", spec: spec{cfg: container.Config{Labels: map[string]string{labelSwarmService: "shop_web", labelSwarmTask: "x1"}}},
			outcome: sdk.OutcomeRefused, reason: "a task of Swarm service shop_web"},
		{name: "--rm", spec: spec{host: container.HostConfig{AutoRemove: true}},
			outcome: sdk.OutcomeRefused, reason: "--rm"},
		{name: "image ID", spec: spec{cfg: container.Config{Image: "id"}},
			outcome: sdk.OutcomeRefused, reason: "image ID"},
		{name: "another repository", change: func(u *sdk.Update) { u.Image = "index.docker.io/library/redis" },
			outcome: sdk.OutcomeRefused, reason: "the update is for index.docker.io/library/redis"},
		{name: "own container, SELF_UPDATE=false", opts: []string{OptSelfUpdate, "false"}, change: func(u *sdk.Update) {},
			outcome: sdk.OutcomeRefused, reason: "tidewatch's own container, and SELF_UPDATE is false"},
		{name: "not an update", change: func(u *sdk.Update) { u.Event = sdk.EventUpdateRolledBack },
			outcome: sdk.OutcomeRefused, reason: "not a rollout event"},
		{name: "gone", change: func(u *sdk.Update) { u.ContainerID, u.ContainerName = unique("gone"), unique("gone") },
			outcome: sdk.OutcomeRefused, reason: "is gone"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			name := unique("refused")
			if tc.spec.cfg.Image == "id" {
				tc.spec.cfg.Image = bed.ImageInspect(t, image).ID
			}
			if tc.spec.cfg.Image == "" {
				bed.PullImage(t, image)
				tc.spec.cfg.Image = image
			}
			c := runApp(t, bed, name, tc.spec)
			opts := tc.opts
			if strings.HasPrefix(tc.name, "own container") {
				opts = append(opts, OptSelf, name)
			}
			plugin, _ := triggertest.Start(t, "docker", options(bed, opts...))
			u := sdk.Update{Key: unique("key-"), Event: sdk.EventUpdateAvailable, Container: name, ContainerName: name, ContainerID: c.ID,
				Image: repo, Current: vGood, Candidate: vNext, Kind: "minor", Labels: c.Config.Labels}
			if tc.change != nil {
				tc.change(&u)
			}
			r, ro := fire(t, plugin, u)
			if r.Err == nil || !sdk.IsPermanent(r.Err) || r.Event != "" || ro.Outcome != tc.outcome || !strings.Contains(r.Err.Error(), tc.reason) {
				t.Errorf("result: err %v (permanent %v), event %q, outcome %q; want a permanent refusal without event, saying %q", r.Err, sdk.IsPermanent(r.Err), r.Event, ro.Outcome, tc.reason)
			}
			now := bed.Inspect(t, c.ID)
			if now.Name != c.Name || !now.State.Running || now.Config.Image != c.Config.Image {
				t.Errorf("the refused container changed: %s on %s, running %v", now.Name, now.Config.Image, now.State.Running)
			}
		})
	}
}

// TestFollowers: a container that shares the app's network namespace
// (--network container:app) and one with a legacy link to it (--link
// app:alias) follow it: a rolled-back update leaves them running with the
// app back (the one in its namespace serves through the app's published
// port again), an applied one recreates them pointing at the new app.
func TestFollowers(t *testing.T) {
	bed := testbed.Require(t)
	repo := requireImages(t, bed)
	a := &app{bed: bed, repo: repo, name: unique("leader")}
	port, sidePort := freePort(t), freePort(t)
	a.url = fmt.Sprintf("http://127.0.0.1:%d/", port)
	sideURL := fmt.Sprintf("http://127.0.0.1:%d/", sidePort)
	leader := runApp(t, bed, a.name, spec{
		cfg: container.Config{ExposedPorts: nat.PortSet{"8080/tcp": {}, "8081/tcp": {}}},
		host: container.HostConfig{PortBindings: nat.PortMap{
			"8080/tcp": {{HostIP: "127.0.0.1", HostPort: fmt.Sprint(port)}},
			"8081/tcp": {{HostIP: "127.0.0.1", HostPort: fmt.Sprint(sidePort)}},
		}},
	})
	// The sidecar serves on :8081 in the leader's namespace, reached
	// through the leader's published port.
	side := unique("side")
	runApp(t, bed, side, spec{
		cfg:  container.Config{Cmd: []string{"-addr", ":8081", "-probe-url", "http://127.0.0.1:8081/healthz"}, Labels: map[string]string{"role": "side"}},
		host: container.HostConfig{NetworkMode: container.NetworkMode("container:" + a.name)},
	})
	linked := unique("linked")
	runApp(t, bed, linked, spec{host: container.HostConfig{Links: []string{a.name + ":upstream"}}})
	a.checkAnswers(t, vGood)
	bed.WaitHTTP(t, sideURL)
	plugin, _ := triggertest.Start(t, "docker", options(bed))

	t.Run("rolled back", func(t *testing.T) {
		sideBefore, linkedBefore := bed.Inspect(t, side), bed.Inspect(t, linked)
		r, ro := fire(t, plugin, a.update(t, vSick))
		if r.Event != sdk.EventUpdateRolledBack || ro.Outcome != sdk.OutcomeRolledBack {
			t.Fatalf("result: err %v, event %q; want rolled back", r.Err, r.Event)
		}
		if note := stepOf(ro, rollout.StepRollback).Note; !strings.Contains(note, side+" restarted") || !strings.Contains(note, linked+" restarted") {
			t.Errorf("rollback note %q, want both followers restarted", note)
		}
		a.checkAnswers(t, vGood)
		bed.WaitHTTP(t, sideURL)
		for _, f := range []container.InspectResponse{sideBefore, linkedBefore} {
			now := bed.Inspect(t, f.ID)
			if now.Name != f.Name || !now.State.Running {
				t.Errorf("follower %s: %s running %v; want it back, running", f.Name, now.Name, now.State.Running)
			}
		}
		if got := bed.Inspect(t, side).HostConfig.NetworkMode; got != container.NetworkMode("container:"+leader.ID) {
			t.Errorf("sidecar network mode %s, want the leader's %s", got, leader.ID[:12])
		}
	})

	t.Run("applied", func(t *testing.T) {
		r, ro := fire(t, plugin, a.update(t, vNext))
		if r.Err != nil || ro.Outcome != sdk.OutcomeApplied {
			t.Fatalf("result: err %v, outcome %q; want applied", r.Err, ro.Outcome)
		}
		note := stepOf(ro, rollout.StepFollowers).Note
		if !strings.Contains(note, side+" recreated") || !strings.Contains(note, "shares its network namespace") || !strings.Contains(note, linked+" recreated") || !strings.Contains(note, "links to it") {
			t.Errorf("followers note %q, want both followers recreated, saying why", note)
		}
		now := a.inspect(t)
		a.checkAnswers(t, vNext)
		if got := strings.TrimSpace(bed.WaitHTTP(t, sideURL)); got != vGood {
			t.Errorf("the sidecar answers %q through the new leader, want its own %s", got, vGood)
		}
		s := bed.Inspect(t, side)
		if s.HostConfig.NetworkMode != container.NetworkMode("container:"+now.ID) || s.Config.Labels["role"] != "side" || !slices.Equal(s.Config.Cmd, []string{"-addr", ":8081", "-probe-url", "http://127.0.0.1:8081/healthz"}) {
			t.Errorf("sidecar: network mode %s, labels %v, cmd %q; want in the new leader's namespace (%s), as it was", s.HostConfig.NetworkMode, s.Config.Labels, s.Config.Cmd, now.ID[:12])
		}
		l := bed.Inspect(t, linked)
		if !slices.Contains(l.HostConfig.Links, "/"+a.name+":/"+linked+"/upstream") || !l.State.Running {
			t.Errorf("linked: links %q, running %v; want the link to %s as upstream", l.HostConfig.Links, l.State.Running, a.name)
		}
		for _, n := range []string{a.name, side, linked} {
			checkNoArchive(t, bed, n)
		}
	})
}
