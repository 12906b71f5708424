package web

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"github.com/tidewatch/tidewatch/core/credential"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"

	"github.com/tidewatch/tidewatch/core"
	"github.com/tidewatch/tidewatch/core/config"
	"github.com/tidewatch/tidewatch/core/store"
)

// canary is planted in a trigger's secret option, a container label, the
// users' passwords and the API token; it must never be in a response.
const canary = "canary-7f3a9c1e"

var (
	password = "pw-" + canary
	apiToken = "tok-" + canary
)

// fakeWatcher checks the containers it knows.
type fakeWatcher struct {
	mu     sync.Mutex
	runs   int
	checks map[string]core.Check // by host/name
	status []WatcherStatus
	panics bool
}

func (f *fakeWatcher) RunAll(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.runs++
	return nil
}

func (f *fakeWatcher) RunContainer(ctx context.Context, host, name string) (core.Check, error) {
	c, ok := f.checks[host+"/"+name]
	if !ok {
		return core.Check{}, fmt.Errorf("checking %s on %s: %w", name, host, core.ErrNotFound)
	}
	return c, nil
}

func (f *fakeWatcher) Status() []WatcherStatus {
	if f.panics {
		panic("watcher status exploded: " + canary)
	}
	return f.status
}

type fakeRegistries []core.RegistryStatus

func (f fakeRegistries) Status() []core.RegistryStatus { return f }

// fakeTriggers enqueues real deliveries in the store.
type fakeTriggers struct {
	st         *store.Store
	list       []TriggerInfo
	mu         sync.Mutex
	n          int
	tests      []string
	principals []string
}

func (f *fakeTriggers) List() []TriggerInfo { return f.list }

// Request enqueues as the dispatcher does: applying for a trigger that
// deploys, refused (as a policy would) for a container named "excluded".
func (f *fakeTriggers) Request(ctx context.Context, updateID int64, trigger, principal string) (store.Delivery, error) {
	u, err := f.st.Update(ctx, updateID)
	if err != nil {
		return store.Delivery{}, err
	}
	deploys := false
	for _, t := range f.list {
		if t.Name == trigger {
			deploys = t.Deploys
		}
	}
	if deploys && u.Status == core.StatusApplying {
		return store.Delivery{}, fmt.Errorf("update %d: %w", updateID, ErrConflict)
	}
	if u.ContainerName == "excluded" {
		return store.Delivery{}, fmt.Errorf("requesting: %w", &core.RefusalError{Rule: "EXCLUDE=excluded", Reason: "the container excluded matches excluded"})
	}
	f.mu.Lock()
	f.n++
	run := fmt.Sprintf("req-%d", f.n)
	f.principals = append(f.principals, principal)
	f.mu.Unlock()
	ds, err := f.st.Enqueue(ctx, []store.NewDelivery{{UpdateID: updateID, Trigger: trigger, Candidate: u.CandidateRef(),
		Event: core.EventUpdateAvailable, Run: run, Principal: principal, MarkApplying: deploys}})
	if err != nil {
		return store.Delivery{}, err
	}
	if ds[0].Update, err = f.st.Update(ctx, updateID); err != nil {
		return store.Delivery{}, err
	}
	return ds[0], nil
}

func (f *fakeTriggers) Test(ctx context.Context, trigger string) (TestResult, error) {
	f.mu.Lock()
	f.tests = append(f.tests, trigger)
	f.mu.Unlock()
	return TestResult{OK: true, Detail: "sent to " + trigger, Duration: time.Millisecond}, nil
}

type fakeDeployer struct {
	result DeployResult
	err    error
	got    []DeployRequest
	actors []string // store.PrincipalFrom of each deploy's context
}

func (f *fakeDeployer) Deploy(ctx context.Context, req DeployRequest, principal string) (DeployResult, error) {
	f.got = append(f.got, req)
	f.actors = append(f.actors, store.PrincipalFrom(ctx))
	if f.err != nil {
		return DeployResult{}, f.err
	}
	r := f.result
	r.Project, r.Service, r.To = req.Project, req.Service, req.Tag
	return r, nil
}

// env is a server over a real store and fakes.
type env struct {
	srv      *Server
	h        http.Handler
	st       *store.Store
	watcher  *fakeWatcher
	triggers *fakeTriggers
	deployer *fakeDeployer
	broker   *Broker
	updateID int64 // the open update of local/web
	hashes   []string
	logs     *syncBuffer // the server's log, debug and up
}

// syncBuffer is a bytes.Buffer safe for a server's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type option func(*Deps, *Config)

func withAuth(t *testing.T) option {
	t.Helper()
	bc, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	salt := []byte("0123456789abcdef")
	key := argon2.IDKey([]byte(password), salt, 1, 64, 1, 32)
	a2 := fmt.Sprintf("$argon2id$v=19$m=64,t=1,p=1$%s$%s", base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
	return func(d *Deps, c *Config) {
		for name, h := range map[string]string{"alice": string(bc), "bob": a2} {
			ph, problem := config.ParsePasswordHash(h)
			if problem != "" {
				t.Fatalf("ParsePasswordHash(%s): %s", name, problem)
			}
			c.Users = append(c.Users, credential.User{Name: name, Hash: ph})
		}
		c.Tokens = []credential.Token{{Name: "ci", SHA256: sha256.Sum256([]byte(apiToken))}}
	}
}

func newEnv(t *testing.T, opts ...option) *env {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "data"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	mk := func(name, current, candidate string, kind core.UpdateKind, labels map[string]string) core.Check {
		ref, err := core.ParseImageRef("registry.example/" + name + ":" + current)
		if err != nil {
			t.Fatal(err)
		}
		return core.Check{Container: core.Container{ID: "id-" + name, Name: name, Image: "registry.example/" + name + ":" + current, Labels: labels, State: "running"},
			Ref: ref, Current: current, Candidate: candidate, Kind: kind, CheckedAt: at}
	}
	web := mk("web", "1.0.0", "1.1.0", core.KindMinor, map[string]string{core.LabelTagInclude: `^1\.`, "traefik.basicauth.users": "admin:" + canary})
	web.Link = "https://example.com/releases/1.1.0"
	api := mk("api", "2.0.0", "", core.KindNone, nil)
	broken := mk("broken", "3.0.0", "", core.KindNone, nil)
	broken.Err = fmt.Errorf("listing tags: unauthorized")
	if _, err := st.RecordRun(ctx, "local", []core.Check{web, api, broken}, at); err != nil {
		t.Fatal(err)
	}
	if _, err := st.RecordRun(ctx, "remote", []core.Check{mk("db", "15.1", "16.0", core.KindMajor, nil)}, at); err != nil {
		t.Fatal(err)
	}
	ups, err := st.ListUpdates(ctx, store.UpdateFilter{Host: "local"})
	if err != nil || len(ups) != 1 {
		t.Fatalf("seeded updates = %v, %v", ups, err)
	}

	e := &env{st: st, updateID: ups[0].ID, broker: NewBroker(), deployer: &fakeDeployer{result: DeployResult{Result: "applied", From: "1.0.0"}}}
	e.watcher = &fakeWatcher{
		checks: map[string]core.Check{"local/web": web},
		status: []WatcherStatus{{Name: "local", Address: "unix:///var/run/docker.sock", LastRun: &RunInfo{Host: "local", Start: at, Duration: time.Second, Containers: 3, Updates: 1, Errors: 1}}},
	}
	e.triggers = &fakeTriggers{st: st, list: []TriggerInfo{
		{Name: "compose.prod", Type: "compose", Auto: false, Threshold: "all", Mode: "once", Events: []string{"update-available"}, Deploys: true,
			Options: []TriggerOption{{Name: "FILE", Value: "/srv/compose.yaml"}}},
		{Name: "webhook.ops", Type: "webhook", Auto: true, Threshold: "minor", Mode: "batch", Events: []string{"update-available"},
			Options: []TriggerOption{{Name: "URL", Value: "https://hooks.example/x"}, {Name: "SECRET", Value: canary, Secret: true}}},
	}}
	deps := Deps{
		Containers: st, Updates: st, History: st,
		Watcher: e.watcher, Registries: fakeRegistries{{Registry: "registry.example", Requests: 12, Errors: 1, RateLimitRemaining: 90, RateLimitLimit: 100}},
		Triggers: e.triggers, Deployer: e.deployer, Events: e.broker,
		UI:    fstest.MapFS{"index.html": {Data: []byte("<!doctype html><title>tidewatch</title>")}, "app.js": {Data: []byte("console.log(1)")}, "style.css": {Data: []byte("body{}")}},
		Ready: map[string]func(context.Context) error{"store": st.Ping},
	}
	cfg := Config{Address: "127.0.0.1", Port: 8080}
	for _, o := range opts {
		o(&deps, &cfg)
	}
	for _, u := range cfg.Users {
		e.hashes = append(e.hashes, u.Hash.Encoded.Reveal())
	}
	e.logs = &syncBuffer{}
	e.srv = New(deps, cfg, slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	// The tests send many wrong logins from one address; the throttle's
	// own tests set it as it is.
	e.srv.auth.throttle.burst = 1 << 20
	e.h = e.srv.Handler()
	return e
}

// do sends a request as a client of this machine would (Host
// 127.0.0.1:8080); headers are name, value pairs ("Host" sets the Host).
func (e *env) do(t *testing.T, method, path, body string, headers ...string) *httptest.ResponseRecorder {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r := httptest.NewRequest(method, path, rd)
	r.Host = "127.0.0.1:8080"
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i] == "Host" {
			r.Host = headers[i+1]
			continue
		}
		r.Header.Set(headers[i], headers[i+1])
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	return w
}

var (
	asAlice = []string{"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte("alice:"+password))}
	asBob   = []string{"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte("bob:"+password))}
	asCI    = []string{"Authorization", "Bearer " + apiToken}
)

// errorOf decodes an error body.
func errorOf(t *testing.T, w *httptest.ResponseRecorder) errorDetail {
	t.Helper()
	var b errorBody
	if err := json.Unmarshal(w.Body.Bytes(), &b); err != nil || b.Error.Code == "" {
		t.Fatalf("body %q is not an error body: %v", w.Body.String(), err)
	}
	return b.Error
}

func decode[T any](t *testing.T, w *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
		t.Fatalf("decoding %q: %v", w.Body.String(), err)
	}
	return v
}

func hexSum(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}
