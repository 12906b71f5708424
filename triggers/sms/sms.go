package sms

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf16"

	"github.com/tidewatch/tidewatch/plugins/sdk"
)

var _ sdk.Trigger = (*Trigger)(nil)

// requestTimeout bounds one request to the API, within Fire's deadline.
const requestTimeout = 30 * time.Second

// Trigger sends updates as text messages through the Twilio Messages API.
// Configure it once; Fire is safe for concurrent use.
type Trigger struct {
	log    *slog.Logger
	client *http.Client
	state  atomic.Pointer[state]
	sent   *sentSet
}

type state struct {
	name string
	cfg  Config
}

// New returns an SMS trigger that logs with sdk.Logger: the one
// `tidewatch trigger serve sms` serves.
func New() *Trigger { return NewWithLogger(sdk.Logger()) }

// NewWithLogger returns an SMS trigger that logs to log.
func NewWithLogger(log *slog.Logger) *Trigger {
	return &Trigger{
		log: log,
		client: &http.Client{
			Transport:     http.DefaultTransport.(*http.Transport).Clone(),
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		sent: newSentSet(maxRemembered),
	}
}

// Describe returns the trigger's type and options.
func (t *Trigger) Describe(context.Context) sdk.Description {
	return sdk.Description{
		Type:        "sms",
		Description: "sends each update (or batch) as a text message to one or more phone numbers through the Twilio Messages API",
		Options:     Options,
	}
}

// Configure parses options.
func (t *Trigger) Configure(_ context.Context, name string, options map[string]string) error {
	cfg, err := ParseConfig(options)
	if err != nil {
		return err
	}
	t.state.Store(&state{name: name, cfg: cfg})
	return nil
}

// Fire sends one message for all updates to every recipient and returns its
// result for each update. A recipient that got the message in an earlier
// attempt with the same key is skipped.
func (t *Trigger) Fire(ctx context.Context, updates []sdk.Update) []sdk.Result {
	st := t.state.Load()
	if st == nil {
		return sdk.All(len(updates), sdk.Fail(errors.New("sms: Fire before Configure")))
	}
	if len(updates) == 0 {
		return nil
	}
	return sdk.All(len(updates), t.send(ctx, st, updates))
}

func (t *Trigger) send(ctx context.Context, st *state, updates []sdk.Update) sdk.Result {
	cfg := st.cfg
	text, err := cfg.Template.Render(sdk.NewMessage(st.name, updates))
	if err != nil {
		return sdk.Fail(fmt.Errorf("TEMPLATE: %w", err))
	}
	body := Truncate(strings.TrimSpace(text), cfg.MaxLength)
	if body == "" {
		return sdk.Fail(errors.New("TEMPLATE: the message is empty"))
	}
	key := sdk.Key(updates)

	var sent, retry, fail []string
	for _, to := range cfg.To {
		if t.sent.has(key, to) {
			sent = append(sent, to+" (earlier attempt)")
			continue
		}
		if ctx.Err() != nil {
			retry = append(retry, fmt.Sprintf("%s: not sent: %v", to, ctx.Err()))
			continue
		}
		sid, err := t.post(ctx, cfg, to, body)
		switch {
		case err == nil:
			t.sent.add(key, to)
			sent = append(sent, to+" "+sid)
			t.log.Debug("sms sent", "trigger", st.name, "to", to, "sid", sid, "key", key)
		case sdk.IsPermanent(err):
			fail = append(fail, err.Error())
		default:
			retry = append(retry, err.Error())
		}
	}
	detail := "sent to " + strings.Join(sent, ", ")
	if len(retry)+len(fail) == 0 {
		return sdk.OK(detail)
	}
	msg := strings.Join(append(retry, fail...), "; ")
	if len(sent) > 0 {
		msg += "; " + detail
	}
	if len(retry) > 0 {
		return sdk.Retry(errors.New(msg))
	}
	return sdk.Fail(errors.New(msg))
}

// apiError is the JSON body of Twilio's error answers.
type apiError struct {
	Code     int    `json:"code"`
	Message  string `json:"message"`
	MoreInfo string `json:"more_info"`
}

// post sends body to one recipient and returns the message's SID.
func (t *Trigger) post(ctx context.Context, cfg Config, to, body string) (string, error) {
	form := url.Values{"To": {to}, "Body": {body}}
	if cfg.MessagingServiceSID != "" {
		form.Set("MessagingServiceSid", cfg.MessagingServiceSID)
	} else {
		form.Set("From", cfg.From)
	}
	endpoint := MessagesURL(cfg.APIURL, cfg.AccountSID)

	rctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return "", sdk.Permanent(fmt.Errorf("%s: building the request: %w", to, err))
	}
	req.SetBasicAuth(cfg.AccountSID, cfg.AuthToken)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "tidewatch-sms")

	resp, err := t.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		if ctx.Err() != nil {
			return "", fmt.Errorf("%s: cut off: %w", to, ctx.Err())
		}
		return "", fmt.Errorf("%s: sending to %s: %w", to, cfg.APIURL, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))

	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		var ok struct {
			SID string `json:"sid"`
		}
		_ = json.Unmarshal(raw, &ok)
		if ok.SID == "" {
			ok.SID = "(no sid)"
		}
		return ok.SID, nil
	}
	err = fmt.Errorf("%s: HTTP %d: %s", to, resp.StatusCode, describe(raw))
	switch {
	case resp.StatusCode == http.StatusRequestTimeout, resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode >= 500:
		return "", err
	default:
		return "", sdk.Permanent(err)
	}
}

// describe turns an error answer's body into text: "Twilio error 21211: …".
func describe(raw []byte) string {
	var e apiError
	if json.Unmarshal(raw, &e) == nil && (e.Code != 0 || e.Message != "") {
		s := fmt.Sprintf("Twilio error %d: %s", e.Code, e.Message)
		if e.MoreInfo != "" {
			s += " (" + e.MoreInfo + ")"
		}
		return s
	}
	s := strings.Join(strings.Fields(strings.ToValidUTF8(string(raw), "")), " ")
	if r := []rune(s); len(r) > 200 {
		s = string(r[:200]) + "..."
	}
	if s == "" {
		s = "(empty answer)"
	}
	return s
}

// MessagesURL is the Messages resource of account under the API base URL.
func MessagesURL(apiURL, account string) string {
	return strings.TrimRight(apiURL, "/") + "/2010-04-01/Accounts/" + url.PathEscape(account) + "/Messages.json"
}

// Truncate cuts s to at most max UTF-16 code units (Twilio counts those),
// ending it with "..." when cut; it never splits a character.
func Truncate(s string, max int) string {
	if utf16Len(s) <= max {
		return s
	}
	const marker = "..."
	limit := max - len(marker)
	n := 0
	for i, r := range s {
		w := utf16.RuneLen(r)
		if w < 0 {
			w = 1
		}
		if n+w > limit {
			return strings.TrimRight(s[:i], " ") + marker
		}
		n += w
	}
	return s
}

func utf16Len(s string) int {
	n := 0
	for _, r := range s {
		if w := utf16.RuneLen(r); w > 0 {
			n += w
		} else {
			n++
		}
	}
	return n
}

// maxRemembered bounds how many (key, recipient) deliveries a process remembers.
const maxRemembered = 10000

// sentSet remembers which recipients got which message, so that a retry
// does not send it to them again; the oldest entries are forgotten first.
type sentSet struct {
	mu    sync.Mutex
	max   int
	set   map[string]bool
	order []string
}

func newSentSet(max int) *sentSet { return &sentSet{max: max, set: map[string]bool{}} }

func (s *sentSet) has(key, to string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.set[key+"\x00"+to]
}

func (s *sentSet) add(key, to string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := key + "\x00" + to
	if s.set[k] {
		return
	}
	s.set[k] = true
	s.order = append(s.order, k)
	if len(s.order) > s.max {
		delete(s.set, s.order[0])
		s.order = s.order[1:]
	}
}
