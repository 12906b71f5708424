package email

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"mime"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidewatch/tidewatch/plugins/sdk"
	"github.com/tidewatch/tidewatch/triggers/triggertest"
)

func testCertPEM(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func update(key, container string) sdk.Update {
	u := sdk.SampleMessage().Update
	u.Key, u.Container = key, container
	return u
}

func TestDefaultTemplates(t *testing.T) {
	c, err := ParseConfig(minimal(nil))
	if err != nil {
		t.Fatal(err)
	}
	a := update("k1", "web")
	b := update("k2", "db")
	b.Event, b.Detail, b.Link = sdk.EventUpdateRolledBack, "health check failed", ""
	evil := update("k3", `<script>alert("x")</script>`)

	tests := []struct {
		name    string
		updates []sdk.Update
		subject string
		body    []string // substrings of the text body
		html    []string // substrings of the HTML body
		notHTML []string
	}{
		{
			name: "one", updates: []sdk.Update{a},
			subject: "[tidewatch] web: 1.0.0 → 1.1.0 (minor)",
			body:    []string{"tidewatch has news of 1 container.", "web on local: update available", "image:   registry.example/web", "running: 1.0.0 (sha256:aaaa", "offered: 1.1.0 (sha256:bbbb", "kind:    minor", "notes:   https://example.com/releases/1.1.0", "trigger ops"},
			html:    []string{"<td>web</td>", `<a href="https://example.com/releases/1.1.0">`},
		},
		{
			name: "rolled back", updates: []sdk.Update{b},
			subject: "[tidewatch] db: 1.0.0 → 1.1.0 (minor) update-rolled-back",
			body:    []string{"db on local: update rolled back", "detail:  health check failed"},
		},
		{
			name: "batch", updates: []sdk.Update{a, b},
			subject: "[tidewatch] 2 updates",
			body:    []string{"tidewatch has news of 2 containers.", "web on local: update available", "db on local: update rolled back"},
			html:    []string{"<td>web</td>", "<td>db</td>", "update-rolled-back: health check failed"},
		},
		{
			name: "html escaped", updates: []sdk.Update{evil},
			html:    []string{"&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;"},
			notHTML: []string{"<script>"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, _, err := buildMessage(c, "ops", tc.updates)
			if err != nil {
				t.Fatalf("buildMessage: %v", err)
			}
			var raw bytes.Buffer
			if _, err := m.WriteTo(&raw); err != nil {
				t.Fatal(err)
			}
			data := sdk.NewMessage("ops", tc.updates)
			subject, _ := c.Subject.Render(data)
			text, _ := c.Body.Render(data)
			var html strings.Builder
			if err := c.HTML.Execute(&html, data); err != nil {
				t.Fatal(err)
			}
			if tc.subject != "" && subject != tc.subject {
				t.Errorf("subject = %q, want %q", subject, tc.subject)
			}
			for _, s := range tc.body {
				if !strings.Contains(text, s) {
					t.Errorf("text body lacks %q:\n%s", s, text)
				}
			}
			for _, s := range tc.html {
				if !strings.Contains(html.String(), s) {
					t.Errorf("HTML body lacks %q:\n%s", s, html.String())
				}
			}
			for _, s := range tc.notHTML {
				if strings.Contains(html.String(), s) {
					t.Errorf("HTML body holds %q:\n%s", s, html.String())
				}
			}
			if !strings.Contains(raw.String(), "multipart/alternative") {
				t.Errorf("message is not multipart/alternative:\n%s", raw.String())
			}
		})
	}
}

func TestMessageID(t *testing.T) {
	a, b := update("k1", "web"), update("k2", "db")
	id := MessageID("tw@example.com", []sdk.Update{a})
	if !strings.HasPrefix(id, "tidewatch.") || !strings.HasSuffix(id, "@example.com") {
		t.Errorf("MessageID = %q, want tidewatch.<hash>@example.com", id)
	}
	a2 := a
	a2.Candidate = "9.9.9" // same key: a resend of the same delivery
	if got := MessageID("tw@example.com", []sdk.Update{a2}); got != id {
		t.Errorf("MessageID for the same key = %q, want %q", got, id)
	}
	for _, other := range [][]sdk.Update{{b}, {a, b}, {b, a}} {
		if got := MessageID("tw@example.com", other); got == id {
			t.Errorf("MessageID(%v) = %q, the same as for k1", other, got)
		}
	}
	if got := MessageID("nodomain", []sdk.Update{a}); !strings.HasSuffix(got, "@tidewatch.invalid") {
		t.Errorf("MessageID without a domain = %q", got)
	}
}

// fakeSMTP is an SMTP server that answers with chosen replies and records
// what it received. Its behaviour can change between connections (set).
type fakeSMTP struct {
	addr string

	mu       sync.Mutex
	replies  map[string]string // command (EHLO, MAIL, RCPT, DATA, ".", AUTH, AUTH2, GREETING) → reply; default success
	hang     string            // command after which the server says nothing until released
	dropAt   string            // command at which the server closes the connection
	release  chan struct{}     // closed to end hangs
	messages []string
}

func startFake(t *testing.T, f *fakeSMTP) *fakeSMTP {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.addr = l.Addr().String()
	f.release = make(chan struct{})
	t.Cleanup(func() {
		f.set(func(f *fakeSMTP) {})
		l.Close()
	})
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go f.serve(c)
		}
	}()
	return f
}

// set ends current hangs, then changes the behaviour for new connections.
func (f *fakeSMTP) set(change func(f *fakeSMTP)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	close(f.release)
	f.release = make(chan struct{})
	change(f)
}

func (f *fakeSMTP) serve(c net.Conn) {
	defer c.Close()
	f.mu.Lock()
	replies, hang, dropAt, release := f.replies, f.hang, f.dropAt, f.release
	f.mu.Unlock()
	reply := func(cmd, def string) string {
		if r, ok := replies[cmd]; ok {
			return r
		}
		return def
	}
	r := bufio.NewReader(c)
	say := func(s string) { fmt.Fprintf(c, "%s\r\n", s) }
	greeting := reply("GREETING", "220 fake ESMTP")
	say(greeting)
	if !strings.HasPrefix(greeting, "220") {
		return
	}
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		cmd := strings.ToUpper(strings.Fields(line + " x")[0])
		if cmd == dropAt {
			return
		}
		if cmd == hang {
			<-release
			return
		}
		switch cmd {
		case "EHLO":
			say("250-fake")
			say("250-8BITMIME")
			say("250 AUTH CRAM-MD5")
		case "MAIL":
			say(reply("MAIL", "250 2.1.0 ok"))
		case "RCPT":
			say(reply("RCPT", "250 2.1.5 ok"))
		case "AUTH":
			first := reply("AUTH", "334 PDEyMzQ1QGZha2U+")
			say(first)
			if strings.HasPrefix(first, "334") {
				if _, err := r.ReadString('\n'); err != nil {
					return
				}
				say(reply("AUTH2", "235 2.7.0 ok"))
			}
		case "DATA":
			d := reply("DATA", "354 go ahead")
			say(d)
			if !strings.HasPrefix(d, "354") {
				continue
			}
			var msg strings.Builder
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
				msg.WriteString(l)
			}
			if hang == "." {
				<-release
				return
			}
			f.mu.Lock()
			f.messages = append(f.messages, msg.String())
			f.mu.Unlock()
			say(reply(".", "250 2.0.0 queued"))
		case "QUIT":
			say("221 bye")
			return
		default: // NOOP, RSET
			say("250 ok")
		}
	}
}

func (f *fakeSMTP) received() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.messages...)
}

// fakeOptions are options that send to f in clear, with CRAM-MD5.
func fakeOptions(f *fakeSMTP, extra map[string]string) map[string]string {
	host, port, _ := net.SplitHostPort(f.addr)
	o := map[string]string{
		OptHost: host, OptPort: port, OptTLS: TLSNone, OptFrom: "tw@example.com", OptTo: "a@example.com, b@example.com",
		OptUsername: "user", OptPassword: "canary-secret-91b2", OptAuth: AuthCramMD5, OptTimeout: "5s",
	}
	for k, v := range extra {
		o[k] = v
	}
	return o
}

func configured(t *testing.T, options map[string]string) (*Trigger, *bytes.Buffer) {
	t.Helper()
	var logs bytes.Buffer
	tr := NewWithLogger(sdk.NewLogger(&logs))
	if err := tr.Configure(context.Background(), "ops", options); err != nil {
		t.Fatalf("Configure: %v", err)
	}
	return tr, &logs
}

func TestFireDeliversToFake(t *testing.T) {
	f := startFake(t, &fakeSMTP{})
	tr, logs := triggertest.Start(t, "email", fakeOptions(f, nil))
	u := update("key-123", "web")
	res := tr.Fire(context.Background(), []sdk.Update{u})
	if len(res) != 1 || res[0].Err != nil {
		t.Fatalf("Fire = %+v, want one delivered result", res)
	}
	id := MessageID("tw@example.com", []sdk.Update{u})
	if res[0].Detail != "Message-ID <"+id+">" {
		t.Errorf("Detail = %q, want Message-ID <%s>", res[0].Detail, id)
	}
	msgs := f.received()
	if len(msgs) != 1 {
		t.Fatalf("server received %d messages, want 1", len(msgs))
	}
	for _, want := range []string{"Message-Id: <" + id + ">", "X-Tidewatch-Key: key-123", "To: <a@example.com>, <b@example.com>", "text/plain", "text/html"} {
		if !strings.Contains(strings.ToLower(msgs[0]), strings.ToLower(want)) {
			t.Errorf("message lacks %q:\n%s", want, msgs[0])
		}
	}
	if got, want := subjectOf(t, msgs[0]), "[tidewatch] web: 1.0.0 → 1.1.0 (minor)"; got != want {
		t.Errorf("Subject = %q, want %q", got, want)
	}
	if strings.Contains(msgs[0], "canary-secret-91b2") {
		t.Errorf("the password leaked into the message")
	}

	// A batch is one message with every key.
	res = tr.Fire(context.Background(), []sdk.Update{update("k1", "web"), update("k2", "db")})
	if len(res) != 2 || res[0].Err != nil || res[1].Err != nil || res[0].Detail != res[1].Detail {
		t.Fatalf("Fire(batch) = %+v, want two delivered results with one Message-ID", res)
	}
	if msgs := f.received(); len(msgs) != 2 || !strings.Contains(msgs[1], "X-Tidewatch-Key: k1, k2") || subjectOf(t, msgs[1]) != "[tidewatch] 2 updates" {
		t.Errorf("batch message:\n%s", msgs[len(msgs)-1])
	}
	tr.Close()
	if strings.Contains(logs.String(), "canary-secret-91b2") {
		t.Errorf("the password leaked into the logs")
	}
}

func TestFireClassification(t *testing.T) {
	closedPort := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		return addr
	}
	tests := []struct {
		name      string
		server    *fakeSMTP
		addr      string // instead of a server
		options   map[string]string
		permanent bool
		contains  string
	}{
		{name: "greeting 421", server: &fakeSMTP{replies: map[string]string{"GREETING": "421 4.3.2 busy"}}, contains: "421"},
		{name: "greeting 554", server: &fakeSMTP{replies: map[string]string{"GREETING": "554 5.3.2 go away"}}, permanent: true, contains: "554"},
		{name: "auth 535", server: &fakeSMTP{replies: map[string]string{"AUTH2": "535 5.7.8 bad credentials"}}, permanent: true, contains: "535"},
		{name: "auth 454", server: &fakeSMTP{replies: map[string]string{"AUTH2": "454 4.7.0 try later"}}, contains: "454"},
		{name: "mail from 451", server: &fakeSMTP{replies: map[string]string{"MAIL": "451 4.3.0 try later"}}, contains: "451"},
		{name: "mail from 550", server: &fakeSMTP{replies: map[string]string{"MAIL": "550 5.7.1 sender refused"}}, permanent: true, contains: "550"},
		{name: "rcpt 452", server: &fakeSMTP{replies: map[string]string{"RCPT": "452 4.2.2 mailbox full"}}, contains: "452"},
		{name: "rcpt 550", server: &fakeSMTP{replies: map[string]string{"RCPT": "550 5.1.1 no such user"}}, permanent: true, contains: "550"},
		{name: "data 554", server: &fakeSMTP{replies: map[string]string{"DATA": "554 5.5.1 no valid recipients"}}, permanent: true, contains: "554"},
		{name: "end of data 451", server: &fakeSMTP{replies: map[string]string{".": "451 4.3.0 queue full"}}, contains: "451"},
		{name: "end of data 552", server: &fakeSMTP{replies: map[string]string{".": "552 5.3.4 too big"}}, permanent: true, contains: "552"},
		{name: "dropped at mail from", server: &fakeSMTP{dropAt: "MAIL"}},
		{name: "connection refused", addr: closedPort(), contains: "refused"},
		{name: "no starttls offered", server: &fakeSMTP{}, options: map[string]string{OptTLS: TLSStartTLS, OptAuth: AuthNone, OptUsername: "", OptPassword: ""}, permanent: true, contains: "STARTTLS"},
		{name: "hang past timeout", server: &fakeSMTP{hang: "."}, options: map[string]string{OptTimeout: "300ms"}, contains: "deadline exceeded"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			addr := tc.addr
			var f *fakeSMTP
			if tc.server != nil {
				f = startFake(t, tc.server)
				addr = f.addr
			} else {
				f = &fakeSMTP{addr: addr}
			}
			opts := fakeOptions(f, tc.options)
			for k, v := range tc.options {
				if v == "" {
					delete(opts, k)
				}
			}
			tr, logs := triggertest.Start(t, "email", opts)
			start := time.Now()
			res := tr.Fire(context.Background(), []sdk.Update{update("k", "web")})
			tr.Close()
			if len(res) != 1 || res[0].Err == nil {
				t.Fatalf("Fire = %+v, want one failed result", res)
			}
			err := res[0].Err
			if got := sdk.IsPermanent(err); got != tc.permanent {
				t.Errorf("permanent = %v, want %v; error: %v", got, tc.permanent, err)
			}
			if !strings.Contains(err.Error(), tc.contains) {
				t.Errorf("error %q does not mention %q", err, tc.contains)
			}
			if !strings.Contains(err.Error(), addr) {
				t.Errorf("error %q does not name the server %s", err, addr)
			}
			if strings.Contains(err.Error(), "canary-secret-91b2") || strings.Contains(logs.String(), "canary-secret-91b2") {
				t.Errorf("the password leaked: %v\n%s", err, logs.String())
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("Fire took %s", d)
			}
		})
	}
}

// TestFireHonoursContext runs in process, where nothing cuts the trigger
// off: it must stop by itself when its context ends.
func TestFireHonoursContext(t *testing.T) {
	f := startFake(t, &fakeSMTP{hang: "."})
	tr, _ := configured(t, fakeOptions(f, map[string]string{OptTimeout: "1m"}))
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	res := tr.Fire(ctx, []sdk.Update{update("k", "web")})
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Fire returned %s after its context ended at 300ms", d)
	}
	if len(res) != 1 || res[0].Err == nil || sdk.IsPermanent(res[0].Err) || !errors.Is(res[0].Err, context.DeadlineExceeded) {
		t.Errorf("Fire = %+v, want a retryable deadline error", res)
	}
}

func TestFireUnconfigured(t *testing.T) {
	res := New().Fire(context.Background(), []sdk.Update{update("k", "web")})
	if len(res) != 1 || !sdk.IsPermanent(res[0].Err) {
		t.Errorf("Fire before Configure = %+v, want a permanent error", res)
	}
}

// subjectOf returns the decoded Subject of a raw message.
func subjectOf(t *testing.T, raw string) string {
	t.Helper()
	m, err := mail.ReadMessage(strings.NewReader(raw))
	if err != nil {
		t.Fatalf("parsing the message: %v", err)
	}
	s, err := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
	if err != nil {
		t.Fatalf("decoding the subject: %v", err)
	}
	return s
}
