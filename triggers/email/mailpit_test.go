package email

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tidewatch/tidewatch/plugins/sdk"
	"github.com/tidewatch/tidewatch/test/testbed"
	"github.com/tidewatch/tidewatch/triggers/triggertest"
)

// The tests below send through a real plugin process to the test bed's
// mailpits and read what arrived through mailpit's API. Other test
// processes share the mailpits: each test matches its own unique subject.

func uniq(prefix string) string {
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// bedOptions are options that send to the bed's STARTTLS mailpit, with
// auth, trusting its self-signed certificate.
func bedOptions(bed *testbed.Bed, subject string, extra map[string]string) map[string]string {
	host, port, _ := net.SplitHostPort(bed.State.MailpitSMTP)
	o := map[string]string{
		OptHost: host, OptPort: port, OptTLS: TLSStartTLS, OptTLSCAFile: bed.State.MailCert,
		OptUsername: bed.State.MailUser, OptPassword: bed.State.MailPassword,
		OptFrom: `"Tide Watch" <tidewatch@example.com>`, OptTo: `ops@example.com, "Dev Team" <dev@example.com>`,
		OptSubject: subject + " {{.Update.Container}} {{.Count}}",
	}
	for k, v := range extra {
		if v == "" {
			delete(o, k)
			continue
		}
		o[k] = v
	}
	return o
}

func fireOne(t *testing.T, p sdk.Trigger, updates ...sdk.Update) []sdk.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rs := p.Fire(ctx, updates)
	if len(rs) != len(updates) {
		t.Fatalf("Fire(%d updates) gave %d results", len(updates), len(rs))
	}
	return rs
}

func addresses(list []testbed.MailAddress) []string {
	var out []string
	for _, a := range list {
		out = append(out, a.Name+" <"+a.Address+">")
	}
	return out
}

func TestMailpitStartTLSDelivers(t *testing.T) {
	bed := testbed.Require(t)
	subject := uniq("starttls")
	p, logs := triggertest.Start(t, "email", bedOptions(bed, subject, nil))
	u := update(uniq("key"), "web")
	u.Labels = map[string]string{"evil": "<b>"}
	rs := fireOne(t, p, u)
	if rs[0].Err != nil {
		t.Fatalf("Fire = %v, want delivered", rs[0].Err)
	}
	id := MessageID("tidewatch@example.com", []sdk.Update{u})
	if rs[0].Detail != "Message-ID <"+id+">" {
		t.Errorf("Detail = %q, want Message-ID <%s>", rs[0].Detail, id)
	}

	m := bed.WaitMessage(t, subject)
	if got, want := m.Subject, subject+" web 1"; got != want {
		t.Errorf("Subject = %q, want %q", got, want)
	}
	if m.Server != "starttls" {
		t.Errorf("received by the %s server, want starttls", m.Server)
	}
	if m.From == nil || m.From.Address != "tidewatch@example.com" || m.From.Name != "Tide Watch" {
		t.Errorf("From = %+v, want Tide Watch <tidewatch@example.com>", m.From)
	}
	if diff := cmp.Diff([]string{" <ops@example.com>", "Dev Team <dev@example.com>"}, addresses(m.To)); diff != "" {
		t.Errorf("To (-want +got):\n%s", diff)
	}
	if m.MessageID != id {
		t.Errorf("Message-ID = %q, want %q", m.MessageID, id)
	}
	if diff := cmp.Diff([]string{u.Key}, m.Headers[HeaderKey]); diff != "" {
		t.Errorf("%s (-want +got):\n%s", HeaderKey, diff)
	}
	for _, want := range []string{"web on local: update available", "image:   registry.example/web", "offered: 1.1.0", "notes:   https://example.com/releases/1.1.0", "trigger test"} {
		if !strings.Contains(m.Text, want) {
			t.Errorf("text body lacks %q:\n%s", want, m.Text)
		}
	}
	for _, want := range []string{"<td>web</td>", `<a href="https://example.com/releases/1.1.0">release notes</a>`} {
		if !strings.Contains(m.HTML, want) {
			t.Errorf("HTML body lacks %q:\n%s", want, m.HTML)
		}
	}

	// Sent again (a retry after a crash): the same Message-ID, so readers can drop it.
	if rs := fireOne(t, p, u); rs[0].Err != nil {
		t.Fatalf("Fire again = %v", rs[0].Err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		var ids []string
		for _, s := range bed.Messages(t) {
			if strings.HasPrefix(s.Subject, subject) {
				ids = append(ids, s.MessageID)
			}
		}
		if len(ids) == 2 {
			if ids[0] != id || ids[1] != id {
				t.Errorf("Message-IDs of the two sends = %q, want both %q", ids, id)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("found %d messages with subject %s after sending twice, want 2", len(ids), subject)
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.Close()
	if strings.Contains(logs.String(), bed.State.MailPassword) {
		t.Errorf("the password appears in the plugin's logs")
	}
}

func TestMailpitBatch(t *testing.T) {
	bed := testbed.Require(t)
	subject := uniq("batch")
	p, _ := triggertest.Start(t, "email", bedOptions(bed, subject, map[string]string{OptHTML: HTMLNone}))
	a, b := update(uniq("k"), "web"), update(uniq("k"), "db")
	for i, r := range fireOne(t, p, a, b) {
		if r.Err != nil {
			t.Fatalf("Fire result %d = %v, want delivered", i, r.Err)
		}
	}
	m := bed.WaitMessage(t, subject)
	if got, want := m.Subject, subject+" web 2"; got != want {
		t.Errorf("Subject = %q, want %q", got, want)
	}
	if !strings.Contains(m.Text, "web on local") || !strings.Contains(m.Text, "db on local") {
		t.Errorf("text body lacks one of the updates:\n%s", m.Text)
	}
	if m.HTML != "" {
		t.Errorf("HTML body = %q, want none with HTML=none", m.HTML)
	}
	if diff := cmp.Diff([]string{a.Key + ", " + b.Key}, m.Headers[HeaderKey]); diff != "" {
		t.Errorf("%s (-want +got):\n%s", HeaderKey, diff)
	}
}

func TestMailpitImplicitTLS(t *testing.T) {
	bed := testbed.Require(t)
	subject := uniq("tls")
	host, port, _ := net.SplitHostPort(bed.State.MailpitTLSSMTP)
	p, _ := triggertest.Start(t, "email", bedOptions(bed, subject, map[string]string{OptHost: host, OptPort: port, OptTLS: TLSImplicit, OptAuth: AuthLogin}))
	if rs := fireOne(t, p, update(uniq("k"), "web")); rs[0].Err != nil {
		t.Fatalf("Fire = %v, want delivered", rs[0].Err)
	}
	if m := bed.WaitMessage(t, subject); m.Server != "tls" {
		t.Errorf("received by the %s server, want tls", m.Server)
	}
}

func TestMailpitFailures(t *testing.T) {
	bed := testbed.Require(t)
	tests := []struct {
		name      string
		options   map[string]string
		permanent bool
		contains  string
	}{
		{name: "wrong password", options: map[string]string{OptPassword: "canary-wrong-5c1d"}, permanent: true, contains: "535"},
		{name: "untrusted certificate", options: map[string]string{OptTLSCAFile: ""}, permanent: true, contains: "certificate"},
		{name: "no STARTTLS with TLS=none", options: map[string]string{OptTLS: TLSNone, OptTLSCAFile: "", OptUsername: "", OptPassword: ""}, permanent: true, contains: "530"},
		{name: "STARTTLS to the implicit-TLS server", options: map[string]string{OptPort: portOf(bed.State.MailpitTLSSMTP), OptTimeout: "2s"}, permanent: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			subject := uniq("fail")
			p, logs := triggertest.Start(t, "email", bedOptions(bed, subject, tc.options))
			rs := fireOne(t, p, update(uniq("k"), "web"))
			err := rs[0].Err
			if err == nil {
				t.Fatalf("Fire succeeded, want a %v-permanent error", tc.permanent)
			}
			t.Logf("Fire = %v", err)
			if sdk.IsPermanent(err) != tc.permanent {
				t.Errorf("Fire = %v: permanent %v, want %v", err, sdk.IsPermanent(err), tc.permanent)
			}
			if !strings.Contains(err.Error(), tc.contains) {
				t.Errorf("Fire = %v, want it to mention %q", err, tc.contains)
			}
			p.Close()
			for _, secret := range []string{"canary-wrong-5c1d", bed.State.MailPassword} {
				if strings.Contains(err.Error(), secret) || strings.Contains(logs.String(), secret) {
					t.Errorf("a password appears in the error or the logs")
				}
			}
		})
	}
}

func portOf(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}
