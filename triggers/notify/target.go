package notify

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"sync"
	"unicode"

	"github.com/nicholas-fedor/shoutrrr/pkg/router"
	"github.com/nicholas-fedor/shoutrrr/pkg/types"
)

// Target is one service of URLS: its shoutrrr service, and what may be
// said of it (Name) without saying its URL.
type Target struct {
	// Index is its position in URLS, from 1.
	Index int
	// Scheme is its URL's scheme ("telegram", "generic+http").
	Scheme string
	// Name is "scheme#index", the only way errors, logs, details and
	// metrics name it.
	Name string

	raw     string   // the URL: secret
	secrets []string // fragments of raw that errors must not show, longest first
	titled  bool     // the service takes a title param

	mu     sync.Mutex
	svc    types.Service // nil until first needed, for a service that logs in (matrix with a user)
	serial chan struct{} // held while sending, for a service not safe for concurrent use (matrix); nil for the others
}

// newTarget checks one entry of URLS: a known service that shoutrrr accepts.
// Services that talk to their server when initialised (matrix with a user
// logs in) are checked without doing so here, and initialised at their first
// message: a chat server down at start-up must not stop tidewatch.
func newTarget(i int, raw string) (*Target, error) {
	u, err := parseURL(i, raw)
	if err != nil {
		return nil, err
	}
	scheme := strings.ToLower(u.Scheme)
	base, _, _ := strings.Cut(scheme, "+")
	t := &Target{Index: i, Scheme: scheme, Name: fmt.Sprintf("%s#%d", base, i), raw: raw, secrets: fragments(raw, u)}
	check := raw
	lazy := base == "matrix" && u.User != nil && u.User.Username() != ""
	if lazy {
		// Checked as the token form, which does no I/O.
		v := *u
		pw, _ := u.User.Password()
		v.User = url.UserPassword("", pw)
		check = v.String()
	}
	svc, err := locate(check)
	if err != nil {
		return nil, fmt.Errorf("entry %d (%s) is not valid: %s", i, t.Name, t.redact(err.Error()))
	}
	// The generic webhook shows a title only in its JSON form (?template=json).
	t.titled = takesTitle(svc) && (base != "generic" || u.Query().Get("template") != "")
	if base == "matrix" {
		t.serial = make(chan struct{}, 1)
	}
	if !lazy {
		t.svc = svc
	}
	return t, nil
}

// locate returns the service of raw, initialised. It does what shoutrrr's
// router does, but keeps the service's own error (the router replaces it
// with "failed to initialize service").
func locate(raw string) (types.Service, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New("not a URL")
	}
	var r router.ServiceRouter
	base, _, custom := strings.Cut(strings.ToLower(u.Scheme), "+")
	svc, err := r.NewService(base)
	if err != nil {
		return nil, err
	}
	if custom {
		c, ok := svc.(types.CustomURLService)
		if !ok {
			return nil, fmt.Errorf("%s takes no custom URL (%s+…)", base, base)
		}
		if u, err = c.GetConfigURLFromCustom(u); err != nil {
			return nil, err
		}
	}
	if err := svc.Initialize(u, nil); err != nil {
		return nil, err
	}
	return svc, nil
}

// service returns the target's service, initialising it on first use.
func (t *Target) service() (types.Service, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.svc != nil {
		return t.svc, nil
	}
	svc, err := locate(t.raw)
	if err != nil {
		return nil, fmt.Errorf("%s: initialising: %s", t.Name, t.redact(err.Error()))
	}
	t.svc = svc
	return svc, nil
}

// send sends one message, giving up (the send left to end by itself) when
// ctx ends: shoutrrr's services take no context.
func (t *Target) send(ctx context.Context, title, body string) error {
	svc, err := t.service()
	if err != nil {
		return err
	}
	params := types.Params{}
	switch {
	case title == "":
	case t.titled:
		params.SetTitle(title)
	case body == "":
		body = title
	default:
		body = title + "\n\n" + body
	}
	if t.serial != nil {
		select {
		case t.serial <- struct{}{}:
		case <-ctx.Done():
			return fmt.Errorf("%s: waiting for the previous message: %w", t.Name, ctx.Err())
		}
	}
	done := make(chan error, 1)
	go func() {
		if t.serial != nil {
			defer func() { <-t.serial }()
		}
		defer func() {
			if p := recover(); p != nil {
				done <- fmt.Errorf("the service panicked: %v", p)
			}
		}()
		done <- svc.Send(body, &params)
	}()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("%s: %s", t.Name, t.redact(err.Error()))
		}
		return nil
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("%s: no answer in time", t.Name)
		}
		return fmt.Errorf("%s: %w", t.Name, ctx.Err())
	}
}

// untitled are services whose configuration has a title key that they do
// not show (Matrix, Mattermost, IFTTT unless its URL maps it) or use for
// something else (Zulip: its topic,
// which the URL sets).
var untitled = map[string]bool{"matrix": true, "mattermost": true, "zulip": true, "ifttt": true}

// takesTitle reports whether the service shows a title param: its
// configuration has a "title" key (shoutrrr refuses a param it does not
// know) and it is not one of the untitled.
func takesTitle(svc types.Service) bool {
	if untitled[svc.GetID()] {
		return false
	}
	v := reflect.ValueOf(svc)
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			return false
		}
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return false
	}
	cfg := v.FieldByName("Config")
	for cfg.IsValid() && (cfg.Kind() == reflect.Pointer || cfg.Kind() == reflect.Interface) {
		if cfg.IsNil() {
			return false
		}
		cfg = cfg.Elem()
	}
	if !cfg.IsValid() || cfg.Kind() != reflect.Struct {
		return false
	}
	ct := cfg.Type()
	for i := range ct.NumField() {
		for _, k := range strings.Split(ct.Field(i).Tag.Get("key"), ",") {
			if strings.TrimSpace(k) == "title" {
				return true
			}
		}
	}
	return false
}

// minFragment is the shortest part of a URL that errors are searched for:
// shorter ones ("80", "bot") would blank out ordinary words.
const minFragment = 4

// fragments returns the parts of a service URL that may be secret — the
// whole, user info, host, path segments, query values, fragment — each
// also escaped and unescaped, longest first.
func fragments(raw string, u *url.URL) []string {
	set := map[string]bool{}
	add := func(s string) {
		for _, v := range []string{s, url.PathEscape(s), url.QueryEscape(s)} {
			if len(v) >= minFragment {
				set[v] = true
			}
			if un, err := url.PathUnescape(v); err == nil && len(un) >= minFragment {
				set[un] = true
			}
		}
	}
	add(raw)
	if u.User != nil {
		add(u.User.Username())
		add(u.User.String())
		if pw, ok := u.User.Password(); ok {
			add(pw)
		}
	}
	add(u.Host)
	add(u.Hostname())
	add(u.Opaque)
	for _, seg := range strings.Split(u.EscapedPath(), "/") {
		add(seg)
	}
	for _, vs := range u.Query() {
		for _, v := range vs {
			add(v)
			for _, part := range strings.Split(v, ",") {
				add(part)
			}
		}
	}
	add(u.Fragment)
	for _, s := range Schemes() { // a service's name is not a secret
		delete(set, s)
	}
	out := make([]string, 0, len(set))
	for s := range set {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}

// urlInText finds URLs in an error (a net/http error quotes the request's).
var urlInText = regexp.MustCompile(`[a-zA-Z][a-zA-Z0-9+.-]*://[^\s"']+`)

// maxError bounds the length of an error's text taken from a service.
const maxError = 300

// redact returns a service's error text without the URL or any part of it,
// without any URL at all (an API address may hold the token), on one line
// and at most maxError long.
func (t *Target) redact(s string) string {
	s = urlInText.ReplaceAllStringFunc(s, func(m string) string {
		scheme, _, _ := strings.Cut(m, "://")
		return scheme + "://[redacted]"
	})
	for _, f := range t.secrets {
		s = strings.ReplaceAll(s, f, "[redacted]")
	}
	s = strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return ' '
		}
		if !unicode.IsPrint(r) {
			return -1
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > maxError {
		s = string(r[:maxError-1]) + "…"
	}
	return s
}
