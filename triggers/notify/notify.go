package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tidewatch/tidewatch/plugins/sdk"
)

var _ sdk.Trigger = (*Trigger)(nil)

// Trigger sends messages to shoutrrr services. Configure it once; Fire is
// safe for concurrent use.
type Trigger struct {
	log   *slog.Logger
	state atomic.Pointer[state]
	sent  *sentSet
}

// state is what Configure sets up.
type state struct {
	name string
	cfg  Config
}

// New returns a notify trigger that logs with sdk.Logger: the one
// `tidewatch trigger serve notify` serves.
func New() *Trigger { return NewWithLogger(sdk.Logger()) }

// NewWithLogger returns a notify trigger that logs to log.
func NewWithLogger(log *slog.Logger) *Trigger {
	return &Trigger{log: log, sent: newSentSet(maxRemembered)}
}

// Describe returns the trigger's type and options.
func (t *Trigger) Describe(context.Context) sdk.Description {
	return sdk.Description{
		Type:        "notify",
		Description: "sends each update (or batch) as a message to chat and push services through shoutrrr URLs (telegram, slack, discord, gotify, ntfy, matrix, …)",
		Options:     Options,
	}
}

// Configure parses and checks the options; no service is contacted.
func (t *Trigger) Configure(_ context.Context, name string, options map[string]string) error {
	cfg, err := ParseConfig(options)
	if err != nil {
		return err
	}
	names := make([]string, len(cfg.Targets))
	for i, tg := range cfg.Targets {
		names[i] = tg.Name
	}
	t.state.Store(&state{name: name, cfg: cfg})
	t.log.Debug("notify configured", "trigger", name, "services", strings.Join(names, ", "))
	return nil
}

// Fire sends one message per service carrying the updates (one, or a batch)
// and returns the result of each update. A service that an earlier attempt
// of the same update already reached is skipped; one that fails does not
// stop the others.
func (t *Trigger) Fire(ctx context.Context, updates []sdk.Update) []sdk.Result {
	st := t.state.Load()
	if st == nil {
		return sdk.All(len(updates), sdk.Fail(errors.New("notify: Fire before Configure")))
	}
	if len(updates) == 0 {
		return nil
	}
	targets := st.cfg.Targets
	outs := make([]sendOutcome, len(targets))
	earlier := make([][]bool, len(updates)) // [update][target]: taken by an earlier attempt
	for j := range earlier {
		earlier[j] = make([]bool, len(targets))
	}
	var wg sync.WaitGroup
	for i, tg := range targets {
		var pending []sdk.Update
		for j, u := range updates {
			if t.sent.has(u.Key, tg.Index) {
				earlier[j][i] = true
				continue
			}
			pending = append(pending, u)
		}
		if len(pending) == 0 {
			outs[i] = sendOutcome{skipped: true}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i] = t.sendTo(ctx, st, tg, pending)
		}()
	}
	wg.Wait()
	return t.results(st, updates, targets, outs, earlier)
}

// sendOutcome is what sending to one target did.
type sendOutcome struct {
	skipped bool  // every update had reached it before
	sent    int   // updates it carried
	err     error // nil when the service took the message
	render  bool  // err is a template error: permanent
}

// sendTo renders the message of pending for tg and sends it, remembering
// the updates it carried when the service takes it.
func (t *Trigger) sendTo(ctx context.Context, st *state, tg *Target, pending []sdk.Update) sendOutcome {
	title, body, err := render(st.name, st.cfg, pending)
	if err != nil {
		return sendOutcome{err: err, render: true}
	}
	sctx, cancel := context.WithTimeout(ctx, st.cfg.Timeout)
	defer cancel()
	start := time.Now()
	err = tg.send(sctx, title, body)
	if err != nil && ctx.Err() == nil && sctx.Err() != nil {
		err = fmt.Errorf("%s: no answer within %s (TIMEOUT)", tg.Name, st.cfg.Timeout)
	}
	t.log.Debug("notify sent", "trigger", st.name, "service", tg.Name, "updates", len(pending),
		"ok", err == nil, "duration_ms", time.Since(start).Milliseconds())
	if err != nil {
		return sendOutcome{sent: len(pending), err: err}
	}
	for _, u := range pending {
		t.sent.add(u.Key, tg.Index)
	}
	return sendOutcome{sent: len(pending)}
}

// render returns the title and body of a message carrying ups: the
// per-update templates for one update, the batch ones for several.
func render(name string, cfg Config, ups []sdk.Update) (title, body string, err error) {
	tt, bt, which := cfg.Title, cfg.Body, [2]string{OptTitle, OptBody}
	if len(ups) > 1 {
		tt, bt, which = cfg.BatchTitle, cfg.BatchBody, [2]string{OptBatchTitle, OptBatchBody}
	}
	m := sdk.NewMessage(name, ups)
	if title, err = tt.Render(m); err != nil {
		return "", "", fmt.Errorf("%s: %w", which[0], err)
	}
	if body, err = bt.Render(m); err != nil {
		return "", "", fmt.Errorf("%s: %w", which[1], err)
	}
	return strings.TrimSpace(title), strings.TrimSpace(body), nil
}

// results gives each update its result: delivered when every service has
// it (now or from an earlier attempt), else an error naming the services
// that failed, retryable unless only template errors stand in the way. Every
// result of the call carries the per-service outcomes of this attempt.
func (t *Trigger) results(st *state, updates []sdk.Update, targets []*Target, outs []sendOutcome, earlier [][]bool) []sdk.Result {
	var services []sdk.ServiceOutcome
	for i, o := range outs {
		if !o.skipped && !o.render {
			services = append(services, sdk.ServiceOutcome{Service: targets[i].Name, Failed: o.err != nil})
		}
	}
	res := make([]sdk.Result, len(updates))
	for j, u := range updates {
		var ok, before, failed []string
		var errs []error
		permanent := true
		for i, tg := range targets {
			o := outs[i]
			switch {
			case earlier[j][i]:
				before = append(before, tg.Name)
			case o.err == nil:
				ok = append(ok, tg.Name)
			default:
				failed = append(failed, tg.Name)
				errs = append(errs, o.err)
				permanent = permanent && o.render
			}
		}
		detail := summary(ok, before, failed)
		r := sdk.Result{Detail: detail, Services: services}
		if len(errs) > 0 {
			err := fmt.Errorf("%d of %d services failed: %w", len(failed), len(targets), errors.Join(errs...))
			if permanent {
				err = sdk.Permanent(err)
			}
			r.Err = err
			if j == 0 {
				t.log.Warn("notify: services failed", "trigger", st.name, "failed", strings.Join(failed, ", "), "key", u.Key)
			}
		}
		res[j] = r
	}
	return res
}

// summary is a result's detail: "sent to gotify#1, ntfy#3; telegram#2
// earlier; failed: slack#4".
func summary(ok, earlier, failed []string) string {
	var parts []string
	if len(ok) > 0 {
		parts = append(parts, "sent to "+strings.Join(ok, ", "))
	}
	if len(earlier) > 0 {
		parts = append(parts, "sent earlier to "+strings.Join(earlier, ", "))
	}
	if len(failed) > 0 {
		parts = append(parts, "failed: "+strings.Join(failed, ", "))
	}
	return strings.Join(parts, "; ")
}
