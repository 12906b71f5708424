package testbed

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"debug/buildinfo"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The mail server of the bed: mailpit, installed with go install by Install.
const (
	// MailpitModule is the Go package that go install builds.
	MailpitModule = "github.com/axllent/mailpit"
	// MailpitVersion is the version the bed uses; a binary of another version is not reused.
	MailpitVersion = "v1.33.1"

	mailpitStartTimeout = 20 * time.Second
	mailpitStopGrace    = 5 * time.Second
	mailpitInstallLimit = 40 * time.Minute // a guard against a hung build: from an empty Go cache on a loaded 2-core machine it took over 10 minutes
	// mailWait bounds WaitMessage when the test has no earlier deadline.
	mailWait = 30 * time.Second
)

// startMailpit starts two mailpit servers on free ports of 127.0.0.1, both
// presenting a self-signed certificate made here and requiring the user and
// password recorded in the state: one with STARTTLS required (MailpitSMTP),
// one speaking TLS from the first byte (MailpitTLSSMTP, SMTPS). Each has its
// own HTTP API and database under MailData.
func (st *State) startMailpit(ctx context.Context, log *slog.Logger) error {
	bin, err := st.part(PartMailpit)
	if err != nil {
		return fmt.Errorf("starting mailpit: %w", err)
	}
	st.MailData = filepath.Join(st.Dir, "mail")
	if err := os.MkdirAll(st.MailData, 0o755); err != nil {
		return fmt.Errorf("creating mail folder: %w", err)
	}
	st.MailCert = filepath.Join(st.MailData, "cert.pem")
	st.MailKey = filepath.Join(st.MailData, "key.pem")
	if err := writeSelfSigned(st.MailCert, st.MailKey); err != nil {
		return err
	}
	st.MailUser, st.MailPassword = "tidewatch", "pw-"+newID()
	authFile := filepath.Join(st.MailData, "smtp-auth")
	if err := os.WriteFile(authFile, []byte(st.MailUser+":"+st.MailPassword+"\n"), 0o600); err != nil {
		return fmt.Errorf("writing mailpit auth file: %w", err)
	}
	common := []string{
		"--smtp-tls-cert", st.MailCert, "--smtp-tls-key", st.MailKey, "--smtp-auth-file", authFile,
		"--smtp-disable-rdns", "--disable-version-check", "--max", "5000",
	}
	st.MailpitSMTP, st.MailpitAPI, st.MailpitProcess, err = runMailpit(ctx, bin, "starttls", st.MailData,
		append([]string{"--smtp-require-starttls"}, common...), log)
	if err != nil {
		return err
	}
	st.MailpitTLSSMTP, st.MailpitTLSAPI, st.MailpitTLSProcess, err = runMailpit(ctx, bin, "tls", st.MailData,
		append([]string{"--smtp-require-tls"}, common...), log)
	return err
}

// runMailpit starts one mailpit on two free ports and waits until its API and
// SMTP answer, trying other ports when one was taken in between.
func runMailpit(ctx context.Context, bin, name, dir string, extra []string, log *slog.Logger) (smtpAddr, api string, p *Process, err error) {
	logPath := filepath.Join(dir, "mailpit-"+name+".log")
	var lastErr error
	for attempt := 1; attempt <= 3; attempt++ {
		smtpPort, err := freePort()
		if err != nil {
			return "", "", nil, err
		}
		httpPort, err := freePort()
		if err != nil {
			return "", "", nil, err
		}
		smtpAddr = fmt.Sprintf("127.0.0.1:%d", smtpPort)
		httpAddr := fmt.Sprintf("127.0.0.1:%d", httpPort)
		args := append([]string{bin, "--smtp", smtpAddr, "--listen", httpAddr,
			"--database", filepath.Join(dir, "mailpit-"+name+".db")}, extra...)
		p, exited, err := startProcess(args, logPath)
		if err != nil {
			return "", "", nil, err
		}
		var exitedEarly bool
		up := waitFor(ctx, mailpitStartTimeout, func() bool {
			select {
			case <-exited:
				exitedEarly = true
				return true
			default:
			}
			return PingMailpit(ctx, "http://"+httpAddr, smtpAddr) == nil
		})
		if up && !exitedEarly {
			log.Info("started mailpit", "mode", name, "smtp", smtpAddr, "api", "http://"+httpAddr, "pid", p.PID, "log", logPath)
			return smtpAddr, "http://" + httpAddr, p, nil
		}
		_ = p.stop(context.WithoutCancel(ctx), mailpitStopGrace)
		lastErr = fmt.Errorf("starting mailpit (%s) on %s and %s (attempt %d): no answer within %s; its log ends:\n%s",
			name, smtpAddr, httpAddr, attempt, mailpitStartTimeout, logTail(logPath, 2000))
	}
	return "", "", nil, lastErr
}

// PingMailpit checks that mailpit's API answers /readyz and that its SMTP
// port accepts a connection.
func PingMailpit(ctx context.Context, api, smtpAddr string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, api+"/readyz", nil)
	if err != nil {
		return fmt.Errorf("pinging mailpit %s: %w", api, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("pinging mailpit %s: %w", api, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("pinging mailpit %s: status %d", api, resp.StatusCode)
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", smtpAddr)
	if err != nil {
		return fmt.Errorf("pinging mailpit SMTP %s: %w", smtpAddr, err)
	}
	return c.Close()
}

// mailpitHealthy tells whether both mail servers of a recorded bed still answer.
func (st *State) mailpitHealthy(ctx context.Context) bool {
	return st.MailpitProcess.alive() && st.MailpitTLSProcess.alive() &&
		PingMailpit(ctx, st.MailpitAPI, st.MailpitSMTP) == nil &&
		PingMailpit(ctx, st.MailpitTLSAPI, st.MailpitTLSSMTP) == nil
}

// stopMailpit stops both mail servers.
func (st *State) stopMailpit(ctx context.Context, log *slog.Logger) []error {
	var errs []error
	for _, p := range []*Process{st.MailpitProcess, st.MailpitTLSProcess} {
		if p == nil {
			continue
		}
		log.Info("stopping mailpit", "pid", p.PID)
		if err := p.stop(ctx, mailpitStopGrace); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// ensureMailpit returns the path of a mailpit binary of MailpitVersion: one
// already in the cache folder (cache/bin), in GOBIN or GOPATH/bin, or on
// PATH; else it installs one into cache/bin with go install (fresh).
func ensureMailpit(ctx context.Context, cache string, log *slog.Logger) (path string, built *buildStats, err error) {
	binDir := filepath.Join(cache, "bin")
	candidates := []string{filepath.Join(binDir, "mailpit")}
	if d := os.Getenv("GOBIN"); d != "" {
		candidates = append(candidates, filepath.Join(d, "mailpit"))
	}
	if d := os.Getenv("GOPATH"); d != "" {
		candidates = append(candidates, filepath.Join(filepath.SplitList(d)[0], "bin", "mailpit"))
	}
	if home, err := os.UserHomeDir(); err == nil {
		candidates = append(candidates, filepath.Join(home, "go", "bin", "mailpit"))
	}
	if p, err := exec.LookPath("mailpit"); err == nil {
		candidates = append(candidates, p)
	}
	for _, c := range candidates {
		if mailpitVersionOf(c) == MailpitVersion {
			return c, nil, nil
		}
	}
	goBin, err := lookGo()
	if err != nil {
		return "", nil, err
	}
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return "", nil, fmt.Errorf("creating %s: %w", binDir, err)
	}
	log.Info("installing mailpit with go install (once)", "version", MailpitVersion, "into", binDir)
	ctx, cancel := context.WithTimeout(ctx, mailpitInstallLimit)
	defer cancel()
	start := time.Now()
	cmd := exec.CommandContext(ctx, goBin, "install", MailpitModule+"@"+MailpitVersion)
	cmd.Dir = binDir // outside any module, so that no go.mod gets in the way
	cmd.Env = append(os.Environ(), "GOBIN="+binDir, "GOFLAGS=-mod=mod", "GOWORK=off", "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	built = &buildStats{wall: time.Since(start)}
	built.add(cmd)
	if err != nil {
		return "", nil, fmt.Errorf("installing mailpit: go install %s@%s: %w\n%s", MailpitModule, MailpitVersion, err, tail(out, 2000))
	}
	p := filepath.Join(binDir, "mailpit")
	if v := mailpitVersionOf(p); v != MailpitVersion {
		return "", nil, fmt.Errorf("installing mailpit: %s is version %q after go install, want %s", p, v, MailpitVersion)
	}
	log.Info("installed mailpit", "path", p, "took", built.wall.Round(time.Second), "cpu", built.cpu.Round(time.Second))
	return p, built, nil
}

// mailpitVersionOf returns the module version a mailpit binary was built
// from, or "" when path is not a Go build of mailpit.
func mailpitVersionOf(path string) string {
	info, err := buildinfo.ReadFile(path)
	if err != nil || info.Main.Path != MailpitModule {
		return ""
	}
	return info.Main.Version
}

// lookGo finds the go command: on PATH, else in /usr/local/go/bin.
func lookGo() (string, error) {
	if p, err := exec.LookPath("go"); err == nil {
		return p, nil
	}
	p := "/usr/local/go/bin/go"
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("finding the go command to build the test bed's Go parts: not on PATH nor at %s", p)
	}
	return p, nil
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return strings.TrimSpace(string(b))
}

// writeSelfSigned writes a self-signed ECDSA certificate for 127.0.0.1, ::1
// and localhost, valid for a year, that is its own CA: trusting the
// certificate file as a CA verifies the servers that present it.
func writeSelfSigned(certPath, keyPath string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("generating mail server key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return fmt.Errorf("generating certificate serial: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "tidewatch test bed mail server", Organization: []string{"tidewatch test bed"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("creating mail server certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("encoding mail server key: %w", err)
	}
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return fmt.Errorf("writing mail server certificate: %w", err)
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return fmt.Errorf("writing mail server key: %w", err)
	}
	return nil
}

// MailAddress is a mail address as mailpit reports it.
type MailAddress struct {
	Name    string
	Address string
}

// MailSummary is a message in a mailpit inbox, as listed.
type MailSummary struct {
	// ID is mailpit's ID of the message.
	ID string
	// MessageID is the Message-ID header, without angle brackets.
	MessageID string
	From      *MailAddress
	To        []MailAddress
	Cc        []MailAddress
	Subject   string
	// Created is when mailpit received it.
	Created time.Time
	// Server is the mail server that received it: "starttls" (MailpitSMTP) or "tls" (MailpitTLSSMTP).
	Server string `json:"-"`
}

// Mail is a whole message read from mailpit.
type Mail struct {
	MailSummary
	// Text and HTML are the plain-text and HTML bodies ("" when absent).
	Text string
	HTML string
	// Headers are the message's headers, by canonical name.
	Headers map[string][]string
}

// mailServers returns the bed's mail servers by name, failing the test when
// the bed has none.
func (b *Bed) mailServers(t testing.TB) []struct{ name, api string } {
	t.Helper()
	if b.State.MailpitAPI == "" || b.State.MailpitTLSAPI == "" {
		t.Fatalf("the test bed has no mail server (its state was written by an older bedctl): run bedctl down, then up")
	}
	return []struct{ name, api string }{{"starttls", b.State.MailpitAPI}, {"tls", b.State.MailpitTLSAPI}}
}

// Messages lists the messages of both mail servers, newest first within
// each. Other test processes share the servers: match on a subject or
// recipient of your own, never on the count.
func (b *Bed) Messages(t testing.TB) []MailSummary {
	t.Helper()
	ctx, cancel := testContext(t)
	defer cancel()
	var all []MailSummary
	for _, s := range b.mailServers(t) {
		list, err := listMail(ctx, s.api)
		if err != nil {
			t.Fatalf("listing mail of %s: %v", s.name, err)
		}
		for i := range list {
			list[i].Server = s.name
		}
		all = append(all, list...)
	}
	return all
}

// WaitMessage waits until a message whose subject contains subject has
// arrived at either mail server, and returns it whole. It fails the test
// after 30 seconds (or at the test's deadline).
func (b *Bed) WaitMessage(t testing.TB, subject string) Mail {
	t.Helper()
	ctx, cancel := testContext(t)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, mailWait)
	defer cancel()
	servers := b.mailServers(t)
	var found *MailSummary
	var api string
	var lastErr error
	waitFor(ctx, mailWait, func() bool {
		for _, s := range servers {
			list, err := listMail(ctx, s.api)
			if err != nil {
				lastErr = err
				continue
			}
			for i := range list {
				if strings.Contains(list[i].Subject, subject) {
					found, api = &list[i], s.api
					found.Server = s.name
					return true
				}
			}
		}
		return false
	})
	if found == nil {
		t.Fatalf("no message with %q in its subject arrived within %s (last error: %v)", subject, mailWait, lastErr)
	}
	m := Mail{MailSummary: *found}
	var body struct {
		Text, HTML string
	}
	if err := getJSON(ctx, api+"/api/v1/message/"+url.PathEscape(found.ID), &body); err != nil {
		t.Fatalf("reading message %s: %v", found.ID, err)
	}
	m.Text, m.HTML = body.Text, body.HTML
	if err := getJSON(ctx, api+"/api/v1/message/"+url.PathEscape(found.ID)+"/headers", &m.Headers); err != nil {
		t.Fatalf("reading headers of message %s: %v", found.ID, err)
	}
	return m
}

// DeleteMessages deletes the messages whose subject contains subject from
// both mail servers; "" deletes every message, which only a test that knows
// no other test process uses the servers may do.
func (b *Bed) DeleteMessages(t testing.TB, subject string) {
	t.Helper()
	ctx, cancel := testContext(t)
	defer cancel()
	for _, s := range b.mailServers(t) {
		list, err := listMail(ctx, s.api)
		if err != nil {
			t.Fatalf("listing mail of %s: %v", s.name, err)
		}
		var ids []string
		for _, m := range list {
			if strings.Contains(m.Subject, subject) {
				ids = append(ids, m.ID)
			}
		}
		if len(ids) == 0 {
			continue
		}
		if err := deleteMail(ctx, s.api, ids); err != nil {
			t.Fatalf("deleting mail of %s: %v", s.name, err)
		}
	}
}

// listMail lists up to 5000 messages (the servers keep no more), newest first.
func listMail(ctx context.Context, api string) ([]MailSummary, error) {
	var page struct {
		Messages []MailSummary `json:"messages"`
	}
	if err := getJSON(ctx, api+"/api/v1/messages?limit=5000", &page); err != nil {
		return nil, err
	}
	return page.Messages, nil
}

func deleteMail(ctx context.Context, api string, ids []string) error {
	body, err := json.Marshal(map[string][]string{"IDs": ids})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, api+"/api/v1/messages", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1000))
		return fmt.Errorf("DELETE %s/api/v1/messages: status %d: %s", api, resp.StatusCode, strings.TrimSpace(string(b)))
	}
	return nil
}

func getJSON(ctx context.Context, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1000))
		return fmt.Errorf("GET %s: status %d: %s", u, resp.StatusCode, strings.TrimSpace(string(b)))
	}
	if err := json.NewDecoder(bufio.NewReader(resp.Body)).Decode(v); err != nil {
		return fmt.Errorf("GET %s: decoding: %w", u, err)
	}
	return nil
}
