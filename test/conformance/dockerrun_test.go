package conformance

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/tidewatch/tidewatch/plugins/sdk"
	"github.com/tidewatch/tidewatch/test/testbed"
	"github.com/tidewatch/tidewatch/triggers/docker"
	"github.com/tidewatch/tidewatch/triggers/rollout"
)

// shiftingImage pushes the test app as repo:version with defaults that all
// differ between 1.0.0 and 1.1.0: environment, entrypoint and command,
// working dir, user, healthcheck, VOLUMEs, labels, EXPOSEd ports and stop
// signal. Both versions serve on :8080 and probe it.
func shiftingImage(t *testing.T, bed *testbed.Bed, repo, version string) {
	t.Helper()
	img := bed.AppImage(t, testbed.AppOptions{Version: version, Healthcheck: true})
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	c := &cf.Config
	if version == "1.0.0" {
		c.Env = []string{"PATH=/", "VERSION=1.0.0", "MODE=one", "ONLY_V1=yes"}
		c.Entrypoint, c.Cmd = []string{"/app", "-addr", ":8080"}, []string{"-probe-url", "http://127.0.0.1:8080/healthz"}
		c.WorkingDir, c.User, c.StopSignal = "/w1", "", "SIGTERM"
		c.Healthcheck.Interval, c.Healthcheck.Retries = time.Second, 2
		c.Volumes = map[string]struct{}{"/both": {}, "/v1data": {}}
		c.Labels = map[string]string{"org.example.version": "1", "org.example.only-v1": "yes"}
		c.ExposedPorts = map[string]struct{}{"8080/tcp": {}, "9001/tcp": {}}
	} else {
		c.Env = []string{"PATH=/", "VERSION=" + version, "MODE=two", "ONLY_V2=yes"}
		c.Entrypoint, c.Cmd = []string{"/app"}, []string{"-addr", ":8080"}
		c.WorkingDir, c.User, c.StopSignal = "/w2", "1000", "SIGINT"
		c.Healthcheck.Interval, c.Healthcheck.Retries = 2*time.Second, 3
		c.Volumes = map[string]struct{}{"/both": {}, "/v2data": {}}
		c.Labels = map[string]string{"org.example.version": "2", "org.example.only-v2": "yes"}
		c.ExposedPorts = map[string]struct{}{"8080/tcp": {}, "9002/tcp": {}}
	}
	var out v1.Image
	if out, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	bed.PushImage(t, repo+":"+version, out)
}

// TestRunConformance runs each variant of the docker-run corpus with the
// docker CLI on 1.0.0 of the shifting image, writes a marker into each of
// its volumes, and recreates it on 1.1.0 with the docker trigger. Then:
//   - the recreated container must equal a reference made by `docker
//     create` with the same options on 1.1.0 — every user setting kept,
//     every image default the new image's — but for the fields in
//     runExclusions;
//   - between before and after, only what the image gives may differ
//     (imageFields);
//   - each marker is read back from the same volume, a volume only the old
//     image declared is kept unmounted, no mount is pinned but anonymous
//     volumes carried over, and no -tidewatch-old container is left.
//
// The normal run recreates runSample; with the faults build tag (make
// faults) the whole corpus.
func TestRunConformance(t *testing.T) {
	bed := testbed.Require(t)
	cli := bed.Part(t, testbed.PartDocker)
	variants := runCorpus
	if !fullCorpus {
		variants = slices.DeleteFunc(slices.Clone(runCorpus), func(v runVariant) bool { return !slices.Contains(runSample, v.name) })
	}
	repo := bed.Registry + "/" + unique("shift")
	shiftingImage(t, bed, repo, "1.0.0")
	shiftingImage(t, bed, repo, "1.1.0")
	bed.PullImage(t, repo+":1.0.0")
	bed.PullImage(t, repo+":1.1.0")

	run := unique("twrun")
	h := &runHarness{t: t, bed: bed, cli: cli, run: run, repo: repo}
	h.setUp()
	trigger := docker.NewWithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := trigger.Configure(t.Context(), "conformance", map[string]string{
		docker.OptDockerHost: bed.DockerHost, docker.OptHealthTimeout: "60s", docker.OptStableFor: "1s",
	}); err != nil {
		t.Fatal(err)
	}
	hid := map[string]int{}
	t.Cleanup(func() {
		for _, e := range runExclusions {
			t.Logf("exclusion %s hid %d differences: %s", e.path, hid[e.path.String()], e.why)
		}
	})
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) { h.variant(t, trigger, v, hid) })
	}
}

// runHarness holds what the variants share: networks, volumes, a folder,
// a leader container.
type runHarness struct {
	t        *testing.T
	bed      *testbed.Bed
	cli      string
	run      string // names this run (networks, volumes, containers)
	repo     string
	replacer *strings.Replacer
}

// setUp makes the networks, volumes, folder, env file and leader the
// placeholders name, removed when the test ends.
func (h *runHarness) setUp() {
	t, api := h.t, h.bed.Docker()
	ctx := t.Context()
	labels := map[string]string{testbed.LabelTest: "1"}
	b := make([]byte, 1)
	_, _ = rand.Read(b)
	prefix := fmt.Sprintf("10.232.%d", b[0])
	for _, n := range []string{"net", "net2", "fixed"} {
		opts := network.CreateOptions{Labels: labels}
		if n == "fixed" {
			opts.IPAM = &network.IPAM{Config: []network.IPAMConfig{{Subnet: prefix + ".0/24"}}}
		}
		name := h.run + "-" + n
		if _, err := api.NetworkCreate(ctx, name, opts); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = api.NetworkRemove(context.Background(), name) })
	}
	for _, v := range []string{"named", "named2"} {
		name := h.run + "-" + v
		if _, err := api.VolumeCreate(ctx, volume.CreateOptions{Name: name, Labels: labels}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = api.VolumeRemove(context.Background(), name, true) })
	}
	dir := t.TempDir()
	bind, envfile := filepath.Join(dir, "bind"), filepath.Join(dir, "app.env")
	if err := os.MkdirAll(bind, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(envfile, []byte(runEnvFile), 0o644); err != nil {
		t.Fatal(err)
	}
	leader := h.run + "-leader"
	// The leader serves on :8090: the net-container variant shares its
	// network namespace and serves on :8080 itself.
	h.docker(t, "run", "-d", "--name", leader, "--label", testbed.LabelTest+"=1", "--label", testbed.LabelBed+"="+h.bed.State.ID,
		"--no-healthcheck", h.repo+":1.0.0", "-addr", ":8090")
	t.Cleanup(func() { h.remove(leader) })
	h.replacer = strings.NewReplacer("{net}", h.run+"-net", "{net2}", h.run+"-net2", "{fixed}", h.run+"-fixed", "{prefix}", prefix,
		"{named}", h.run+"-named", "{named2}", h.run+"-named2", "{bind}", bind, "{envfile}", envfile, "{leader}", leader)
}

// variant runs v, recreates it, and checks it.
func (h *runHarness) variant(t *testing.T, trigger *docker.Trigger, v runVariant, hid map[string]int) {
	bed := h.bed
	name := h.run + "-" + v.name
	args := make([]string, len(v.args))
	for i, a := range v.args {
		args[i] = h.replacer.Replace(a)
	}
	labels := []string{"--label", testbed.LabelTest + "=1", "--label", testbed.LabelBed + "=" + bed.State.ID}
	// The anonymous volumes the variant made (the original's, carried over
	// or left, and the reference's), removed after the containers.
	var anonymous []string
	t.Cleanup(func() { h.removeVolumes(anonymous) })
	t.Cleanup(func() {
		for _, n := range []string{name, name + rollout.ArchiveSuffix, name + "-reference"} {
			h.remove(n)
		}
	})
	h.docker(t, slices.Concat([]string{"run", "-d", "--name", name}, labels, args, []string{h.repo + ":1.0.0"}, v.cmd)...)
	if v.connect != nil {
		h.connect(t, v.connect, name)
	}
	before := bed.WaitRunning(t, name)
	volumes := map[string]string{}
	for _, p := range v.marked {
		volumes[p] = bed.VolumeAt(t, before.ID, p)
		bed.WriteFile(t, before.ID, p+"/marker", []byte(name+p))
	}
	before = bed.Inspect(t, name)
	anonymous = append(anonymous, anonymousVolumes(before)...)

	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	res := trigger.Fire(ctx, []sdk.Update{{
		Key: unique("run-"), Event: sdk.EventUpdateAvailable, Host: "local", Container: name, ContainerName: name, ContainerID: before.ID,
		Labels: before.Config.Labels, Image: h.repo, Current: "1.0.0", Candidate: "1.1.0", Kind: "minor", DetectedAt: time.Now().UTC(),
	}})[0]
	cancel()
	if res.Err != nil || res.Rollout == nil || res.Rollout.Outcome != sdk.OutcomeApplied {
		t.Fatalf("%s: the docker trigger did not apply 1.1.0: %v (%+v)", v.name, res.Err, res.Rollout)
	}
	after := bed.Inspect(t, name)
	anonymous = append(anonymous, anonymousVolumes(after)...)
	if _, err := bed.Docker().ContainerInspect(t.Context(), name+rollout.ArchiveSuffix); err == nil {
		t.Errorf("%s: %s%s is left after an applied recreate", v.name, name, rollout.ArchiveSuffix)
	}
	if after.ID == before.ID || after.Config.Image != h.repo+":1.1.0" || !after.State.Running {
		t.Fatalf("%s: after the recreate %s runs %s (running %v); want a new container on 1.1.0", v.name, after.ID[:12], after.Config.Image, after.State.Running)
	}
	for _, p := range v.marked {
		if p == "/v1data" {
			// Only 1.0.0 declares this VOLUME: a docker run on 1.1.0 mounts
			// nothing there, and the volume is kept, not removed.
			if got := volumeAt(after, p); got != "" {
				t.Errorf("%s: %s is volume %s after the recreate, want none (1.1.0 declares no VOLUME there)", v.name, p, got)
			}
			if !bed.VolumeExists(t, volumes[p]) {
				t.Errorf("%s: the volume %s the original had at %s was removed; want it kept", v.name, volumes[p], p)
			}
			continue
		}
		if got := volumeAt(after, p); got != volumes[p] {
			t.Errorf("%s: %s is volume %s after the recreate, want %s as before", v.name, p, orAbsent(got), volumes[p])
			continue
		}
		if got, ok := bed.ReadFile(t, after.ID, p+"/marker"); !ok || string(got) != name+p {
			t.Errorf("%s: %s/marker = %q (found %v) after the recreate, want the marker written before", v.name, p, got, ok)
		}
	}

	checkMounts(t, v.name, before, after)

	// The reference: docker create with the same options on 1.1.0.
	ref := name + "-reference"
	h.docker(t, slices.Concat([]string{"create", "--name", ref}, labels, args, []string{h.repo + ":1.1.0"}, v.cmd)...)
	if v.connect != nil {
		h.connect(t, v.connect, ref)
	}
	reference := bed.Inspect(t, ref)
	anonymous = append(anonymous, anonymousVolumes(reference)...)
	checkCarried(t, v.name, before, after, reference)
	want, got := normalizeRun(t, reference, h.run), normalizeRun(t, after, h.run)
	if diff := compare(want, got, runExclusions, hid); diff != "" {
		t.Errorf("%s: the recreated container differs from docker create with the same options on 1.1.0 (want the reference, got the recreated):\n%s", v.name, diff)
	}
	// Between before and after, only what the image gives.
	b, a := normalizeRun(t, before, h.run), normalizeRun(t, after, h.run)
	var changed []string
	for k := range union(b, a) {
		if b[k] == a[k] || slices.ContainsFunc(runtimeFields, func(e exclusion) bool { return e.path.MatchString(k) }) {
			continue
		}
		if !imageFields.MatchString(k) {
			t.Errorf("%s: %s changed from %s to %s, and it is no image default", v.name, k, orAbsent(b[k]), orAbsent(a[k]))
		}
		changed = append(changed, k)
	}
	slices.Sort(changed)
	t.Logf("%s: fields the new image changed: %s", v.name, strings.Join(changed, ", "))
}

// connect runs `docker network connect` with opts (placeholders replaced) for ctr.
func (h *runHarness) connect(t *testing.T, opts []string, ctr string) {
	t.Helper()
	args := []string{"network", "connect"}
	for _, o := range opts {
		args = append(args, h.replacer.Replace(o))
	}
	h.docker(t, append(args, ctr)...)
}

// docker runs the docker CLI against the bed's engine; the test fails on error.
func (h *runHarness) docker(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, h.cli, args...)
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+h.bed.DockerHost)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// remove removes the container name, forced, with its anonymous volumes
// (the test's own, made fresh for each variant).
func (h *runHarness) remove(name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, h.cli, "rm", "-f", "-v", name)
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+h.bed.DockerHost)
	_ = cmd.Run()
}

// anonymousVolumes returns the names of the volumes c mounts that have no
// name of their own (64 hex digits: an image's VOLUME, -v /path).
func anonymousVolumes(c container.InspectResponse) []string {
	var out []string
	for _, m := range c.Mounts {
		if m.Type == mount.TypeVolume && anonymousName.MatchString(m.Name) {
			out = append(out, m.Name)
		}
	}
	return out
}

var anonymousName = regexp.MustCompile(`^[0-9a-f]{64}$`)

// removeVolumes removes the volumes names (the test's own); one still in
// use or gone is left.
func (h *runHarness) removeVolumes(names []string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, n := range names {
		_ = h.bed.Docker().VolumeRemove(ctx, n, false)
	}
}

// normalizeRun is normalize for a docker-run container: the run's name
// replaced, and what the engine fills in when a container starts (a
// reference never started lacks it) left out: the alias of a container's
// own short ID on each network, and, in another container's network
// namespace, the hostname, which is then the other container's. A volume
// mount's mode "z" (the default relabel the engine records for a volume
// mounted by name, as a carried-over anonymous volume is) counts as no
// mode: the engine records none for a fresh anonymous volume, and both
// mean no relabel option given.
func normalizeRun(t *testing.T, c container.InspectResponse, run string) map[string]string {
	t.Helper()
	if c.HostConfig != nil && len(c.HostConfig.Links) > 0 {
		// The engine shows a link as "/other:/<its own name>/alias".
		hc := *c.HostConfig
		hc.Links = slices.Clone(hc.Links)
		for i, l := range hc.Links {
			hc.Links[i] = strings.ReplaceAll(l, ":"+c.Name+"/", ":/<self>/")
		}
		c.HostConfig = &hc
	}
	c.Name = strings.ReplaceAll(c.Name, run, "<run>")
	if c.Config != nil && c.HostConfig != nil && c.HostConfig.NetworkMode.IsContainer() {
		cfg := *c.Config
		cfg.Hostname = "<the other container's>"
		c.Config = &cfg
	}
	c.Mounts = slices.Clone(c.Mounts)
	for i, m := range c.Mounts {
		if m.Type == mount.TypeVolume && m.Mode == "z" {
			c.Mounts[i].Mode = ""
		}
	}
	if c.NetworkSettings != nil {
		for _, ep := range c.NetworkSettings.Networks {
			if ep != nil {
				ep.Aliases = slices.DeleteFunc(slices.Clone(ep.Aliases), func(a string) bool { return a == c.ID[:12] })
			}
		}
	}
	return normalize(t, c, run)
}

// checkMounts fails the test unless every mount the container had (its
// HostConfig.Mounts) is in after's, the same but for an anonymous
// volume's source, which must be the volume it mounted there.
func checkMounts(t *testing.T, name string, before, after container.InspectResponse) {
	t.Helper()
	for _, m := range before.HostConfig.Mounts {
		want := m
		if want.Source == "" {
			for _, mp := range before.Mounts {
				if mp.Destination == m.Target {
					want.Source = mp.Name
				}
			}
		}
		if !slices.ContainsFunc(after.HostConfig.Mounts, func(a mount.Mount) bool {
			return a.Type == want.Type && a.Source == want.Source && a.Target == want.Target && a.ReadOnly == want.ReadOnly
		}) {
			t.Errorf("%s: mount %+v is not among the recreated container's %+v", name, want, after.HostConfig.Mounts)
		}
	}
}

// checkCarried fails the test unless every mount the recreated container
// was given beyond the original's own (HostConfig.Mounts) is an anonymous
// volume carried over: where the reference, made fresh, has a volume of its
// own. A volume the engine mounts anyway (from --volumes-from) must not be
// pinned by name.
func checkCarried(t *testing.T, name string, before, after, reference container.InspectResponse) {
	t.Helper()
	for _, m := range after.HostConfig.Mounts {
		if slices.ContainsFunc(before.HostConfig.Mounts, func(b mount.Mount) bool { return b.Type == m.Type && b.Target == m.Target }) {
			continue
		}
		if fresh := volumeAt(reference, m.Target); m.Type != mount.TypeVolume || fresh == "" || fresh == m.Source {
			t.Errorf("%s: the recreated container was given a mount of %s at %s, which is no anonymous volume of its own carried over (docker create on the new image mounts %s there)",
				name, m.Source, m.Target, orAbsent(fresh))
		}
	}
}

func union(a, b map[string]string) map[string]bool {
	out := map[string]bool{}
	for k := range a {
		out[k] = true
	}
	for k := range b {
		out[k] = true
	}
	return out
}

func orAbsent(s string) string {
	if s == "" {
		return "(absent)"
	}
	return s
}
