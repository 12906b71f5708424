package system

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/registry"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/tidewatch/tidewatch/core/gitsync/gittest"
	"github.com/tidewatch/tidewatch/registries/registrytest"
	"github.com/tidewatch/tidewatch/test/testbed"
)

// watchedService are the labels of a service the tests watch.
var watchedService = map[string]string{"tidewatch.watch": "true"}

// TestSwarm runs tidewatch against the bed's engine in swarm mode: the
// scenarios of the Swarm issue side by side, so that the engine is a swarm
// manager for as short a time as they take.
func TestSwarm(t *testing.T) {
	bed := testbed.Require(t)
	bed.Swarm(t)
	t.Run("apply", func(t *testing.T) { t.Parallel(); swarmApply(t, bed) })
	t.Run("rollback", func(t *testing.T) { t.Parallel(); swarmRollback(t, bed) })
	t.Run("digest", func(t *testing.T) { t.Parallel(); swarmDigest(t, bed) })
	t.Run("platform child", func(t *testing.T) { t.Parallel(); swarmPlatformChild(t, bed) })
	t.Run("stack file", func(t *testing.T) { t.Parallel(); swarmStackFile(t, bed) })
	t.Run("stack file in git", func(t *testing.T) { t.Parallel(); swarmStackFileInGit(t, bed) })
	t.Run("registry with auth", func(t *testing.T) { t.Parallel(); swarmRegistryAuth(t, bed) })
	t.Run("each repository once", func(t *testing.T) { t.Parallel(); swarmOncePerRepository(t, bed) })
}

// swarmOncePerRepository: three services of one repository, one with two
// replicas, and a container running the same image are checked with one tag
// listing of the repository; task containers are not listed as containers.
func swarmOncePerRepository(t *testing.T, bed *testbed.Bed) {
	reg := registrytest.New(t)
	repo := unique("shared")
	ref := reg.Host + "/" + repo
	for _, v := range []string{"1.0.0", "1.1.0"} {
		r, err := name.ParseReference(ref+":"+v, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(r, bed.AppImage(t, testbed.AppOptions{Version: v, Healthcheck: true})); err != nil {
			t.Fatalf("pushing %s: %v", r, err)
		}
	}
	var svcs []string
	for i, replicas := range []uint64{2, 1, 1} {
		svcs = append(svcs, unique(fmt.Sprintf("once%d", i)))
		bed.CreateService(t, svcs[i], ref+":1.0.0", testbed.ServiceOptions{Replicas: replicas, Labels: watchedService})
	}
	ctr := unique("oncectr")
	bed.RunContainer(t, ctr, ref+":1.0.0", watched)
	reg.ResetCounts()
	r := tidewatch(t, envFor(t, bed.DockerHost), "check", "--format", "json")
	rows := parseRows(t, r)
	for _, n := range append(svcs, ctr) {
		if rows[n].Candidate != "1.1.0" {
			t.Errorf("%s: %+v, want the update to 1.1.0", n, rows[n])
		}
	}
	for n, row := range rows {
		if strings.HasPrefix(n, svcs[0]+".") {
			t.Errorf("a task container of %s was listed: %+v", svcs[0], row)
		}
	}
	if c := reg.Counts(); c.TagList != 1 || c.PerRepo[repo] != 1 {
		t.Errorf("registry counts %+v, want one tag listing of %s for its 4 replicas over 3 services and a container", c, repo)
	}
}

// swarmApply: a 2-replica service with a healthcheck on 1.0.0 is listed by
// the API as a service (replicas, node) with its update to 1.1.0; Apply
// through the swarm trigger rolls it, both replicas run 1.1.0, the history
// says update-applied and the API shows the update completed.
func swarmApply(t *testing.T, bed *testbed.Bed) {
	repo := bed.Registry + "/" + unique("swapply")
	digests := map[string]string{}
	for _, v := range []string{"1.0.0", "1.1.0"} {
		digests[v] = bed.BuildImage(t, repo+":"+v, testbed.AppOptions{Version: v, Healthcheck: true})
	}
	svc := unique("shopweb")
	id := bed.CreateService(t, svc, repo+":1.0.0", testbed.ServiceOptions{Replicas: 2, Labels: watchedService})
	d := startServe(t, envFor(t, bed.DockerHost,
		"TIDEWATCH_TRIGGER_SWARM_PROD_AUTO=false",
		"TIDEWATCH_TRIGGER_SWARM_PROD_MONITOR=3s",
		"TIDEWATCH_TRIGGER_SWARM_PROD_DEADLINE=4m",
	))

	type service struct {
		Running, Desired uint64
		Nodes            []string
		UpdateState      string `json:"update_state"`
	}
	type row struct {
		Name      string
		ID        string
		Type      string
		Current   string
		Candidate string
		UpdateID  int64 `json:"update_id"`
		Service   *service
	}
	var found row
	waitUntil(t, time.Minute, "the service's update in the API", func() bool {
		var list struct{ Containers []row }
		d.getJSON(t, "/api/containers?type=service", &list)
		for _, c := range list.Containers {
			if c.Name == svc && c.UpdateID != 0 {
				found = c
				return true
			}
		}
		return false
	})
	if found.ID != id || found.Type != "service" || found.Current != "1.0.0" || found.Candidate != "1.1.0" || found.Service == nil ||
		found.Service.Running != 2 || found.Service.Desired != 2 || len(found.Service.Nodes) != 1 {
		t.Fatalf("the service in the API = %+v (service %+v), want type service, 1.0.0 → 1.1.0, 2/2 replicas on one node", found, found.Service)
	}

	resp, err := http.Post(fmt.Sprintf("%s/api/updates/%d/apply", d.base, found.UpdateID), "application/json", strings.NewReader(`{"trigger":"swarm.prod"}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("apply = %s %s", resp.Status, body)
	}
	var dl delivery
	waitUntil(t, 3*time.Minute, "the swarm delivery to end", func() bool {
		dl = lastDelivery(t, d, found.UpdateID)
		return dl.Status == "delivered" || dl.Status == "failed"
	})
	if dl.Status != "delivered" || dl.Rollout == nil || dl.Rollout.Outcome != "applied" || dl.Rollout.To != repo+":1.1.0@"+digests["1.1.0"] {
		t.Fatalf("delivery = %+v (rollout %+v), want delivered, applied to the pinned 1.1.0\n%s", dl, dl.Rollout, d.log.String())
	}
	v := bed.Service(t, id)
	if !slices.Equal(v.Versions(), []string{"1.1.0", "1.1.0"}) {
		t.Errorf("replicas after the apply run %v, want 1.1.0 twice", v.Versions())
	}
	var h struct {
		Events []struct{ Kind, Container, To string }
	}
	d.getJSON(t, "/api/history?kind=update-applied&container="+svc, &h)
	if len(h.Events) != 1 || h.Events[0].To != "1.1.0" {
		t.Errorf("history = %+v, want one update-applied to 1.1.0", h.Events)
	}
	waitUntil(t, time.Minute, "the API to show the update completed", func() bool {
		var list struct{ Containers []row }
		d.getJSON(t, "/api/containers?type=service", &list)
		for _, c := range list.Containers {
			if c.Name == svc {
				found = c
			}
		}
		return found.Current == "1.1.0" && found.Service != nil && found.Service.UpdateState == "completed"
	})
}

// delivery is a delivery as /api/deliveries shows it.
type delivery struct {
	ID        int64
	Status    string
	Event     string
	LastError string `json:"last_error"`
	Rollout   *struct {
		Outcome, To, Reason string
		FailedStep          string `json:"failed_step"`
		Logs                []string
		Files               []struct{ Path, Backup string }
		Steps               []struct{ Name, Note, Error string }
	}
}

func lastDelivery(t testing.TB, d *daemon, updateID int64) delivery {
	t.Helper()
	var ds struct{ Deliveries []delivery }
	d.getJSON(t, fmt.Sprintf("/api/deliveries?update_id=%d", updateID), &ds)
	if len(ds.Deliveries) == 0 {
		return delivery{}
	}
	return ds.Deliveries[0]
}

// swarmRollback: an automatic swarm trigger rolls a service to a 2.0.0 whose
// healthcheck fails; the engine rolls back, tidewatch records
// update-rolled-back with the reason, a webhook listening for it is told,
// and the service runs 1.0.0.
func swarmRollback(t *testing.T, bed *testbed.Bed) {
	repo := bed.Registry + "/" + unique("swbroken")
	bed.BuildImage(t, repo+":1.0.0", testbed.AppOptions{Version: "1.0.0", Healthcheck: true})
	bed.BuildImage(t, repo+":2.0.0", testbed.AppOptions{Version: "2.0.0", Healthcheck: true, Fail: testbed.FailUnhealthy})
	svc := unique("broken")
	id := bed.CreateService(t, svc, repo+":1.0.0", testbed.ServiceOptions{Replicas: 2, Labels: watchedService})
	rcv := newReceiver(t)
	d := startServe(t, envFor(t, bed.DockerHost,
		"TIDEWATCH_TRIGGER_SWARM_AUTO_INCLUDE="+svc,
		"TIDEWATCH_TRIGGER_SWARM_AUTO_MONITOR=5s",
		"TIDEWATCH_TRIGGER_SWARM_AUTO_DEADLINE=4m",
		"TIDEWATCH_TRIGGER_WEBHOOK_ONCALL_URL="+rcv.srv.URL,
		"TIDEWATCH_TRIGGER_WEBHOOK_ONCALL_EVENTS=update-rolled-back",
		"TIDEWATCH_TRIGGER_WEBHOOK_ONCALL_INCLUDE="+svc,
	))
	waitUntil(t, 3*time.Minute, "the on-call webhook to hear of the rollback", func() bool { return len(rcv.got()) > 0 })
	p := payloadFor(t, rcv.got()[0])
	if p.Event != "update-rolled-back" || p.Updates[0].Candidate != "2.0.0" || !strings.Contains(p.Updates[0].Detail, "rolled the update back") ||
		!strings.Contains(p.Updates[0].Detail, "unhealthy") {
		t.Errorf("webhook payload = %+v, want update-rolled-back of 2.0.0 with the engine's reason and the unhealthy task", p)
	}
	v := bed.WaitService(t, id, "back on 1.0.0", func(v testbed.ServiceView) bool {
		return slices.Equal(v.Versions(), []string{"1.0.0", "1.0.0"})
	})
	if v.UpdateState() != "rollback_completed" || !strings.Contains(v.Image(), ":1.0.0@") {
		t.Errorf("service after: %s, update %s; want 1.0.0, rollback_completed", v.Image(), v.UpdateState())
	}
	var h struct {
		Events []struct{ Kind, Detail string }
	}
	d.getJSON(t, "/api/history?kind=update-rolled-back&container="+svc, &h)
	if len(h.Events) != 1 || !strings.Contains(h.Events[0].Detail, "rolled the update back") {
		t.Errorf("history of the rollback = %+v, want one update-rolled-back event with the reason", h.Events)
	}
}

// swarmDigest: a service on latest reports nothing until a new image is
// pushed under latest; then a digest update, which an automatic swarm
// trigger rolls out pinned to the new digest.
func swarmDigest(t *testing.T, bed *testbed.Bed) {
	repo := bed.Registry + "/" + unique("swdigest")
	first := bed.BuildImage(t, repo+":latest", testbed.AppOptions{Version: "1", Healthcheck: true})
	svc := unique("latest")
	id := bed.CreateService(t, svc, repo+":latest", testbed.ServiceOptions{Labels: watchedService})
	env := envFor(t, bed.DockerHost)

	before := parseRows(t, tidewatch(t, env, "check", "--format", "json"))[svc]
	if before.Kind != "" || before.Error != "" || before.CurrentDigest != first || before.Current != "latest" {
		t.Fatalf("before a new push: %+v, want latest at %s, no update", before, first)
	}
	second := bed.BuildImage(t, repo+":latest", testbed.AppOptions{Version: "2", Healthcheck: true})
	env = append(env, "TIDEWATCH_TRIGGER_SWARM_AUTO_INCLUDE="+svc, "TIDEWATCH_TRIGGER_SWARM_AUTO_MONITOR=2s")
	r := tidewatch(t, env, "check", "--format", "json")
	after := parseRows(t, r)[svc]
	if after.Kind != "digest" || after.Candidate != "latest" || after.Digest != second {
		t.Fatalf("after a new push: %+v, want a digest update to %s\n%s", after, second, r.stderr)
	}
	v := bed.WaitService(t, id, "on the new latest", func(v testbed.ServiceView) bool { return slices.Equal(v.Versions(), []string{"2"}) })
	if v.Image() != repo+":latest@"+second {
		t.Errorf("service image after the digest update = %s, want %s", v.Image(), repo+":latest@"+second)
	}
}

// swarmPlatformChild: a service pinned to the platform image of a
// multi-platform index is up to date while the tag names that index (the
// child is resolved), and gets a digest update once the index changes.
func swarmPlatformChild(t *testing.T, bed *testbed.Bed) {
	repo := bed.Registry + "/" + unique("swmulti")
	index := func(v string) (idx v1.ImageIndex, child string) {
		img := bed.AppImage(t, testbed.AppOptions{Version: v, Healthcheck: true})
		other := bed.AppImage(t, testbed.AppOptions{Version: v + "-other"})
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		return mutate.AppendManifests(empty.Index,
			mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: runtime.GOARCH}}},
			mutate.IndexAddendum{Add: other, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "s390x"}}},
		), d.String()
	}
	idx, child := index("1")
	bed.PushIndex(t, repo+":stable", idx)
	svc := unique("multi")
	// Pinned to the platform child, as a service created from it by digest is.
	bed.CreateService(t, svc, repo+":stable@"+child, testbed.ServiceOptions{Labels: watchedService})
	env := envFor(t, bed.DockerHost)
	before := parseRows(t, tidewatch(t, env, "check", "--format", "json"))[svc]
	if before.Kind != "" || before.Error != "" || before.Current != "stable" {
		t.Fatalf("pinned to the platform child of the tag's index: %+v, want no update", before)
	}
	idx2, _ := index("2")
	newIndex := bed.PushIndex(t, repo+":stable", idx2)
	after := parseRows(t, tidewatch(t, env, "check", "--format", "json"))[svc]
	if after.Kind != "digest" || after.Digest != newIndex {
		t.Errorf("after a new index: %+v, want a digest update to %s", after, newIndex)
	}
}

// stackFile is the stack of swarmStackFile: comments, quoting and keys that
// a rewrite must keep byte for byte.
const stackFile = `# the shop, deployed with: docker stack deploy -c docker-stack.yml
services:
  web:
    image: "%s:1.0.0"   # bumped by tidewatch
    labels:
      tidewatch.test: "1"
    deploy:
      replicas: 1
      labels:
        tidewatch.watch: "true"
        tidewatch.test: "1"
      update_config: {failure_action: rollback, monitor: 3s, order: start-first}
`

// swarmStackFile: a service deployed with docker stack deploy is updated by
// an automatic swarm trigger whose STACK_FILE names the stack's file by its
// host path (mapped through PATH_MAP); only the tag's bytes change in the
// file, a backup is kept, and deploying the stack again keeps 1.1.0.
func swarmStackFile(t *testing.T, bed *testbed.Bed) {
	repo := bed.Registry + "/" + unique("swstack")
	for _, v := range []string{"1.0.0", "1.1.0"} {
		bed.BuildImage(t, repo+":"+v, testbed.AppOptions{Version: v, Healthcheck: true})
	}
	stack := strings.ReplaceAll(unique("shop"), "-", "")
	root := t.TempDir() // where the host's /srv/stacks is, as tidewatch sees it
	dir := filepath.Join(root, stack)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "docker-stack.yml")
	src := fmt.Sprintf(stackFile, repo)
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	deploy := func() { t.Helper(); deployStack(t, bed, file, stack) }
	deploy()
	removeStackAtEnd(t, bed, stack)
	svc := stack + "_web"
	bed.WaitService(t, svc, "running 1.0.0", func(v testbed.ServiceView) bool { return slices.Equal(v.Versions(), []string{"1.0.0"}) })

	env := envFor(t, bed.DockerHost,
		"TIDEWATCH_TRIGGER_SWARM_AUTO_INCLUDE="+svc,
		"TIDEWATCH_TRIGGER_SWARM_AUTO_STACK_FILE=/srv/stacks/{stack}/docker-stack.yml",
		"TIDEWATCH_TRIGGER_SWARM_AUTO_PATH_MAP=/srv/stacks:"+root,
	)
	r := tidewatch(t, env, "check", "--format", "json")
	if row := parseRows(t, r)[svc]; row.Candidate != "1.1.0" {
		t.Fatalf("check: %+v, want the update to 1.1.0\n%s", row, r.stderr)
	}
	bed.WaitService(t, svc, "running 1.1.0", func(v testbed.ServiceView) bool { return slices.Equal(v.Versions(), []string{"1.1.0"}) })
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.Replace(src, ":1.0.0\"", ":1.1.0\"", 1); string(data) != want {
		t.Errorf("stack file after the update:\n%s\nwant only the tag changed:\n%s", data, want)
	}
	backups, _ := filepath.Glob(file + ".tidewatch-*.bak")
	if len(backups) != 1 {
		t.Errorf("backups = %v, want one", backups)
	} else if b, _ := os.ReadFile(backups[0]); string(b) != src {
		t.Errorf("backup %s holds:\n%s\nwant the file as it was", backups[0], b)
	}

	// The next deploy of the stack keeps the update.
	deploy()
	v := bed.WaitService(t, svc, "still on 1.1.0 after the stack is deployed again", func(v testbed.ServiceView) bool {
		return strings.Contains(v.Image(), ":1.1.0@") && slices.Equal(v.Versions(), []string{"1.1.0"})
	})
	if v.Service.Spec.Labels["com.docker.stack.namespace"] != stack {
		t.Errorf("service labels = %v, want the stack's namespace", v.Service.Spec.Labels)
	}
}

// deployStack runs docker stack deploy of file as stack, resolving its
// images as the CLI does by default.
func deployStack(t *testing.T, bed *testbed.Bed, file, stack string) {
	t.Helper()
	cmd := exec.Command("docker", "stack", "deploy", "--resolve-image", "always", "-c", file, stack)
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+bed.DockerHost)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("docker stack deploy: %v\n%s", err, out)
	}
}

// removeStackAtEnd removes stack when the test ends.
func removeStackAtEnd(t *testing.T, bed *testbed.Bed, stack string) {
	t.Cleanup(func() {
		cmd := exec.Command("docker", "stack", "rm", stack)
		cmd.Env = append(os.Environ(), "DOCKER_HOST="+bed.DockerHost)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Logf("docker stack rm %s: %v\n%s", stack, err, out)
		}
	})
}

// swarmStackFileInGit: the stack file lives in a git work tree that
// tidewatch keeps (TIDEWATCH_GIT_<name>_WORKTREE): once the swarm trigger
// applied the update, its rewrite of the stack file is committed and pushed
// like a compose trigger's (the rollout's files and backups), the history
// records the commit naming the file, the remote holds the file with only
// the tag changed, and the work tree is clean (the backup excluded).
func swarmStackFileInGit(t *testing.T, bed *testbed.Bed) {
	repo := bed.Registry + "/" + unique("swgit")
	for _, v := range []string{"1.0.0", "1.1.0"} {
		bed.BuildImage(t, repo+":"+v, testbed.AppOptions{Version: v, Healthcheck: true})
	}
	stack := strings.ReplaceAll(unique("gitshop"), "-", "")
	src := fmt.Sprintf(stackFile, repo)
	srv := gittest.NewServer(t, "canary-git-token-swarm-7c2e")
	url := srv.NewRepo(t, "stacks", map[string]string{stack + "/docker-stack.yml": src, "README.md": "the stacks\n"})
	work := srv.Clone(t, url)
	file := filepath.Join(work, stack, "docker-stack.yml")
	deployStack(t, bed, file, stack)
	removeStackAtEnd(t, bed, stack)
	svc := stack + "_web"
	bed.WaitService(t, svc, "running 1.0.0", func(v testbed.ServiceView) bool { return slices.Equal(v.Versions(), []string{"1.0.0"}) })

	d := startServe(t, envFor(t, bed.DockerHost,
		"TIDEWATCH_TRIGGER_SWARM_AUTO_INCLUDE="+svc,
		"TIDEWATCH_TRIGGER_SWARM_AUTO_DEADLINE=4m",
		"TIDEWATCH_TRIGGER_SWARM_AUTO_STACK_FILE=/srv/stacks/{stack}/docker-stack.yml",
		"TIDEWATCH_TRIGGER_SWARM_AUTO_PATH_MAP=/srv/stacks:"+work,
		"TIDEWATCH_GIT_OPS_WORKTREE="+work,
		"TIDEWATCH_GIT_OPS_PUSH=true",
		"TIDEWATCH_GIT_OPS_TOKEN="+srv.Token,
	))
	var events []historyEvent
	waitUntil(t, 3*time.Minute, "the stack file's commit in the history", func() bool {
		events = d.history(t, "committed", svc)
		return len(events) > 0 || len(d.history(t, "commit-failed", svc)) > 0
	})
	rel := stack + "/docker-stack.yml"
	if len(events) != 1 || !strings.Contains(events[0].Detail, rel) || !strings.Contains(events[0].Detail, "pushed") || strings.Contains(events[0].Detail, srv.Token) {
		t.Fatalf("committed events = %+v, want one naming %s, pushed, without the token\ncommit-failed: %+v\ntidewatch log:\n%s",
			events, rel, d.history(t, "commit-failed", svc), d.log.String())
	}
	if v := bed.Service(t, svc); !slices.Equal(v.Versions(), []string{"1.1.0"}) {
		t.Errorf("the service runs %v, want 1.1.0", v.Versions())
	}
	want := strings.Replace(src, ":1.0.0\"", ":1.1.0\"", 1)
	if got := srv.Show(t, "stacks", "main", rel); got != strings.TrimSpace(want) { // git's output, trimmed
		t.Errorf("the remote's stack file:\n%s\nwant only the tag changed:\n%s", got, want)
	}
	if msg := gittest.Run(t, work, "log", "-1", "--format=%B"); !strings.Contains(msg, svc) || !strings.Contains(msg, "1.0.0 → 1.1.0") {
		t.Errorf("commit message:\n%s\nwant the service and 1.0.0 → 1.1.0", msg)
	}
	if st := gittest.Run(t, work, "status", "--porcelain"); st != "" {
		t.Errorf("the work tree is not clean (a backup not excluded?):\n%s", st)
	}
}

// swarmRegistryAuth: a service whose image lives in a registry that wants
// credentials (basic, through its token endpoint), created without them (its
// image was pulled beforehand), is updated: tidewatch reads the registry
// with the credentials it is configured with and hands them to the engine
// with the update, so that the node can pull 1.1.0. The password appears in
// none of tidewatch's output.
func swarmRegistryAuth(t *testing.T, bed *testbed.Bed) {
	const user, pass = "deployer", "canary-swarm-registry-pass-5e1f"
	reg := registrytest.New(t, registrytest.WithBearerAuth(user, pass))
	repo := reg.Host + "/" + unique("private")
	auth := remote.WithAuth(&authn.Basic{Username: user, Password: pass})
	digests := map[string]string{}
	for _, v := range []string{"1.0.0", "1.1.0"} {
		ref, err := name.ParseReference(repo+":"+v, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		img := bed.AppImage(t, testbed.AppOptions{Version: v, Healthcheck: true})
		if err := remote.Write(ref, img, auth); err != nil {
			t.Fatalf("pushing %s: %v", ref, err)
		}
		d, _ := img.Digest()
		digests[v] = d.String()
	}
	enc, err := registry.EncodeAuthConfig(registry.AuthConfig{Username: user, Password: pass, ServerAddress: reg.Host})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rc, err := bed.Docker().ImagePull(ctx, repo+":1.0.0", image.PullOptions{RegistryAuth: enc})
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, rc)
	rc.Close()
	svc := unique("private")
	id := bed.CreateService(t, svc, repo+":1.0.0@"+digests["1.0.0"], testbed.ServiceOptions{Labels: watchedService})

	env := envFor(t, bed.DockerHost,
		"TIDEWATCH_REGISTRY_CUSTOM_PRIV_URL="+reg.Host,
		"TIDEWATCH_REGISTRY_CUSTOM_PRIV_USERNAME="+user,
		"TIDEWATCH_REGISTRY_CUSTOM_PRIV_PASSWORD="+pass,
		"TIDEWATCH_REGISTRY_CUSTOM_PRIV_INSECURE=true",
		"TIDEWATCH_TRIGGER_SWARM_AUTO_INCLUDE="+svc,
		"TIDEWATCH_TRIGGER_SWARM_AUTO_MONITOR=2s",
		"TIDEWATCH_LOG_LEVEL=debug",
	)
	r := tidewatch(t, env, "check", "--format", "json")
	if row := parseRows(t, r)[svc]; row.Candidate != "1.1.0" || row.Error != "" {
		t.Fatalf("check: %+v, want the update to 1.1.0\n%s", row, r.stderr)
	}
	v := bed.WaitService(t, id, "on 1.1.0, pulled with the credentials", func(v testbed.ServiceView) bool {
		return slices.Equal(v.Versions(), []string{"1.1.0"})
	})
	if v.Image() != repo+":1.1.0@"+digests["1.1.0"] {
		t.Errorf("service image = %s, want 1.1.0 pinned", v.Image())
	}
	if strings.Contains(r.stdout+r.stderr, pass) {
		t.Error("the registry password appears in tidewatch's output or log")
	}
}
