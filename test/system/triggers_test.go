package system

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tidewatch/tidewatch/plugins/sdk"
	"github.com/tidewatch/tidewatch/test/testbed"
	"github.com/tidewatch/tidewatch/triggers/webhook"
)

// receiver is a webhook peer that records what it was sent.
type receiver struct {
	mu       sync.Mutex
	requests []received
	hold     chan struct{} // when not nil, requests wait on it
	arrived  chan struct{}
	srv      *httptest.Server
}

type received struct {
	header http.Header
	body   []byte
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{arrived: make(chan struct{}, 64)}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.requests = append(r.requests, received{header: req.Header.Clone(), body: body})
		hold := r.hold
		r.mu.Unlock()
		r.arrived <- struct{}{}
		if hold != nil {
			select {
			case <-hold:
			case <-req.Context().Done():
				return
			}
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) got() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.requests...)
}

// payloadFor returns the request's payload, failing on a bad one.
func payloadFor(t *testing.T, rq received) sdk.Payload {
	t.Helper()
	var p sdk.Payload
	if err := json.Unmarshal(rq.body, &p); err != nil {
		t.Fatalf("webhook body is not the JSON payload: %v\n%s", err, rq.body)
	}
	return p
}

// forContainer keeps the requests about container (other tests' containers share the engine).
func forContainer(t *testing.T, rs []received, container string) []received {
	t.Helper()
	var out []received
	for _, rq := range rs {
		for _, u := range payloadFor(t, rq).Updates {
			if u.Container == container {
				out = append(out, rq)
				break
			}
		}
	}
	return out
}

// TestCheckFiresWebhookOnce: `tidewatch check` fires an automatic webhook
// trigger for an update, signed and with an idempotency key, and does not
// fire it again for the same candidate on the next run.
func TestCheckFiresWebhookOnce(t *testing.T) {
	bed := testbed.Require(t)
	repo := bed.Registry + "/" + unique("hooked")
	for _, v := range []string{"1.0.0", "1.1.0"} {
		bed.BuildImage(t, repo+":"+v, testbed.AppOptions{Version: v})
	}
	name := unique("hooked")
	bed.RunContainer(t, name, repo+":1.0.0", watched)
	rcv := newReceiver(t)
	const secret = "canary-webhook-secret-7d1e"
	env := envFor(t, bed.DockerHost,
		"TIDEWATCH_TRIGGER_WEBHOOK_CI_URL="+rcv.srv.URL+"/hook",
		"TIDEWATCH_TRIGGER_WEBHOOK_CI_SECRET="+secret,
		"TIDEWATCH_LOG_LEVEL=debug",
	)

	first := tidewatch(t, env, "check", "--format", "json")
	if first.code != 0 {
		t.Fatalf("check: exit %d\n%s", first.code, first.stderr)
	}
	got := forContainer(t, rcv.got(), name)
	if len(got) != 1 {
		t.Fatalf("webhook got %d requests about %s, want 1", len(got), name)
	}
	p := payloadFor(t, got[0])
	u := p.Updates[0]
	if p.Trigger != "ci" || p.Event != "update-available" || u.Current != "1.0.0" || u.Candidate != "1.1.0" || u.Kind != "minor" || u.Host != "local" {
		t.Errorf("payload = %+v, want ci/update-available for %s 1.0.0 → 1.1.0 minor on local", p, name)
	}
	if key := got[0].header.Get("Idempotency-Key"); key == "" || key != u.Key {
		t.Errorf("Idempotency-Key = %q, want the update's key %q", key, u.Key)
	}
	if err := webhook.Verify(secret, got[0].header, got[0].body, time.Minute, time.Now()); err != nil {
		t.Errorf("signature: %v", err)
	}
	if strings.Contains(first.stdout+first.stderr, secret) {
		t.Error("the webhook secret appears in tidewatch's output or log")
	}

	second := tidewatch(t, env, "check", "--format", "json")
	if second.code != 0 {
		t.Fatalf("second check: exit %d\n%s", second.code, second.stderr)
	}
	if n := len(forContainer(t, rcv.got(), name)); n != 1 {
		t.Errorf("after a second run the webhook got %d requests about %s, want still 1 (once per candidate)", n, name)
	}
}

// TestCustomPluginFromFolder builds the example plugin as an outsider would,
// drops it in a plugins folder pinned by checksum, and sees it fire; a plugin
// whose pin is wrong is refused with a clear error while the others run.
func TestCustomPluginFromFolder(t *testing.T) {
	bed := testbed.Require(t)
	dir := t.TempDir()
	plugin := filepath.Join(dir, "tidewatch-trigger-ntfy")
	build := exec.Command("go", "build", "-o", plugin, "github.com/tidewatch/tidewatch/plugins/examples/ntfy")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the example plugin: %v\n%s", err, out)
	}
	// A second copy under another type, to be refused for its wrong pin.
	bad := filepath.Join(dir, "tidewatch-trigger-pager")
	data, err := os.ReadFile(plugin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, data, 0o755); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)

	repo := bed.Registry + "/" + unique("ntfy")
	for _, v := range []string{"2.0", "2.1"} {
		bed.BuildImage(t, repo+":"+v, testbed.AppOptions{Version: v})
	}
	name := unique("ntfy")
	bed.RunContainer(t, name, repo+":2.0", watched)
	ntfy := newReceiver(t)
	hook := newReceiver(t)
	const token = "canary-ntfy-token-51c0"
	env := envFor(t, bed.DockerHost,
		"TIDEWATCH_PLUGINS_DIR="+dir,
		"TIDEWATCH_PLUGIN_NTFY_SHA256="+hex.EncodeToString(sum[:]),
		"TIDEWATCH_PLUGIN_PAGER_SHA256="+strings.Repeat("0", 64),
		"TIDEWATCH_TRIGGER_NTFY_PHONE_URL="+ntfy.srv.URL+"/updates",
		"TIDEWATCH_TRIGGER_NTFY_PHONE_TOKEN="+token,
		"TIDEWATCH_TRIGGER_PAGER_ONCALL_URL="+ntfy.srv.URL+"/pager",
		"TIDEWATCH_TRIGGER_WEBHOOK_CI_URL="+hook.srv.URL,
	)
	r := tidewatch(t, env, "check", "--format", "json")
	if r.code != 1 || !strings.Contains(r.stderr, "TIDEWATCH_PLUGIN_PAGER_SHA256") {
		t.Errorf("check with a wrongly pinned plugin: exit %d, want 1 and an error naming TIDEWATCH_PLUGIN_PAGER_SHA256\n%s", r.code, r.stderr)
	}
	var mine []received
	for _, rq := range ntfy.got() {
		if strings.Contains(rq.header.Get("Title"), name) {
			mine = append(mine, rq)
		}
	}
	if len(mine) != 1 {
		t.Fatalf("the ntfy plugin got %d messages about %s, want 1\nstderr:\n%s", len(mine), name, r.stderr)
	}
	if mine[0].header.Get("Authorization") != "Bearer "+token || !strings.Contains(string(mine[0].body), "2.0 → 2.1") {
		t.Errorf("ntfy message: auth %q body %q", mine[0].header.Get("Authorization"), mine[0].body)
	}
	if n := len(forContainer(t, hook.got(), name)); n != 1 {
		t.Errorf("the webhook (the other trigger) got %d requests about %s, want 1: a refused plugin must not stop the others", n, name)
	}
	if strings.Contains(r.stdout+r.stderr, token) {
		t.Error("the plugin's secret token appears in tidewatch's output")
	}

	list := tidewatch(t, env, "plugins")
	for _, want := range []string{"webhook", "email", "sms", "command", "ntfy", "posts updates to an ntfy topic", "TOKEN", "ntfy.phone", "[redacted]"} {
		if !strings.Contains(list.stdout, want) {
			t.Errorf("tidewatch plugins lacks %q:\n%s", want, list.stdout)
		}
	}
	if strings.Contains(list.stdout+list.stderr, token) {
		t.Errorf("tidewatch plugins shows a secret:\n%s", list.stdout)
	}

	// An unpinned plugin runs, with a warning naming the variable that would pin it.
	loose := newReceiver(t)
	r = tidewatch(t, envFor(t, bed.DockerHost, "TIDEWATCH_PLUGINS_DIR="+dir, "TIDEWATCH_PLUGIN_PAGER_SHA256="+hex.EncodeToString(sum[:]),
		"TIDEWATCH_TRIGGER_NTFY_LOOSE_URL="+loose.srv.URL+"/loose"), "check", "--format", "json")
	if !strings.Contains(r.stderr, "plugin not pinned") || !strings.Contains(r.stderr, "TIDEWATCH_PLUGIN_NTFY_SHA256") {
		t.Errorf("check with an unpinned plugin: stderr lacks a warning naming TIDEWATCH_PLUGIN_NTFY_SHA256:\n%s", r.stderr)
	}
}

// TestBadTriggerOptionsStopStartUp: a trigger's own option errors are found
// by the plugin at start-up, each naming its variable, and nothing runs.
func TestBadTriggerOptionsStopStartUp(t *testing.T) {
	bed := testbed.Require(t)
	env := envFor(t, bed.DockerHost,
		"TIDEWATCH_TRIGGER_WEBHOOK_CI_URL=ftp://example.invalid/x",
		"TIDEWATCH_TRIGGER_WEBHOOK_CI_TIMEOUT=soon",
		"TIDEWATCH_TRIGGER_WEBHOOK_CI_METHOD=GET",
		"TIDEWATCH_TRIGGER_WEBHOOK_CI_COLOUR=blue",
		"TIDEWATCH_TRIGGER_SMS_ONCALL_TO=+15550100",
	)
	r := tidewatch(t, env, "check")
	if r.code != 1 {
		t.Errorf("exit %d, want 1", r.code)
	}
	for _, want := range []string{
		"TIDEWATCH_TRIGGER_WEBHOOK_CI_URL", "TIDEWATCH_TRIGGER_WEBHOOK_CI_TIMEOUT", "TIDEWATCH_TRIGGER_WEBHOOK_CI_METHOD",
		"TIDEWATCH_TRIGGER_WEBHOOK_CI_COLOUR", "TIDEWATCH_TRIGGER_SMS_ONCALL_ACCOUNT_SID",
	} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %s:\n%s", want, r.stderr)
		}
	}
	if r.stdout != "" {
		t.Errorf("check printed results although its configuration is wrong:\n%s", r.stdout)
	}
}

// TestEmailTriggerThroughCheck: the email trigger delivers through the bed's
// mailpit over STARTTLS with auth.
func TestEmailTriggerThroughCheck(t *testing.T) {
	bed := testbed.Require(t)
	repo := bed.Registry + "/" + unique("mailed")
	for _, v := range []string{"3.0.0", "3.0.1"} {
		bed.BuildImage(t, repo+":"+v, testbed.AppOptions{Version: v})
	}
	name := unique("mailed")
	bed.RunContainer(t, name, repo+":3.0.0", watched)
	st := bed.State
	host, port, _ := strings.Cut(st.MailpitSMTP, ":")
	env := envFor(t, bed.DockerHost,
		"TIDEWATCH_TRIGGER_EMAIL_OPS_HOST="+host,
		"TIDEWATCH_TRIGGER_EMAIL_OPS_PORT="+port,
		"TIDEWATCH_TRIGGER_EMAIL_OPS_TLS=starttls",
		"TIDEWATCH_TRIGGER_EMAIL_OPS_TLS_CAFILE="+st.MailCert,
		"TIDEWATCH_TRIGGER_EMAIL_OPS_USERNAME="+st.MailUser,
		"TIDEWATCH_TRIGGER_EMAIL_OPS_PASSWORD="+st.MailPassword,
		"TIDEWATCH_TRIGGER_EMAIL_OPS_FROM=tidewatch@example.com",
		"TIDEWATCH_TRIGGER_EMAIL_OPS_TO=ops@example.com, dev@example.com",
		"TIDEWATCH_TRIGGER_EMAIL_OPS_INCLUDE="+name,
	)
	r := tidewatch(t, env, "check")
	if r.code != 0 {
		t.Fatalf("check: exit %d\n%s", r.code, r.stderr)
	}
	mail := bed.WaitMessage(t, name)
	if !strings.Contains(mail.Subject, "3.0.0") || !strings.Contains(mail.Subject, "3.0.1") || len(mail.To) != 2 || !strings.Contains(mail.Text, name) {
		t.Errorf("mail: subject %q to %v text %q", mail.Subject, mail.To, mail.Text)
	}
}

// TestKilledDuringDeliveryResumes: tidewatch is killed while a delivery is
// being fired (written to the outbox, not yet confirmed); the next run
// delivers it again under the same idempotency key, and the run after that
// does not deliver it at all.
func TestKilledDuringDeliveryResumes(t *testing.T) {
	bed := testbed.Require(t)
	repo := bed.Registry + "/" + unique("killed")
	for _, v := range []string{"4.0.0", "4.1.0"} {
		bed.BuildImage(t, repo+":"+v, testbed.AppOptions{Version: v})
	}
	name := unique("killed")
	bed.RunContainer(t, name, repo+":4.0.0", watched)
	rcv := newReceiver(t)
	rcv.hold = make(chan struct{})
	env := envFor(t, bed.DockerHost,
		"TIDEWATCH_TRIGGER_WEBHOOK_CI_URL="+rcv.srv.URL,
		"TIDEWATCH_TRIGGER_WEBHOOK_CI_INCLUDE="+name,
	)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "check")
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}, env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-rcv.arrived:
	case <-ctx.Done():
		t.Fatal("the first delivery never arrived")
	}
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // tidewatch and its plugin processes
	cmd.Wait()
	rcv.mu.Lock()
	close(rcv.hold)
	rcv.hold = nil
	rcv.mu.Unlock()

	if r := tidewatch(t, env, "check"); r.code != 0 {
		t.Fatalf("check after the kill: exit %d\n%s", r.code, r.stderr)
	}
	if r := tidewatch(t, env, "check"); r.code != 0 {
		t.Fatalf("third check: exit %d\n%s", r.code, r.stderr)
	}
	got := rcv.got()
	if len(got) != 2 {
		t.Fatalf("webhook got %d requests, want 2: the one cut by the kill and its resumption", len(got))
	}
	if a, b := got[0].header.Get("Idempotency-Key"), got[1].header.Get("Idempotency-Key"); a == "" || a != b {
		t.Errorf("idempotency keys %q and %q, want the same key for the resumed delivery", a, b)
	}
}
