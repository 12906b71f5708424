package system

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"

	"github.com/tidewatch/tidewatch/core/gitsync/gittest"
	"github.com/tidewatch/tidewatch/test/testbed"
)

const gitSourceSecret = "system-webhook-secret-93d1f0"

// gitSourceStatus is one source of GET /api/git.
type gitSourceStatus struct {
	Name         string           `json:"name"`
	Deployed     string           `json:"deployed"`
	Fetched      string           `json:"fetched"`
	InSync       bool             `json:"in_sync"`
	Failed       string           `json:"failed"`
	FailedReason string           `json:"failed_reason"`
	LastError    string           `json:"last_error"`
	Syncs        map[string]int64 `json:"syncs"`
}

func (d *daemon) gitSource(t *testing.T, name string) gitSourceStatus {
	t.Helper()
	var out struct {
		Sources []gitSourceStatus `json:"sources"`
	}
	d.getJSON(t, "/api/git", &out)
	for _, s := range out.Sources {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("GET /api/git has no source %s: %+v", name, out.Sources)
	return gitSourceStatus{}
}

// pushWebhook posts a GitHub push webhook for commit on main of url,
// signed with secret, and returns the status.
func (d *daemon) pushWebhook(t *testing.T, source, url, commit, secret string) int {
	t.Helper()
	body := fmt.Sprintf(`{"ref":"refs/heads/main","before":"%s","after":%q,"repository":{"full_name":"o/stack","clone_url":%q}}`,
		strings.Repeat("0", 40), commit, url)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(body))
	req, _ := http.NewRequest("POST", d.base+"/api/git/"+source+"/webhook", bytes.NewReader([]byte(body)))
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// gitSource is a compose project kept in a git repository served over
// HTTP with a token, in a folder named after the project, and the store
// path where tidewatch clones it.
type gitSource struct {
	repo, folder, file string
	port               int
	apiPort            int    // a second service, api, when not 0
	apiTag             string // the api's tag in what compose writes
	srv                *gittest.Server
	url, first         string
	storePath, clone   string
}

// newGitSource builds the app's versions (tag → options) and commits a
// compose file running firstTag; nothing runs yet.
func newGitSource(t *testing.T, bed *testbed.Bed, versions map[string]testbed.AppOptions, firstTag string, withAPI bool) *gitSource {
	t.Helper()
	g := &gitSource{repo: bed.Registry + "/" + unique("gitsrc"), folder: strings.ReplaceAll(unique("gs"), "-", ""), port: freePort(t)}
	if withAPI {
		g.apiPort, g.apiTag = freePort(t), firstTag
	}
	for tag, opts := range versions {
		bed.BuildImage(t, g.repo+":"+tag, opts)
	}
	g.file = g.folder + "/docker-compose.yml"
	g.srv = gittest.NewServer(t, "canary-git-source-token-77e2")
	g.url = g.srv.NewRepo(t, "stack", map[string]string{g.file: g.compose(firstTag), "README.md": "the stack\n"})
	g.first = gittest.Run(t, g.srv.Bare("stack"), "rev-parse", "main")
	g.storePath = t.TempDir()
	g.clone = filepath.Join(g.storePath, "git", "prod", filepath.FromSlash(g.file))
	t.Cleanup(func() { // after tidewatch stops (cleanups run last first)
		if _, err := os.Stat(g.clone); err == nil {
			bed.Compose(t, filepath.Dir(g.clone), g.folder, []string{g.clone}, "down", "--timeout", "1")
		}
		// What down could not reach (the file deleted by a commit, a service
		// left running): the project's containers, then its networks, which
		// would otherwise use up the engine's address pools run after run.
		ctx := context.Background()
		project := filters.NewArgs(filters.Arg("label", "com.docker.compose.project="+g.folder))
		if list, err := bed.Docker().ContainerList(ctx, container.ListOptions{All: true, Filters: project}); err == nil {
			for _, c := range list {
				bed.Docker().ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true})
			}
		}
		if nets, err := bed.Docker().NetworkList(ctx, network.ListOptions{Filters: project}); err == nil {
			for _, n := range nets {
				if err := bed.Docker().NetworkRemove(ctx, n.ID); err != nil {
					t.Errorf("removing network %s of project %s: %v", n.Name, g.folder, err)
				}
			}
		}
	})
	return g
}

// compose is the compose file running web at tag (and api at apiTag).
func (g *gitSource) compose(tag string) string {
	s := fmt.Sprintf("# deployed from git\nservices:\n  web:\n    image: %s:%s\n    ports: [\"127.0.0.1:%d:8080\"]\n    labels: {tidewatch.test: \"1\"}\n", g.repo, tag, g.port)
	if g.apiPort != 0 {
		s += fmt.Sprintf("  api:\n    image: %s:%s\n    ports: [\"127.0.0.1:%d:8080\"]\n    labels: {tidewatch.test: \"1\"}\n", g.repo, g.apiTag, g.apiPort)
	}
	return s
}

// start runs tidewatch serve with a compose trigger and the source prod.
func (g *gitSource) start(t *testing.T, bed *testbed.Bed, extra ...string) *daemon {
	return startServe(t, g.env(t, bed, extra...))
}

// env is the environment of tidewatch serve with a compose trigger and the
// source prod.
func (g *gitSource) env(t *testing.T, bed *testbed.Bed, extra ...string) []string {
	return envFor(t, bed.DockerHost, append([]string{
		"TIDEWATCH_STORE_PATH=" + g.storePath,
		"TIDEWATCH_TRIGGER_COMPOSE_GIT_DEADLINE=3m",
		"TIDEWATCH_TRIGGER_COMPOSE_GIT_HEALTH_TIMEOUT=30s",
		"TIDEWATCH_TRIGGER_COMPOSE_GIT_STABLE_FOR=1s",
		"TIDEWATCH_GIT_PROD_URL=" + g.url,
		"TIDEWATCH_GIT_PROD_TOKEN=" + g.srv.Token,
		"TIDEWATCH_GIT_PROD_INTERVAL=1h",
		"TIDEWATCH_GIT_PROD_WEBHOOK_SECRET=" + gitSourceSecret,
	}, extra...)...)
}

// TestGitSourceDeploysRollsBackAndListensToWebhooks: a git source holds a
// compose file; tidewatch clones it at start and creates the service (first
// deploy); a commit that changes the tag, announced by a signed push
// webhook, is deployed at once; a commit to a version that fails its health
// check is rolled back (the previous version answers again, the clone's
// file is put back), marked failed, told to a webhook listening for
// update-rolled-back, and not tried again when announced again; a webhook
// with a bad signature does nothing.
// It runs in both of the compose trigger's modes: the compose CLI, and
// compose's library in process (RECREATE=engine).
func TestGitSourceDeploysRollsBackAndListensToWebhooks(t *testing.T) {
	bed := testbed.Require(t)
	for _, mode := range []string{"cli", "engine"} {
		t.Run(mode, func(t *testing.T) { testGitSourceDeploys(t, bed, mode) })
	}
}

func testGitSourceDeploys(t *testing.T, bed *testbed.Bed, mode string) {
	g := newGitSource(t, bed, map[string]testbed.AppOptions{
		"1.0.0": {Version: "1.0.0", Healthcheck: true},
		"1.1.0": {Version: "1.1.0", Healthcheck: true},
		"1.2.0": {Version: "1.2.0", Healthcheck: true, Fail: testbed.FailUnhealthy},
	}, "1.0.0", true)
	srv, url, first, file, folder, clone, compose := g.srv, g.url, g.first, g.file, g.folder, g.clone, g.compose
	rcv := newReceiver(t)
	d := g.start(t, bed,
		"TIDEWATCH_TRIGGER_COMPOSE_GIT_RECREATE="+mode,
		"TIDEWATCH_TRIGGER_WEBHOOK_ONCALL_URL="+rcv.srv.URL,
		"TIDEWATCH_TRIGGER_WEBHOOK_ONCALL_EVENTS=update-rolled-back",
	)
	appURL := fmt.Sprintf("http://127.0.0.1:%d/", g.port)

	// At start: cloned, and the service created.
	var st gitSourceStatus
	waitUntil(t, 3*time.Minute, "the first deploy", func() bool {
		st = d.gitSource(t, "prod")
		return st.Deployed == first || st.Failed != "" || st.LastError != ""
	})
	if st.Deployed != first || !st.InSync {
		t.Fatalf("after start: %+v, want %s deployed\ntidewatch log:\n%s", st, first, d.log.String())
	}
	if got := bed.WaitHTTP(t, appURL); !strings.Contains(got, "1.0.0") {
		t.Fatalf("the app answers %q, want 1.0.0", got)
	}

	// A tag change, announced by a webhook: deployed at once.
	second := srv.Push(t, url, "web 1.1.0", map[string]string{file: compose("1.1.0")})
	if code := d.pushWebhook(t, "prod", url, second, "not-the-secret-at-all"); code != http.StatusUnauthorized {
		t.Errorf("webhook with a bad signature = %d, want 401", code)
	}
	if st := d.gitSource(t, "prod"); st.Fetched != first {
		t.Fatalf("a webhook with a bad signature fetched: %+v", st)
	}
	if code := d.pushWebhook(t, "prod", url, second, gitSourceSecret); code != http.StatusAccepted {
		t.Fatalf("signed webhook = %d, want 202", code)
	}
	waitUntil(t, 3*time.Minute, "the deploy of 1.1.0", func() bool {
		st = d.gitSource(t, "prod")
		return st.Deployed == second || st.Failed != ""
	})
	if st.Deployed != second {
		t.Fatalf("after the webhook: %+v, want %s deployed\ntidewatch log:\n%s", st, second, d.log.String())
	}
	if got := bed.WaitHTTP(t, appURL); !strings.Contains(got, "1.1.0") {
		t.Fatalf("the app answers %q, want 1.1.0", got)
	}

	// A broken version: rolled back, marked failed, told, not retried. The
	// same commit moves api (deployed first: services go in name order) to
	// a good version: it is brought back too.
	apiURL := fmt.Sprintf("http://127.0.0.1:%d/", g.apiPort)
	if got := bed.WaitHTTP(t, apiURL); !strings.Contains(got, "1.0.0") {
		t.Fatalf("api answers %q, want 1.0.0", got)
	}
	g.apiTag = "1.1.0"
	bad := srv.Push(t, url, "web 1.2.0, api 1.1.0", map[string]string{file: compose("1.2.0")})
	g.apiTag = "1.0.0"
	d.pushWebhook(t, "prod", url, bad, gitSourceSecret)
	waitUntil(t, 3*time.Minute, "the failed deploy of 1.2.0", func() bool {
		st = d.gitSource(t, "prod")
		return st.Failed == bad || st.Deployed == bad
	})
	if st.Failed != bad || st.Deployed != second || st.InSync || !strings.Contains(st.FailedReason, "health") {
		t.Fatalf("after the broken commit: %+v, want %s failed (health) and %s still deployed\ntidewatch log:\n%s", st, bad, second, d.log.String())
	}
	if got := bed.WaitHTTP(t, appURL); !strings.Contains(got, "1.1.0") {
		t.Errorf("the app answers %q after the rollback, want 1.1.0", got)
	}
	if got := bed.WaitHTTP(t, apiURL); !strings.Contains(got, "1.0.0") {
		t.Errorf("api answers %q after the rollback, want 1.0.0 back (it was deployed at 1.1.0 by the failed commit)", got)
	}
	if applied := d.history(t, "update-applied", folder+"/api"); len(applied) != 3 {
		t.Errorf("api's update-applied events = %d, want 3: created, moved to 1.1.0, brought back", len(applied))
	}
	if b, _ := os.ReadFile(clone); string(b) != compose("1.1.0") {
		t.Errorf("the clone's compose file after the rollback:\n%s\nwant the deployed version back", b)
	}
	waitUntil(t, time.Minute, "the on-call webhook to hear of the rollback", func() bool { return len(rcv.got()) > 0 })
	if p := payloadFor(t, rcv.got()[0]); p.Event != "update-rolled-back" || !strings.Contains(p.Updates[0].Detail, "health") {
		t.Errorf("on-call payload = %+v, want update-rolled-back with the reason", p)
	}
	skipped := st.Syncs["skipped"]
	d.pushWebhook(t, "prod", url, bad, gitSourceSecret)
	waitUntil(t, time.Minute, "the failed commit skipped", func() bool { return d.gitSource(t, "prod").Syncs["skipped"] > skipped })
	if n := len(d.history(t, "update-rolled-back", folder+"/web")); n != 1 {
		t.Errorf("%d update-rolled-back events, want 1: the failed commit is not tried again", n)
	}
	synced := d.history(t, "synced", "prod")
	failed := d.history(t, "sync-failed", "prod")
	if len(synced) != 2 || len(failed) != 1 || failed[0].To != bad || synced[0].To != second {
		t.Errorf("history: synced %+v, sync-failed %+v; want 2 deploys and the failed commit", synced, failed)
	}
}

// TestGitSourceFailedFirstDeployLeavesNothing: the first commit declares a
// service whose image fails its health check; compose creates it, the gate
// fails, and the new service is removed again (nothing ran before); the
// commit is marked failed. The next commit, fixed, creates it for good.
// In both compose modes.
func TestGitSourceFailedFirstDeployLeavesNothing(t *testing.T) {
	bed := testbed.Require(t)
	for _, mode := range []string{"cli", "engine"} {
		t.Run(mode, func(t *testing.T) { testGitSourceFailedFirstDeploy(t, bed, mode) })
	}
}

func testGitSourceFailedFirstDeploy(t *testing.T, bed *testbed.Bed, mode string) {
	g := newGitSource(t, bed, map[string]testbed.AppOptions{
		"2.0.0": {Version: "2.0.0", Healthcheck: true, Fail: testbed.FailUnhealthy},
		"2.0.1": {Version: "2.0.1", Healthcheck: true},
	}, "2.0.0", false)
	d := g.start(t, bed, "TIDEWATCH_TRIGGER_COMPOSE_GIT_RECREATE="+mode)
	var st gitSourceStatus
	waitUntil(t, 3*time.Minute, "the failed first deploy", func() bool {
		st = d.gitSource(t, "prod")
		return st.Failed != "" || st.Deployed != "" || st.LastError != ""
	})
	if st.Failed != g.first || st.Deployed != "" || !strings.Contains(st.FailedReason, "health") {
		t.Fatalf("after start: %+v, want %s failed (health), nothing deployed\ntidewatch log:\n%s", st, g.first, d.log.String())
	}
	list, err := bed.Docker().ContainerList(t.Context(), container.ListOptions{All: true,
		Filters: filters.NewArgs(filters.Arg("label", "com.docker.compose.project="+g.folder))})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 0 {
		t.Errorf("%d containers of project %s remain after the failed first deploy, want none: %v", len(list), g.folder, list[0].Names)
	}
	if rb := d.history(t, "update-rolled-back", g.folder+"/web"); len(rb) != 1 || !strings.Contains(rb[0].Detail, "removed") {
		t.Errorf("update-rolled-back events = %+v, want one saying the new service was removed", rb)
	}

	fixed := g.srv.Push(t, g.url, "web 2.0.1", map[string]string{g.file: g.compose("2.0.1")})
	if code := d.pushWebhook(t, "prod", g.url, fixed, gitSourceSecret); code != http.StatusAccepted {
		t.Fatalf("signed webhook = %d, want 202", code)
	}
	waitUntil(t, 3*time.Minute, "the deploy of the fix", func() bool {
		st = d.gitSource(t, "prod")
		return st.Deployed == fixed || st.Failed == fixed
	})
	if st.Deployed != fixed || !st.InSync || st.Failed != "" {
		t.Fatalf("after the fix: %+v, want %s deployed\ntidewatch log:\n%s", st, fixed, d.log.String())
	}
	if got := bed.WaitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/", g.port)); !strings.Contains(got, "2.0.1") {
		t.Errorf("the app answers %q, want 2.0.1", got)
	}

	// Restarted, tidewatch knows what it deployed: in sync, nothing redeployed.
	d.stop(t)
	d = g.start(t, bed, "TIDEWATCH_TRIGGER_COMPOSE_GIT_RECREATE="+mode)
	waitUntil(t, time.Minute, "the sync at start", func() bool { return d.gitSource(t, "prod").Syncs["in-sync"] > 0 })
	if st := d.gitSource(t, "prod"); !st.InSync || st.Deployed != fixed || st.Syncs["deployed"] != 0 {
		t.Errorf("after a restart: %+v, want in sync at %s without a deploy", st, fixed)
	}
	if synced := d.history(t, "synced", "prod"); len(synced) != 1 {
		t.Errorf("synced events after a restart = %+v, want only the fix's", synced)
	}
}

// TestGitSourceRemovesWhatACommitRemoves: a commit that removes a service
// from the source's compose file brings it down as compose's
// --remove-orphans does (REMOVE_ORPHANS defaults to true): its container
// is stopped and removed, its named volume kept, and a container of the
// same project and service that another folder deployed is left alone. A
// commit that deletes the project's compose file brings the project down.
// In both compose modes.
func TestGitSourceRemovesWhatACommitRemoves(t *testing.T) {
	bed := testbed.Require(t)
	for _, mode := range []string{"cli", "engine"} {
		t.Run(mode, func(t *testing.T) { testGitSourceRemoves(t, bed, mode) })
	}
}

func testGitSourceRemoves(t *testing.T, bed *testbed.Bed, mode string) {
	g := newGitSource(t, bed, map[string]testbed.AppOptions{"1.0.0": {Version: "1.0.0", Healthcheck: true}}, "1.0.0", true)
	volume := g.folder + "_apidata"
	t.Cleanup(func() { bed.Docker().VolumeRemove(context.Background(), volume, true) })
	withVolume := g.compose("1.0.0") + "    volumes: [\"apidata:/data\"]\nvolumes:\n  apidata: {}\n"
	first := g.srv.Push(t, g.url, "api keeps its data", map[string]string{g.file: withVolume})
	d := g.start(t, bed, "TIDEWATCH_TRIGGER_COMPOSE_GIT_RECREATE="+mode)
	d.waitDeployed(t, first, "the first deploy", true)
	api := bed.ComposeContainer(t, g.folder, "api")
	if !bed.VolumeExists(t, volume) {
		t.Fatalf("volume %s does not exist after the first deploy", volume)
	}
	// The same project and service, deployed from another folder: not the source's.
	foreign := bed.RunContainer(t, unique("foreign-api"), g.repo+":1.0.0", map[string]string{
		"com.docker.compose.project": g.folder, "com.docker.compose.service": "api",
		"com.docker.compose.project.working_dir": "/srv/elsewhere/" + g.folder, "com.docker.compose.oneoff": "False"})

	g.apiPort = 0
	noAPI := g.srv.Push(t, g.url, "api is gone", map[string]string{g.file: g.compose("1.0.0")})
	d.pushWebhook(t, "prod", g.url, noAPI, gitSourceSecret)
	d.waitDeployed(t, noAPI, "the deploy that removes api", false)
	if _, err := bed.Docker().ContainerInspect(t.Context(), api.ID); err == nil {
		t.Errorf("api's container %s still exists after the commit that removed api", api.Name)
	}
	if !bed.VolumeExists(t, volume) {
		t.Errorf("volume %s was removed with api; volumes are never removed", volume)
	}
	if info := bed.Inspect(t, foreign.ID); !info.State.Running {
		t.Errorf("the container another folder deployed (%s) is %s, want left running", foreign.Name, info.State.Status)
	}
	if removed := d.history(t, "update-applied", g.folder+"/api"); len(removed) != 2 || !strings.Contains(removed[0].Detail, "removed") {
		t.Errorf("api's update-applied events = %+v, want its creation and its removal", removed)
	}
	if got := bed.WaitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/", g.port)); !strings.Contains(got, "1.0.0") {
		t.Errorf("web answers %q, want it untouched", got)
	}

	// The project's file deleted: the project is brought down.
	web := bed.ComposeContainer(t, g.folder, "web")
	work := t.TempDir()
	gittest.Run(t, "", "clone", "--quiet", strings.Replace(g.url, "http://", "http://"+gittest.User+":"+g.srv.Token+"@", 1), work)
	gittest.Run(t, work, "rm", "--quiet", g.file)
	gittest.Run(t, work, "commit", "--quiet", "-m", "the project is gone")
	gittest.Run(t, work, "push", "--quiet", "origin", "main")
	gone := gittest.Run(t, work, "rev-parse", "HEAD")
	d.pushWebhook(t, "prod", g.url, gone, gitSourceSecret)
	d.waitDeployed(t, gone, "the deploy that removes the project", false)
	if _, err := bed.Docker().ContainerInspect(t.Context(), web.ID); err == nil {
		t.Errorf("web's container %s still exists after its project's file was deleted", web.Name)
	}
}

// TestGitSourceKeepsOrphansWhenAsked: with REMOVE_ORPHANS=false, a commit
// that removes a service from the compose file is deployed, and the
// service's container is left running, untouched, with a warning that
// names it in the log; nothing in the history says it was removed.
func TestGitSourceKeepsOrphansWhenAsked(t *testing.T) {
	bed := testbed.Require(t)
	g := newGitSource(t, bed, map[string]testbed.AppOptions{"1.0.0": {Version: "1.0.0", Healthcheck: true}}, "1.0.0", true)
	first := g.first // web and api
	d := g.start(t, bed, "TIDEWATCH_TRIGGER_COMPOSE_GIT_RECREATE=cli", "TIDEWATCH_GIT_PROD_REMOVE_ORPHANS=false")
	d.waitDeployed(t, first, "the first deploy", true)
	api := bed.ComposeContainer(t, g.folder, "api")
	t.Cleanup(func() { // before the project's down, which the orphan would stop at the network
		bed.Docker().ContainerRemove(context.Background(), api.ID, container.RemoveOptions{Force: true})
	})

	g.apiPort = 0
	noAPI := g.srv.Push(t, g.url, "api is gone", map[string]string{g.file: g.compose("1.0.0")})
	d.pushWebhook(t, "prod", g.url, noAPI, gitSourceSecret)
	d.waitDeployed(t, noAPI, "the deploy of the commit that removes api", false)
	if info := bed.Inspect(t, api.ID); !info.State.Running || info.State.StartedAt != api.State.StartedAt {
		t.Errorf("api's container is %s (started %s, was %s), want left running, untouched", info.State.Status, info.State.StartedAt, api.State.StartedAt)
	}
	if removed := d.history(t, "update-applied", g.folder+"/api"); len(removed) != 1 {
		t.Errorf("api's update-applied events = %+v, want its creation only", removed)
	}
	if log := d.log.String(); !strings.Contains(log, "left running (REMOVE_ORPHANS=false)") || !strings.Contains(log, "api") {
		t.Errorf("the log does not warn that api is left running:\n%s", log)
	}
}

// waitDeployed waits until the source prod has deployed commit, or failed
// it (or, for the first deploy, failed at all), and fails the test unless
// commit is deployed.
func (d *daemon) waitDeployed(t *testing.T, commit, what string, first bool) gitSourceStatus {
	t.Helper()
	var st gitSourceStatus
	waitUntil(t, 3*time.Minute, what, func() bool {
		st = d.gitSource(t, "prod")
		return st.Deployed == commit || st.Failed == commit || first && (st.Failed != "" || st.LastError != "")
	})
	if st.Deployed != commit {
		t.Fatalf("%s: %+v, want %s deployed\ntidewatch log:\n%s", what, st, commit, d.log.String())
	}
	return st
}

// gitDelivery is a delivery of GET /api/deliveries, as these tests read it.
type gitDelivery struct {
	ID       int64  `json:"id"`
	Status   string `json:"status"`
	Attempts int    `json:"attempts"`
	Update   struct {
		Container string `json:"container"`
		Candidate string `json:"candidate"`
	} `json:"update"`
	Rollout *struct {
		Steps []gitStep `json:"steps"`
	} `json:"rollout"`
}

// gitStep is a step of a delivery's rollout report.
type gitStep struct {
	Name string `json:"name"`
	Note string `json:"note"`
}

// TestGitSourceDeployResumedAfterAKill: tidewatch is killed (SIGKILL, with
// the compose trigger's plugin process) while a commit's service is at its
// health gate; started again, the deploy is resumed through the outbox: the
// same delivery, not a second one, finishes the service's rollout, the
// commit is marked deployed, and the service runs the new version once.
func TestGitSourceDeployResumedAfterAKill(t *testing.T) {
	bed := testbed.Require(t)
	bin := requireFaultBinary(t)
	exe := filepath.Join(t.TempDir(), "tidewatch")
	if err := os.Link(bin, exe); err != nil {
		t.Fatal(err)
	}
	faultFile := exe + ".fault"
	g := newGitSource(t, bed, map[string]testbed.AppOptions{
		"1.0.0": {Version: "1.0.0", Healthcheck: true},
		"1.1.0": {Version: "1.1.0", Healthcheck: true},
	}, "1.0.0", false)
	env := g.env(t, bed)
	first := startServeExe(t, exe, freePort(t), env)
	waitUntil(t, 3*time.Minute, "the first deploy", func() bool { return first.gitSource(t, "prod").Deployed == g.first })

	spec, _ := json.Marshal(faultSpec{Point: "health:before", N: 1})
	if err := os.WriteFile(faultFile, spec, 0o600); err != nil {
		t.Fatal(err)
	}
	second := g.srv.Push(t, g.url, "web 1.1.0", map[string]string{g.file: g.compose("1.1.0")})
	first.pushWebhook(t, "prod", g.url, second, gitSourceSecret)
	hit := waitHit(t, faultFile+".hit", first)
	if err := os.Remove(faultFile); err != nil {
		t.Fatal(err)
	}
	for _, pid := range slices.Compact([]int{first.cmd.Process.Pid, hit.PID}) {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatalf("killing %d: %v", pid, err)
		}
	}
	<-first.done

	d := startServeExe(t, exe, freePort(t), env)
	var st gitSourceStatus
	waitUntil(t, 3*time.Minute, "the resumed deploy", func() bool {
		st = d.gitSource(t, "prod")
		return st.Deployed == second || st.Failed != ""
	})
	if st.Deployed != second || !st.InSync {
		t.Fatalf("after the restart: %+v, want %s deployed\ntidewatch log:\n%s", st, second, d.log.String())
	}
	if got := bed.WaitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/", g.port)); !strings.Contains(got, "1.1.0") {
		t.Errorf("the app answers %q, want 1.1.0", got)
	}
	var body struct {
		Deliveries []gitDelivery `json:"deliveries"`
	}
	d.getJSON(t, "/api/deliveries?trigger=compose.git", &body)
	var ofSecond int
	for _, dl := range body.Deliveries {
		if dl.Update.Candidate == second[:12] {
			ofSecond++
			if dl.Status != "delivered" || dl.Attempts != 1 {
				t.Errorf("the resumed delivery is %s after %d attempt(s), want delivered after 1 (the killed one is not counted)", dl.Status, dl.Attempts)
			}
			if dl.Rollout == nil || !slices.ContainsFunc(dl.Rollout.Steps, func(s gitStep) bool {
				return s.Name == "resume" && strings.Contains(s.Note, "it goes on")
			}) {
				t.Errorf("the resumed delivery's steps = %+v, want a resume step: its record taken over", dl.Rollout)
			}
		}
	}
	if ofSecond != 1 {
		t.Errorf("%d deliveries of commit %s, want 1: the resumed deploy is not enqueued again (%+v)", ofSecond, second, body.Deliveries)
	}
	if applied := d.history(t, "update-applied", g.folder+"/web"); len(applied) != 2 {
		t.Errorf("web's update-applied events = %d, want 2: created, then moved to 1.1.0 once", len(applied))
	}
	if list, err := bed.Docker().ContainerList(t.Context(), container.ListOptions{All: true,
		Filters: filters.NewArgs(filters.Arg("label", "com.docker.compose.project="+g.folder))}); err != nil || len(list) != 1 {
		t.Errorf("containers of the project after the resumed deploy = %d (%v), want 1", len(list), err)
	}
}
