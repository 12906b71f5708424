package sources

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidewatch/tidewatch/core"
	"github.com/tidewatch/tidewatch/core/gitsync"
	"github.com/tidewatch/tidewatch/core/gitsync/gittest"
	"github.com/tidewatch/tidewatch/core/store"
)

const (
	testToken  = "tok-3b1f0c9e2a7d4f68"
	testSecret = "webhook-secret-0123456789"
)

func compose(tag string) string {
	return "services:\n  web:\n    image: registry.test/web:" + tag + "\n  db:\n    image: registry.test/db:16\n"
}

// deployer is the Deployer of these tests: it keeps what it was asked to
// deploy and the files it found in Dir and Backups at that moment, and fails
// a deploy whose web image is tagged "bad".
type deployer struct {
	mu    sync.Mutex
	calls []call
}

type call struct {
	d        Deploy
	current  string // compose.yaml in Dir
	previous string // compose.yaml in Backups ("" when absent)
}

func (f *deployer) Deploy(_ context.Context, d Deploy) error {
	cur, err := os.ReadFile(filepath.Join(d.Dir, "compose.yaml"))
	if err != nil {
		return err
	}
	var prev []byte
	if d.Backups != "" {
		prev, _ = os.ReadFile(filepath.Join(d.Backups, "compose.yaml"))
	}
	f.mu.Lock()
	f.calls = append(f.calls, call{d: d, current: string(cur), previous: string(prev)})
	f.mu.Unlock()
	if strings.Contains(string(cur), "web:bad") {
		return errors.New("health: container web is unhealthy; rolled back")
	}
	return nil
}

func (f *deployer) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

func (f *deployer) last() call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[len(f.calls)-1]
}

type fixture struct {
	srv *gittest.Server
	url string
	st  *store.Store
	dep *deployer
	r   *Runner
}

func newFixtureTB(tb testing.TB) *fixture {
	return newFixture(tb, map[string]string{"compose.yaml": compose("1")}, "", nil)
}

func newFixture(t testing.TB, files map[string]string, path string, dep Deployer) *fixture {
	t.Helper()
	srv := gittest.NewServer(t, testToken)
	url := srv.NewRepo(t, "ops", files)
	st, err := store.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := &fixture{srv: srv, url: url, st: st}
	if dep == nil {
		f.dep = &deployer{}
		dep = f.dep
	}
	cfg := Config{Source: gitsync.Source{Name: "prod", URL: url, Path: path,
		Credentials: gitsync.Credentials{Username: gittest.User, Token: core.Secret(testToken)}},
		Interval: time.Hour, Timeout: 30 * time.Second, WebhookSecret: testSecret}
	if f.r, err = New([]Config{cfg}, t.TempDir(), st.GitState(), st, dep, nil); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) sync(t *testing.T) Result {
	t.Helper()
	res, err := f.r.Sync(context.Background(), "prod")
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func (f *fixture) status(t *testing.T) Status {
	t.Helper()
	sts, err := f.r.Status(context.Background())
	if err != nil || len(sts) != 1 {
		t.Fatalf("Status() = %+v, %v", sts, err)
	}
	return sts[0]
}

func (f *fixture) history(t *testing.T) []store.Event {
	t.Helper()
	evs, err := f.st.History(context.Background(), store.HistoryFilter{Host: HistoryHost})
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func TestSyncDeploysCommitsMarksAFailedOneAndDoesNotRetryIt(t *testing.T) {
	t.Parallel()
	f := newFixture(t, map[string]string{"compose.yaml": compose("1"), "README.md": "ops"}, "", nil)

	// First sync: everything is new.
	res := f.sync(t)
	first := res.Commit
	if res.Outcome != ResultDeployed || res.Err != nil || !slices.Equal(res.Services, []string{"db", "web"}) {
		t.Fatalf("first Sync = %+v, want deployed db and web", res)
	}
	if c := f.dep.last(); c.d.Previous != "" || c.previous != "" || c.current != compose("1") {
		t.Errorf("first deploy saw previous %q (backup %q), files %q; want no previous and compose 1", c.d.Previous, c.previous, c.current)
	}
	if st := f.status(t); !st.InSync || st.Deployed != first || st.Fetched != first || st.URL != f.url || st.Branch != "main" || st.Path != "." {
		t.Errorf("status after the first deploy = %+v", st)
	}

	// Nothing new: in sync, no deploy.
	if res := f.sync(t); res.Outcome != ResultInSync || f.dep.count() != 1 {
		t.Fatalf("Sync without a new commit = %+v after %d deploys, want in-sync and no deploy", res, f.dep.count())
	}

	// A tag change deploys web only, with the previous file kept for a rollback.
	second := f.srv.Push(t, f.url, "web 2", map[string]string{"compose.yaml": compose("2")})
	if res := f.sync(t); res.Outcome != ResultDeployed || res.Commit != second || !slices.Equal(res.Services, []string{"web"}) {
		t.Fatalf("Sync of a tag change = %+v, want web deployed at %s", res, second)
	}
	if c := f.dep.last(); c.d.Previous != first || c.previous != compose("1") || c.current != compose("2") {
		t.Errorf("the deploy of web 2 saw previous %.7s with backup %q and files %q", c.d.Previous, c.previous, c.current)
	}

	// A broken version fails: marked, the clone put back, not retried.
	bad := f.srv.Push(t, f.url, "web bad", map[string]string{"compose.yaml": compose("bad")})
	res = f.sync(t)
	if res.Outcome != ResultFailed || res.Commit != bad || res.Err == nil {
		t.Fatalf("Sync of a broken version = %+v, want failed; the deployer saw %q", res, f.dep.last().current)
	}
	st := f.status(t)
	if st.InSync || st.Deployed != second || st.Failed != bad || !strings.Contains(st.FailedReason, "unhealthy") {
		t.Errorf("status after a failed deploy = %+v, want deployed %s, failed %s with its reason", st, second, bad)
	}
	clone := filepath.Join(f.dep.last().d.Dir, "compose.yaml")
	if b, _ := os.ReadFile(clone); string(b) != compose("2") {
		t.Errorf("the clone's compose.yaml after the failed deploy = %q, want the deployed version back", b)
	}
	calls := f.dep.count()
	for range 2 {
		if res := f.sync(t); res.Outcome != ResultSkipped || f.dep.count() != calls {
			t.Fatalf("Sync of the failed commit again = %+v (%d deploys), want skipped without deploying", res, f.dep.count())
		}
	}

	// The next commit is deployed again.
	fixed := f.srv.Push(t, f.url, "web 3", map[string]string{"compose.yaml": compose("3")})
	if res := f.sync(t); res.Outcome != ResultDeployed || res.Commit != fixed {
		t.Fatalf("Sync after the fix = %+v, want deployed", res)
	}
	if c := f.dep.last(); c.d.Previous != second || c.previous != compose("2") {
		t.Errorf("the deploy after a failure saw previous %.7s with backup %q; want the last deployed, %.7s", c.d.Previous, c.previous, second)
	}
	if st := f.status(t); !st.InSync || st.Failed != "" || st.Syncs[ResultDeployed] != 3 || st.Syncs[ResultSkipped] != 2 || st.Syncs[ResultFailed] != 1 {
		t.Errorf("status at the end = %+v", st)
	}

	var kinds []string
	for _, e := range slices.Backward(f.history(t)) {
		kinds = append(kinds, e.Kind+" "+short(e.To))
		if e.Container != "prod" || e.Image != f.url {
			t.Errorf("history event %+v: want container prod and the source's URL", e)
		}
	}
	want := []string{"synced " + short(first), "synced " + short(second), "sync-failed " + short(bad), "synced " + short(fixed)}
	if !slices.Equal(kinds, want) {
		t.Errorf("history = %q, want %q", kinds, want)
	}
}

func TestSyncRefusesUnreadableComposeFiles(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, content, want string
	}{
		{"not YAML", "services: [web\n  : :\n", "not valid YAML"},
		{"huge", "services:\n  web:\n    image: a:1\n# " + strings.Repeat("x", gitsync.MaxComposeSize) + "\n", "too large"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, map[string]string{"compose.yaml": compose("1")}, "", nil)
			first := f.sync(t).Commit
			broken := f.srv.Push(t, f.url, tc.name, map[string]string{"compose.yaml": tc.content})
			res := f.sync(t)
			if res.Outcome != ResultFailed || res.Err == nil || !strings.Contains(res.Err.Error(), tc.want) {
				t.Fatalf("Sync of a %s compose file = %+v, want failed with %q", tc.name, res, tc.want)
			}
			if f.dep.count() != 1 {
				t.Errorf("the deployer was called %d times, want once (the first commit only)", f.dep.count())
			}
			if st := f.status(t); st.Deployed != first || st.Failed != broken {
				t.Errorf("status = %+v, want deployed %.7s and failed %.7s", st, first, broken)
			}
		})
	}
}

func TestSyncOfAPathThatLeavesTheCloneFails(t *testing.T) {
	t.Parallel()
	srv := gittest.NewServer(t, testToken)
	url := srv.NewRepo(t, "ops", map[string]string{"README.md": "ops"})
	work := srv.Clone(t, url)
	if err := os.Symlink("/etc", filepath.Join(work, "prod")); err != nil {
		t.Fatal(err)
	}
	gittest.Run(t, work, "add", "-A")
	gittest.Run(t, work, "commit", "--quiet", "-m", "link")
	gittest.Run(t, work, "push", "--quiet", strings.Replace(url, "http://", "http://"+gittest.User+":"+testToken+"@", 1), "main")
	st, err := store.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	dep := &deployer{}
	r, err := New([]Config{{Source: gitsync.Source{Name: "prod", URL: url, Path: "prod",
		Credentials: gitsync.Credentials{Username: gittest.User, Token: testToken}}, Interval: time.Hour, Timeout: 30 * time.Second}},
		t.TempDir(), st.GitState(), st, dep, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, _ := r.Sync(context.Background(), "prod")
	if dep.count() != 0 {
		t.Fatalf("a path that is a symlink to /etc was deployed: %+v", dep.last())
	}
	if res.Outcome == ResultDeployed && len(res.Services) > 0 {
		t.Fatalf("Sync = %+v, want nothing deployed through a symlinked path", res)
	}

	if _, err := New([]Config{{Source: gitsync.Source{Name: "x", URL: url, Path: "../etc"}, Interval: time.Hour, Timeout: time.Minute}},
		t.TempDir(), st.GitState(), st, dep, nil); err == nil || !strings.Contains(err.Error(), "leaves the repository") {
		t.Errorf("New with PATH ../etc = %v, want refused", err)
	}
}

func TestSyncWithoutDeployerShowsDrift(t *testing.T) {
	t.Parallel()
	srv := gittest.NewServer(t, testToken)
	url := srv.NewRepo(t, "ops", map[string]string{"compose.yaml": compose("1")})
	r, err := New([]Config{{Source: gitsync.Source{Name: "prod", URL: url, Credentials: gitsync.Credentials{Username: gittest.User, Token: testToken}},
		Interval: time.Hour, Timeout: 30 * time.Second}}, t.TempDir(), gitsync.NewFileState(filepath.Join(t.TempDir(), "state.json")), nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, _ := r.Sync(context.Background(), "prod")
	sts, _ := r.Status(context.Background())
	if res.Outcome != ResultDrift || sts[0].InSync || sts[0].Fetched != res.Commit || sts[0].Deployed != "" {
		t.Errorf("Sync without deployer = %+v, status %+v; want drift shown, nothing deployed", res, sts[0])
	}
}

func TestSyncFetchFailureIsRecordedOnceAndNeverShowsTheToken(t *testing.T) {
	t.Parallel()
	f := newFixture(t, map[string]string{"compose.yaml": compose("1")}, "", nil)
	f.srv.Token = "another-token-entirely"
	for range 3 {
		if res := f.sync(t); res.Outcome != ResultError || res.Err == nil {
			t.Fatalf("Sync with a refused token = %+v, want error", res)
		}
	}
	st := f.status(t)
	if st.LastError == "" || strings.Contains(st.LastError, testToken) || st.Syncs[ResultError] != 3 {
		t.Errorf("status = %+v, want the error without the token, 3 errors counted", st)
	}
	evs := f.history(t)
	if len(evs) != 1 || evs[0].Kind != KindSyncFailed || strings.Contains(evs[0].Detail, testToken) {
		t.Errorf("history = %+v, want one sync-failed event (a repeated error is not written again), without the token", evs)
	}
}

func sign(body []byte) string {
	mac := hmac.New(sha256.New, []byte(testSecret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

func TestWebhookWakesOnlyForASignedPushOfTheBranch(t *testing.T) {
	t.Parallel()
	f := newFixture(t, map[string]string{"compose.yaml": compose("1")}, "", nil)
	f.sync(t)
	s := f.r.byName["prod"]
	drain := func() bool {
		select {
		case <-s.wake:
			return true
		default:
			return false
		}
	}
	body := func(ref string) []byte {
		return fmt.Appendf(nil, `{"ref":%q,"before":"%s","after":"%s","repository":{"full_name":"o/ops","clone_url":%q}}`,
			ref, strings.Repeat("a", 40), strings.Repeat("b", 40), f.url)
	}
	hdr := func(sig string) http.Header {
		h := http.Header{}
		h.Set("X-GitHub-Event", "push")
		if sig != "" {
			h.Set("X-Hub-Signature-256", sig)
		}
		return h
	}
	good := body("refs/heads/main")
	tests := []struct {
		name   string
		source string
		h      http.Header
		body   []byte
		want   error
		woken  bool
	}{
		{"unsigned", "prod", hdr(""), good, gitsync.ErrSignature, false},
		{"bad signature", "prod", hdr(sign([]byte("other"))), good, gitsync.ErrSignature, false},
		{"other branch", "prod", hdr(sign(body("refs/heads/dev"))), body("refs/heads/dev"), ErrOtherRef, false},
		{"unknown source", "nope", hdr(sign(good)), good, core.ErrNotFound, false},
		{"good", "prod", hdr(sign(good)), good, nil, true},
	}
	for _, tc := range tests {
		_, err := f.r.Webhook(tc.source, tc.h, tc.body)
		if !errors.Is(err, tc.want) && !(tc.want == nil && err == nil) {
			t.Errorf("%s: Webhook = %v, want %v", tc.name, err, tc.want)
		}
		if woken := drain(); woken != tc.woken {
			t.Errorf("%s: woke the source = %v, want %v", tc.name, woken, tc.woken)
		}
	}
}

func TestRunSyncsAtStartAndOnWake(t *testing.T) {
	t.Parallel()
	f := newFixture(t, map[string]string{"compose.yaml": compose("1")}, "", nil)
	var (
		mu   sync.Mutex
		seen []string
	)
	f.r.OnSync(func(source string, res Result) {
		mu.Lock()
		seen = append(seen, source+" "+res.Outcome)
		mu.Unlock()
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { f.r.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	waitFor(t, "the first deploy", func() bool { return f.dep.count() == 1 })
	next := f.srv.Push(t, f.url, "web 2", map[string]string{"compose.yaml": compose("2")})
	f.r.Wake("prod")
	waitFor(t, "the deploy after a wake", func() bool { return f.status(t).Deployed == next })
	waitFor(t, "OnSync of the second sync", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) >= 2
	})
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"prod deployed", "prod deployed"}; !slices.Equal(seen, want) {
		t.Errorf("OnSync saw %q, want %q", seen, want)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestSyncOfACommitWithoutComposeChangesDeploysNothing(t *testing.T) {
	t.Parallel()
	f := newFixture(t, map[string]string{"compose.yaml": compose("1")}, "", nil)
	f.sync(t)
	docs := f.srv.Push(t, f.url, "docs", map[string]string{"README.md": "read me\n", "compose.yaml": "# a comment only\n" + compose("1")})
	res := f.sync(t)
	if res.Outcome != ResultDeployed || res.Commit != docs || len(res.Services) != 0 || f.dep.count() != 1 {
		t.Fatalf("Sync of a commit changing no service = %+v after %d deploys, want deployed without calling the deployer", res, f.dep.count())
	}
	if st := f.status(t); !st.InSync || st.Deployed != docs {
		t.Errorf("status = %+v, want in sync at %.7s", st, docs)
	}
	evs := f.history(t)
	if len(evs) != 2 || !strings.Contains(evs[0].Detail, "no service changed") {
		t.Errorf("history = %+v, want the commit recorded as synced, no service changed", evs)
	}
}

func TestSyncAfterTheCloneWasLostKeepsNoFalseBackups(t *testing.T) {
	t.Parallel()
	f := newFixture(t, map[string]string{"compose.yaml": compose("1")}, "", nil)
	first := f.sync(t).Commit
	if err := os.RemoveAll(f.r.byName["prod"].m.Dir()); err != nil {
		t.Fatal(err)
	}
	f.srv.Push(t, f.url, "web 2", map[string]string{"compose.yaml": compose("2")})
	if res := f.sync(t); res.Outcome != ResultDeployed {
		t.Fatalf("Sync after the clone was lost = %+v, want deployed", res)
	}
	if c := f.dep.last(); c.d.Previous != first || c.d.Backups != "" || c.current != compose("2") {
		t.Errorf("the deploy after the clone was lost saw previous %.7s, backups %q: want the commit deployed, and no backups (unknown, not empty)", c.d.Previous, c.d.Backups)
	}
}

func TestSyncOfAHangingRemoteEndsAtTimeout(t *testing.T) {
	t.Parallel()
	f := newFixture(t, map[string]string{"compose.yaml": compose("1")}, "", nil)
	first := f.sync(t).Commit
	s := f.r.byName["prod"]
	s.cfg.Timeout = 2 * time.Second
	f.srv.Hang()
	start := time.Now()
	res := f.sync(t)
	if took := time.Since(start); res.Outcome != ResultError || took > 20*time.Second {
		t.Fatalf("Sync of a hanging remote = %+v after %v, want an error at the 2s timeout", res, took)
	}
	if st := f.status(t); st.Deployed != first || st.LastError == "" {
		t.Errorf("status = %+v, want the deployed commit kept and the error shown", st)
	}
}
