package testbed_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/smtp"
	"net/textproto"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tidewatch/tidewatch/test/testbed"
)

// mailTLS returns a TLS config that trusts the bed's mail certificate.
func mailTLS(t *testing.T, bed *testbed.Bed) *tls.Config {
	t.Helper()
	pem, err := os.ReadFile(bed.State.MailCert)
	if err != nil {
		t.Fatalf("reading the mail certificate: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("no certificate in %s", bed.State.MailCert)
	}
	return &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
}

// mailMessage is a multipart/alternative message with a text and an HTML part.
func mailMessage(from string, to []string, subject, msgID, text, html string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <%s>\r\nX-Test: yes\r\n", from, strings.Join(to, ", "), subject, msgID)
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"b1\"\r\n\r\n")
	fmt.Fprintf(&b, "--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s\r\n", text)
	fmt.Fprintf(&b, "--b1\r\nContent-Type: text/html; charset=utf-8\r\n\r\n%s\r\n--b1--\r\n", html)
	return []byte(b.String())
}

// send delivers msg over c: auth, MAIL, RCPT, DATA, QUIT.
func send(c *smtp.Client, auth smtp.Auth, from string, to []string, msg []byte) error {
	if err := c.Auth(auth); err != nil {
		return err
	}
	if err := c.Mail(from); err != nil {
		return err
	}
	for _, r := range to {
		if err := c.Rcpt(r); err != nil {
			return err
		}
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(msg); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

func smtpCode(err error) int {
	var te *textproto.Error
	if errors.As(err, &te) {
		return te.Code
	}
	return 0
}

func TestMailDelivery(t *testing.T) {
	bed := testbed.Require(t)
	st := bed.State
	tests := []struct {
		name   string
		dial   func(t *testing.T) *smtp.Client
		server string
	}{
		{name: "starttls", server: "starttls", dial: func(t *testing.T) *smtp.Client {
			c, err := smtp.Dial(st.MailpitSMTP)
			if err != nil {
				t.Fatalf("dialing %s: %v", st.MailpitSMTP, err)
			}
			if err := c.StartTLS(mailTLS(t, bed)); err != nil {
				t.Fatalf("STARTTLS: %v", err)
			}
			return c
		}},
		{name: "implicit tls", server: "tls", dial: func(t *testing.T) *smtp.Client {
			conn, err := tls.Dial("tcp", st.MailpitTLSSMTP, mailTLS(t, bed))
			if err != nil {
				t.Fatalf("dialing %s over TLS: %v", st.MailpitTLSSMTP, err)
			}
			c, err := smtp.NewClient(conn, "127.0.0.1")
			if err != nil {
				t.Fatalf("greeting from %s: %v", st.MailpitTLSSMTP, err)
			}
			return c
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			subject := unique("mail-" + tc.server)
			from := "bed@example.com"
			to := []string{"a@example.com", "b@example.com"}
			msgID := subject + "@example.com"
			c := tc.dial(t)
			defer c.Close()
			auth := smtp.PlainAuth("", st.MailUser, st.MailPassword, "127.0.0.1")
			if err := send(c, auth, from, to, mailMessage(from, to, subject, msgID, "hello text", "<p>hello html</p>")); err != nil {
				t.Fatalf("sending: %v", err)
			}

			m := bed.WaitMessage(t, subject)
			if m.Subject != subject || m.MessageID != msgID || m.Server != tc.server {
				t.Errorf("message: subject %q, Message-ID %q, server %q; want %q, %q, %q", m.Subject, m.MessageID, m.Server, subject, msgID, tc.server)
			}
			if m.From == nil || m.From.Address != from {
				t.Errorf("From = %+v, want %s", m.From, from)
			}
			var gotTo []string
			for _, a := range m.To {
				gotTo = append(gotTo, a.Address)
			}
			if diff := cmp.Diff(to, gotTo); diff != "" {
				t.Errorf("To (-want +got):\n%s", diff)
			}
			if strings.TrimSpace(m.Text) != "hello text" || !strings.Contains(m.HTML, "<p>hello html</p>") {
				t.Errorf("bodies: text %q, html %q", m.Text, m.HTML)
			}
			if got := m.Headers["X-Test"]; len(got) != 1 || got[0] != "yes" {
				t.Errorf("X-Test header = %q, want [yes]", got)
			}

			var listed bool
			for _, s := range bed.Messages(t) {
				listed = listed || s.ID == m.ID
			}
			if !listed {
				t.Errorf("Messages does not list message %s", m.ID)
			}
			bed.DeleteMessages(t, subject)
			for _, s := range bed.Messages(t) {
				if s.ID == m.ID {
					t.Errorf("message %s still listed after DeleteMessages", m.ID)
				}
			}
		})
	}
}

func TestMailRefusals(t *testing.T) {
	bed := testbed.Require(t)
	st := bed.State

	t.Run("wrong password", func(t *testing.T) {
		c, err := smtp.Dial(st.MailpitSMTP)
		if err != nil {
			t.Fatalf("dialing: %v", err)
		}
		defer c.Close()
		if err := c.StartTLS(mailTLS(t, bed)); err != nil {
			t.Fatalf("STARTTLS: %v", err)
		}
		err = c.Auth(smtp.PlainAuth("", st.MailUser, "wrong", "127.0.0.1"))
		if smtpCode(err) != 535 {
			t.Errorf("AUTH with a wrong password: %v, want a 535 reply", err)
		}
	})

	t.Run("no starttls", func(t *testing.T) {
		c, err := smtp.Dial(st.MailpitSMTP)
		if err != nil {
			t.Fatalf("dialing: %v", err)
		}
		defer c.Close()
		if err := c.Mail("bed@example.com"); smtpCode(err) != 530 {
			t.Errorf("MAIL FROM before STARTTLS: %v, want a 530 reply", err)
		}
	})

	t.Run("plain tcp to the tls server", func(t *testing.T) {
		conn, err := net.Dial("tcp", st.MailpitTLSSMTP)
		if err != nil {
			t.Fatalf("dialing: %v", err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := conn.Write([]byte("EHLO x\r\n")); err != nil {
			t.Fatalf("writing: %v", err)
		}
		buf := make([]byte, 64)
		n, _ := conn.Read(buf)
		if strings.HasPrefix(string(buf[:n]), "220") || strings.HasPrefix(string(buf[:n]), "250") {
			t.Errorf("the implicit-TLS server answered plain text %q", buf[:n])
		}
	})
}
