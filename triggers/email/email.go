package email

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/textproto"
	"strings"
	"sync"
	"time"

	mail "github.com/wneessen/go-mail"
	"github.com/wneessen/go-mail/smtp"

	"github.com/tidewatch/tidewatch/plugins/sdk"
)

// HeaderKey is the header that carries the idempotency keys of the updates
// a message reports, comma-separated.
const HeaderKey = "X-Tidewatch-Key"

// Trigger sends updates by mail. A Fire call is one message: one update, or
// a batch of them.
type Trigger struct {
	base *slog.Logger

	mu   sync.RWMutex
	name string
	cfg  *Config
	log  *slog.Logger // base with the instance's name
}

var _ sdk.Trigger = (*Trigger)(nil)

// New returns an email trigger that logs with sdk.Logger.
func New() *Trigger { return NewWithLogger(sdk.Logger()) }

// NewWithLogger returns an email trigger that logs to log.
func NewWithLogger(log *slog.Logger) *Trigger { return &Trigger{base: log, log: log} }

// Describe says what the trigger is and lists its options.
func (t *Trigger) Describe(context.Context) sdk.Description {
	return sdk.Description{Type: "email", Description: "sends a mail per update (or per batch) through an SMTP server", Options: Options}
}

// Configure parses and checks the options; it does not connect to the server.
func (t *Trigger) Configure(_ context.Context, name string, options map[string]string) error {
	cfg, err := ParseConfig(options)
	if err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.name, t.cfg = name, &cfg
	t.log = t.base.With("trigger", "email."+name)
	return nil
}

// Fire sends one message reporting all updates and returns the same result
// for each: delivered, retryable (connection problems, timeouts, 4xx
// replies) or permanent (5xx replies such as a refused password or address,
// a certificate that does not verify, a server without STARTTLS).
func (t *Trigger) Fire(ctx context.Context, updates []sdk.Update) []sdk.Result {
	t.mu.RLock()
	name, cfg, log := t.name, t.cfg, t.log
	t.mu.RUnlock()
	if len(updates) == 0 {
		return nil
	}
	if cfg == nil {
		return sdk.All(len(updates), sdk.Fail(errors.New("email trigger not configured")))
	}
	msg, id, err := buildMessage(*cfg, name, updates)
	if err != nil {
		return sdk.All(len(updates), sdk.Fail(err))
	}
	start := time.Now()
	err = send(ctx, *cfg, msg)
	keys := make([]string, len(updates))
	for i, u := range updates {
		keys[i] = u.Key
	}
	if err != nil {
		err = classify(fmt.Errorf("sending mail through %s: %w", cfg.addr(), err))
		log.Warn("mail not sent", "message_id", id, "keys", keys, "permanent", sdk.IsPermanent(err), "err", err, "duration_ms", time.Since(start).Milliseconds())
		return sdk.All(len(updates), sdk.Result{Err: err})
	}
	log.Info("mail sent", "message_id", id, "keys", keys, "recipients", len(cfg.To), "duration_ms", time.Since(start).Milliseconds())
	return sdk.All(len(updates), sdk.OK("Message-ID <"+id+">"))
}

// MessageID returns the Message-ID (without angle brackets) of the message
// reporting updates: derived from their keys, so that a message sent again
// after a crash or a timeout has the same one, and mail clients can drop
// the duplicate.
func MessageID(from string, updates []sdk.Update) string {
	h := sha256.New()
	for _, u := range updates {
		h.Write([]byte(u.Key))
		h.Write([]byte{0})
	}
	domain := "tidewatch.invalid"
	if i := strings.LastIndexByte(from, '@'); i >= 0 && i < len(from)-1 {
		domain = from[i+1:]
	}
	return "tidewatch." + hex.EncodeToString(h.Sum(nil)[:16]) + "@" + domain
}

// buildMessage renders the message for updates.
func buildMessage(cfg Config, name string, updates []sdk.Update) (*mail.Msg, string, error) {
	data := sdk.NewMessage(name, updates)
	subject, err := cfg.Subject.Render(data)
	if err != nil {
		return nil, "", fmt.Errorf("rendering %s: %w", OptSubject, err)
	}
	text, err := cfg.Body.Render(data)
	if err != nil {
		return nil, "", fmt.Errorf("rendering %s: %w", OptBody, err)
	}
	var html bytes.Buffer
	if cfg.HTML != nil {
		if err := cfg.HTML.Execute(&html, data); err != nil {
			return nil, "", fmt.Errorf("rendering %s: %w", OptHTML, err)
		}
	}

	m := mail.NewMsg(mail.WithNoDefaultUserAgent())
	m.FromMailAddress(cfg.From)
	m.ToMailAddress(cfg.To...)
	m.Subject(strings.Join(strings.Fields(subject), " "))
	id := MessageID(cfg.From.Address, updates)
	m.SetMessageIDWithValue(id)
	keys := make([]string, len(updates))
	for i, u := range updates {
		keys[i] = u.Key
	}
	m.SetGenHeader(HeaderKey, strings.Join(keys, ", "))
	m.SetGenHeader(mail.HeaderXMailer, "tidewatch")
	m.SetDate()
	m.SetBodyString(mail.TypeTextPlain, text)
	if cfg.HTML != nil {
		m.AddAlternativeString(mail.TypeTextHTML, html.String())
	}
	return m, id, nil
}

// send delivers m within cfg.Timeout and ctx: the connection is closed as
// soon as either ends, whatever the SMTP conversation is waiting for.
func send(ctx context.Context, cfg Config, m *mail.Msg) error {
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	tlsConfig := &tls.Config{ServerName: cfg.Host, RootCAs: cfg.RootCAs, InsecureSkipVerify: cfg.TLSInsecure, MinVersion: tls.VersionTLS12}

	var stops []func() bool
	defer func() {
		for _, stop := range stops {
			stop()
		}
	}()
	dial := func(dialCtx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		conn, err := d.DialContext(dialCtx, network, addr)
		if err != nil {
			return nil, err
		}
		stops = append(stops, context.AfterFunc(ctx, func() { conn.Close() }))
		if cfg.TLS != TLSImplicit {
			return conn, nil
		}
		tc := tls.Client(conn, tlsConfig)
		if err := tc.HandshakeContext(dialCtx); err != nil {
			conn.Close()
			return nil, err
		}
		return tc, nil
	}

	opts := []mail.Option{
		// ctx is the limit; go-mail's own deadline on each read and write is a backstop behind it.
		mail.WithPort(cfg.Port), mail.WithTimeout(cfg.Timeout + 5*time.Second), mail.WithTLSConfig(tlsConfig),
		mail.WithDialContextFunc(dial),
	}
	switch cfg.TLS {
	case TLSNone:
		opts = append(opts, mail.WithTLSPolicy(mail.NoTLS))
	case TLSStartTLS:
		opts = append(opts, mail.WithTLSPolicy(mail.TLSMandatory))
	case TLSImplicit:
		opts = append(opts, mail.WithSSL()) // dial does the handshake; go-mail must not try STARTTLS
	}
	switch cfg.Auth {
	case AuthPlain:
		opts = append(opts, mail.WithSMTPAuth(mail.SMTPAuthPlain))
	case AuthLogin:
		opts = append(opts, mail.WithSMTPAuth(mail.SMTPAuthLogin))
	case AuthCramMD5:
		opts = append(opts, mail.WithSMTPAuth(mail.SMTPAuthCramMD5))
	}
	if cfg.Auth != AuthNone {
		opts = append(opts, mail.WithUsername(cfg.Username), mail.WithPassword(cfg.Password))
	}
	client, err := mail.NewClient(cfg.Host, opts...)
	if err != nil {
		return fmt.Errorf("creating SMTP client: %w", err)
	}
	if err := client.DialAndSendWithContext(ctx, m); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return fmt.Errorf("%w (%w)", err, ctxErr)
		}
		return err
	}
	return nil
}

// classify marks err permanent when trying again cannot help: a 5xx reply
// (a refused password, sender or recipient), an address go-mail cannot use,
// a server certificate that does not verify, a server that lacks STARTTLS
// or the AUTH mechanism asked for. Everything else, connection failures,
// timeouts, 4xx replies and the context ending, is retryable.
func classify(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if permanentErr(err) {
		return sdk.Permanent(err)
	}
	return err
}

func permanentErr(err error) bool {
	var se *mail.SendError
	if errors.As(err, &se) {
		switch se.Reason {
		case mail.ErrGetSender, mail.ErrGetRcpts, mail.ErrNoUnencoded:
			return true
		}
		return se.ErrorCode() >= 500
	}
	var te *textproto.Error
	if errors.As(err, &te) {
		return te.Code >= 500
	}
	var (
		unknownAuthority x509.UnknownAuthorityError
		hostname         x509.HostnameError
		invalid          x509.CertificateInvalidError
		verification     *tls.CertificateVerificationError
	)
	if errors.As(err, &unknownAuthority) || errors.As(err, &hostname) || errors.As(err, &invalid) || errors.As(err, &verification) {
		return true
	}
	for _, target := range []error{
		mail.ErrPlainAuthNotSupported, mail.ErrLoginAuthNotSupported, mail.ErrCramMD5AuthNotSupported,
		smtp.ErrUnencrypted, smtp.ErrWrongHostname,
	} {
		if errors.Is(err, target) {
			return true
		}
	}
	// go-mail returns these without a type or a sentinel.
	msg := err.Error()
	return strings.Contains(msg, "does not support STARTTLS") || strings.Contains(msg, "does not support SMTP AUTH")
}
