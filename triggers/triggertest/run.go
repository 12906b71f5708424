package triggertest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tidewatch/tidewatch/plugins/host"
	"github.com/tidewatch/tidewatch/plugins/sdk"
)

// Case is one trigger type's conformance test.
type Case struct {
	// Type is the trigger type, as given to Main.
	Type string
	// Options is a valid configuration, pointing at the test's own peer.
	Options map[string]string
	// SecretOptions are the options whose value is a secret (every option
	// the trigger declares Secret must be listed): the kit plants canary
	// values in them and checks that none appears in the plugin's logs, in
	// its errors or results, or in its description.
	SecretOptions []string
	// Bad are configurations that must fail, each naming its Option.
	Bad []BadOption
	// Deliver, when set, is called before a sample update is fired with
	// Options; the fire must succeed, and then the check it returned must
	// find that the peer received the update.
	Deliver func(t *testing.T) (check func(t *testing.T, u sdk.Update))
	// Retryable, when set, makes the peer fail in a way that must be
	// retried (a 503, say) until restore is called; the kit asserts the
	// trigger's result is a retryable error.
	Retryable func(t *testing.T) (restore func())
	// Permanent, when set, makes the peer fail for good (a 400, say) until
	// restore is called; the kit asserts the result is a permanent error.
	Permanent func(t *testing.T) (restore func())
	// Hang, when set, makes the peer hang until restore is called; the kit
	// fires with a 1s deadline, through the plugin process and also in
	// process (where nothing cuts the trigger off), and asserts each Fire
	// returns promptly with an error.
	Hang func(t *testing.T) (restore func())
}

// BadOption is a configuration that must be refused, naming Option.
type BadOption struct {
	// Options is the whole configuration given to Configure.
	Options map[string]string
	// Option is the option the error must name.
	Option string
}

// HangDeadline is the deadline the kit fires with when the peer hangs, and
// HangSlack how much later Fire may return.
const (
	HangDeadline = time.Second
	HangSlack    = 2 * time.Second
)

// unknownOption is an option no trigger declares.
const unknownOption = "TRIGGERTEST_NO_SUCH_OPTION"

var optionName = regexp.MustCompile(`^[A-Z][A-Z0-9_]*$`)

// Run runs the conformance checks on c.Type, each as a subtest with its own
// plugin process.
func Run(t *testing.T, c Case) {
	t.Helper()
	t.Run("options declared", func(t *testing.T) { checkDescription(t, c) })
	t.Run("valid configuration", func(t *testing.T) { Start(t, c.Type, c.Options) })
	t.Run("unknown option refused", func(t *testing.T) {
		opts := maps.Clone(c.Options)
		if opts == nil {
			opts = map[string]string{}
		}
		opts[unknownOption] = "x"
		checkRefused(t, c.Type, opts, unknownOption)
	})
	for _, bad := range c.Bad {
		t.Run("bad "+bad.Option, func(t *testing.T) { checkRefused(t, c.Type, bad.Options, bad.Option) })
	}
	t.Run("secrets never leak", func(t *testing.T) { checkSecrets(t, c) })
	if c.Deliver != nil {
		t.Run("delivers", func(t *testing.T) {
			check := c.Deliver(t)
			p, _ := Start(t, c.Type, c.Options)
			u := SampleUpdate("triggertest-deliver")
			if r := fire(t, p, 15*time.Second, u); r.Err != nil {
				t.Fatalf("Fire(%s) = %v, want success", u.Key, r.Err)
			}
			check(t, u)
		})
	}
	if c.Retryable != nil {
		t.Run("retryable failure", func(t *testing.T) { checkClass(t, c, c.Retryable, false) })
	}
	if c.Permanent != nil {
		t.Run("permanent failure", func(t *testing.T) { checkClass(t, c, c.Permanent, true) })
	}
	if c.Hang != nil {
		t.Run("context honoured", func(t *testing.T) { checkHang(t, c) })
	}
}

func fire(t *testing.T, p sdk.Trigger, timeout time.Duration, u sdk.Update) sdk.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	rs := p.Fire(ctx, []sdk.Update{u})
	if len(rs) != 1 {
		t.Fatalf("Fire(1 update) gave %d results", len(rs))
	}
	return rs[0]
}

func checkDescription(t *testing.T, c Case) {
	p, _ := StartUnconfigured(t, c.Type)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d, err := p.Description(ctx)
	if err != nil {
		t.Fatalf("Describe: %v", err)
	}
	if d.Type != c.Type || strings.TrimSpace(d.Description) == "" {
		t.Errorf("Describe() = type %q, description %q; want type %q and a description", d.Type, d.Description, c.Type)
	}
	declared := map[string]sdk.Option{}
	for _, o := range d.Options {
		if !optionName.MatchString(o.Name) {
			t.Errorf("option %q: want an upper-case name (A-Z, 0-9, _)", o.Name)
		}
		if _, dup := declared[o.Name]; dup {
			t.Errorf("option %s is declared twice", o.Name)
		}
		if strings.TrimSpace(o.Description) == "" {
			t.Errorf("option %s has no description", o.Name)
		}
		if o.Secret && !slices.Contains(c.SecretOptions, o.Name) {
			t.Errorf("option %s is secret but not in Case.SecretOptions: the kit plants no canary in it", o.Name)
		}
		declared[o.Name] = o
	}
	for name := range c.Options {
		if _, ok := declared[name]; !ok {
			t.Errorf("option %s of Case.Options is not declared", name)
		}
	}
	for _, name := range c.SecretOptions {
		if o, ok := declared[name]; !ok || !o.Secret {
			t.Errorf("option %s of Case.SecretOptions is not declared secret", name)
		}
	}
	for _, bad := range c.Bad {
		if _, ok := declared[bad.Option]; !ok {
			t.Errorf("option %s of Case.Bad is not declared", bad.Option)
		}
	}
}

// checkRefused checks that configuring typ with options fails naming option.
func checkRefused(t *testing.T, typ string, options map[string]string, option string) {
	t.Helper()
	p, _ := StartUnconfigured(t, typ)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := p.Configure(ctx, Instance, options)
	if err == nil {
		t.Errorf("Configure(%v) succeeded; want an error naming %s", redactedKeys(options), option)
		return
	}
	var named []string
	for _, e := range sdk.OptionErrors(err) {
		named = append(named, e.Option)
	}
	if !slices.Contains(named, option) {
		t.Errorf("Configure(%v) = %v; want an error naming %s (named: %q)", redactedKeys(options), err, option, named)
	}
}

// canaries returns a distinct canary value for each secret option.
func canaries(t *testing.T, names []string) map[string]string {
	out := map[string]string{}
	for _, name := range names {
		b := make([]byte, 8)
		if _, err := rand.Read(b); err != nil {
			t.Fatal(err)
		}
		out[name] = "twcanary" + hex.EncodeToString(b)
	}
	return out
}

func checkSecrets(t *testing.T, c Case) {
	if len(c.SecretOptions) == 0 {
		t.Skip("the trigger has no secret options")
	}
	canary := canaries(t, c.SecretOptions)
	leaks := func(where, text string) {
		t.Helper()
		for name, v := range canary {
			if strings.Contains(text, v) {
				t.Errorf("the canary planted in secret option %s appears in %s:\n%s", name, where, text)
			}
		}
	}

	p, logs := StartUnconfigured(t, c.Type)
	opts := maps.Clone(c.Options)
	if opts == nil {
		opts = map[string]string{}
	}
	maps.Copy(opts, canary)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.Configure(ctx, Instance, opts); err != nil {
		leaks("Configure's error", err.Error())
	}
	d, err := p.Description(ctx)
	if err != nil {
		t.Fatalf("Describe: %v", err)
	}
	leaks("Describe's output", fmt.Sprintf("%+v", d))
	r := fire(t, p, 15*time.Second, SampleUpdate("triggertest-secrets"))
	if r.Err != nil {
		leaks("Fire's error", r.Err.Error())
	}
	leaks("Fire's detail", r.Detail)

	// Bad configurations with canaries in their other secret options.
	for _, bad := range c.Bad {
		planted := false
		o := maps.Clone(bad.Options)
		for name, v := range canary {
			if _, ok := o[name]; ok && name != bad.Option {
				o[name], planted = v, true
			}
		}
		if planted {
			if err := p.Configure(ctx, Instance, o); err != nil {
				leaks("Configure's error for a bad "+bad.Option, err.Error())
			}
		}
	}
	p.Close() // waits for the process, and so for its last log lines
	leaks("the plugin's logs", logs.String())
}

func checkClass(t *testing.T, c Case, fail func(*testing.T) func(), permanent bool) {
	restore := fail(t)
	defer restore()
	p, _ := Start(t, c.Type, c.Options)
	r := fire(t, p, 15*time.Second, SampleUpdate("triggertest-class"))
	switch {
	case r.Err == nil:
		t.Fatalf("Fire succeeded; want a %s error", class(permanent))
	case errors.Is(r.Err, host.ErrExited) || errors.Is(r.Err, host.ErrCutOff):
		t.Fatalf("Fire = %v: the plugin crashed or overran; want a %s error from the trigger", r.Err, class(permanent))
	case sdk.IsPermanent(r.Err) != permanent:
		t.Errorf("Fire = %v, a %s error; want a %s one", r.Err, class(sdk.IsPermanent(r.Err)), class(permanent))
	}
}

func class(permanent bool) string {
	if permanent {
		return "permanent"
	}
	return "retryable"
}

func checkHang(t *testing.T, c Case) {
	restore := c.Hang(t)
	defer restore()

	p, _ := Start(t, c.Type, c.Options)
	begin := time.Now()
	r := fire(t, p, HangDeadline, SampleUpdate("triggertest-hang"))
	if took := time.Since(begin); took > HangDeadline+HangSlack {
		t.Errorf("through the plugin process, Fire with a %s deadline took %s", HangDeadline, took)
	}
	if r.Err == nil {
		t.Errorf("through the plugin process, Fire on a hanging peer succeeded; want an error")
	}

	// In process, nothing cuts the trigger off: it must stop by itself.
	tr := factories[c.Type]()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := tr.Configure(ctx, Instance, c.Options); err != nil {
		t.Fatalf("configuring in process: %v", err)
	}
	done := make(chan sdk.Result, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), HangDeadline)
		defer cancel()
		rs := tr.Fire(ctx, []sdk.Update{SampleUpdate("triggertest-hang-in-process")})
		if len(rs) != 1 {
			done <- sdk.Retry(fmt.Errorf("Fire(1 update) gave %d results", len(rs)))
			return
		}
		done <- rs[0]
	}()
	select {
	case r := <-done:
		if r.Err == nil {
			t.Errorf("in process, Fire on a hanging peer succeeded; want an error")
		}
	case <-time.After(HangDeadline + HangSlack):
		t.Errorf("in process, Fire on a hanging peer still runs %s after its %s deadline: it does not honour its context", HangSlack, HangDeadline)
	}
}
