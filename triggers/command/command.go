package command

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tidewatch/tidewatch/plugins/sdk"
)

var _ sdk.Trigger = (*Trigger)(nil)

// ExitTempFail is the exit code (EX_TEMPFAIL, sysexits.h) by which a program
// says "failed for now, try again later".
const ExitTempFail = 75

// Output limits: what a run's output may put in the log and in an error.
const (
	maxLineBytes = 1024 // a longer line is cut, ending with "…"
	maxLogLines  = 200  // lines logged per run; the rest are counted, not logged
	tailLines    = 5    // last lines quoted in an error
	tailLineLen  = 200  // of each, at most this many bytes
)

// waitDelay is how long Wait waits for the output pipes after the program
// exited or was killed (a child it left behind may hold them open).
const waitDelay = 2 * time.Second

// Trigger runs a program for each update (or batch). Configure it once;
// Fire is safe for concurrent use.
type Trigger struct {
	log   *slog.Logger
	state atomic.Pointer[state]
}

type state struct {
	name string
	cfg  Config
	base []string // the environment every run starts from
}

// New returns a command trigger that logs with sdk.Logger: the one
// `tidewatch trigger serve command` serves.
func New() *Trigger { return NewWithLogger(sdk.Logger()) }

// NewWithLogger returns a command trigger that logs to log, the program's
// output included.
func NewWithLogger(log *slog.Logger) *Trigger { return &Trigger{log: log} }

// Describe returns the trigger's type and options.
func (t *Trigger) Describe(context.Context) sdk.Description {
	return sdk.Description{
		Type:        "command",
		Description: "runs a program with the update in TIDEWATCH_* environment variables and as JSON on stdin; exit 0 is success, 75 retry",
		Options:     Options,
	}
}

// Configure parses options and checks the program can be found.
func (t *Trigger) Configure(_ context.Context, name string, options map[string]string) error {
	cfg, err := ParseConfig(options)
	if err != nil {
		return err
	}
	t.state.Store(&state{name: name, cfg: cfg, base: baseEnv(os.Environ())})
	return nil
}

// Fire runs the program once for all updates and returns its result for each.
func (t *Trigger) Fire(ctx context.Context, updates []sdk.Update) []sdk.Result {
	st := t.state.Load()
	if st == nil {
		return sdk.All(len(updates), sdk.Fail(errors.New("command: Fire before Configure")))
	}
	if len(updates) == 0 {
		return nil
	}
	return sdk.All(len(updates), t.run(ctx, st, updates))
}

func (t *Trigger) run(ctx context.Context, st *state, updates []sdk.Update) sdk.Result {
	cfg := st.cfg
	stdin, err := json.Marshal(sdk.NewPayload(st.name, updates))
	if err != nil {
		return sdk.Fail(fmt.Errorf("encoding the payload: %w", err))
	}
	rctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()

	cmd := exec.CommandContext(rctx, cfg.Path, cfg.Args...)
	cmd.Dir = cfg.Dir
	cmd.Env = append(append(append([]string(nil), st.base...), cfg.Env...), Env(st.name, updates)...)
	cmd.Stdin = bytes.NewReader(stdin)
	out := &output{log: t.log.With("trigger", st.name, "program", cfg.Path)}
	stdout, stderr := out.stream("stdout"), out.stream("stderr")
	cmd.Stdout, cmd.Stderr = stdout, stderr
	setProcessGroup(cmd)
	cmd.WaitDelay = waitDelay

	start := time.Now()
	err = cmd.Run()
	stdout.flush()
	stderr.flush()
	out.done()
	took := time.Since(start)
	t.log.Debug("command ran", "trigger", st.name, "program", cfg.Path, "key", sdk.Key(updates),
		"duration_ms", took.Milliseconds(), "error", err)

	name := cfg.Path
	switch {
	case err == nil:
		return sdk.OK("exit 0")
	case ctx.Err() != nil:
		return sdk.Retry(fmt.Errorf("%s: cut off and killed: %w%s", name, ctx.Err(), out.tail()))
	case rctx.Err() != nil:
		return sdk.Retry(fmt.Errorf("%s: killed after %s (TIMEOUT)%s", name, cfg.Timeout, out.tail()))
	}
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		if errors.Is(err, exec.ErrWaitDelay) {
			// The program exited 0, but something it started kept its output open.
			return sdk.OK("exit 0 (output left open by a child process)")
		}
		// It did not start (removed, replaced, out of resources): maybe later.
		return sdk.Retry(fmt.Errorf("%s: starting: %w", name, err))
	}
	code := exit.ExitCode()
	switch {
	case code == ExitTempFail:
		return sdk.Retry(fmt.Errorf("%s: exit %d (temporary failure)%s", name, code, out.tail()))
	case code < 0:
		return sdk.Fail(fmt.Errorf("%s: %v%s", name, exit.ProcessState, out.tail()))
	default:
		return sdk.Fail(fmt.Errorf("%s: exit %d%s", name, code, out.tail()))
	}
}

// Env returns the TIDEWATCH_* variables a run gets for updates sent by the
// trigger instance name: the message's idempotency key and count, and the
// first update's fields (the only one's, unless batched).
func Env(name string, updates []sdk.Update) []string {
	var u sdk.Update
	if len(updates) > 0 {
		u = updates[0]
	}
	detected := ""
	if !u.DetectedAt.IsZero() {
		detected = u.DetectedAt.UTC().Format(time.RFC3339)
	}
	vars := []struct{ name, value string }{
		{"TIDEWATCH_TRIGGER", name},
		{"TIDEWATCH_KEY", sdk.Key(updates)},
		{"TIDEWATCH_COUNT", strconv.Itoa(len(updates))},
		{"TIDEWATCH_EVENT", u.Event},
		{"TIDEWATCH_HOST", u.Host},
		{"TIDEWATCH_CONTAINER", u.Container},
		{"TIDEWATCH_CONTAINER_ID", u.ContainerID},
		{"TIDEWATCH_IMAGE", u.Image},
		{"TIDEWATCH_CURRENT", u.Current},
		{"TIDEWATCH_CURRENT_DIGEST", u.CurrentDigest},
		{"TIDEWATCH_CANDIDATE", u.Candidate},
		{"TIDEWATCH_CANDIDATE_DIGEST", u.CandidateDigest},
		{"TIDEWATCH_KIND", u.Kind},
		{"TIDEWATCH_LINK", u.Link},
		{"TIDEWATCH_DETECTED_AT", detected},
		{"TIDEWATCH_DETAIL", u.Detail},
	}
	env := make([]string, len(vars))
	for i, v := range vars {
		env[i] = v.name + "=" + strings.ReplaceAll(v.value, "\x00", "")
	}
	return env
}

// passed are the variables of the plugin's own environment a program gets;
// nothing else of it (go-plugin's handshake variables included) is passed.
var passed = []string{"PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR"}

// baseEnv picks the passed variables from environ, with DefaultPath when
// there is no PATH.
func baseEnv(environ []string) []string {
	have := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			have[k] = v
		}
	}
	if have["PATH"] == "" {
		have["PATH"] = DefaultPath
	}
	var env []string
	for _, k := range passed {
		if v, ok := have[k]; ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// output logs a run's output line by line and keeps its last lines.
type output struct {
	log *slog.Logger

	mu      sync.Mutex
	logged  int
	dropped int
	last    []string
}

// stream returns the writer for one of the program's output streams.
func (o *output) stream(name string) *lineWriter { return &lineWriter{o: o, stream: name} }

func (o *output) line(stream, line string) {
	if len(line) > maxLineBytes {
		line = strings.ToValidUTF8(line[:maxLineBytes], "") + "…"
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.logged < maxLogLines {
		o.logged++
		o.log.Info(line, "stream", stream)
	} else {
		o.dropped++
	}
	if len(line) > tailLineLen {
		line = strings.ToValidUTF8(line[:tailLineLen], "") + "…"
	}
	o.last = append(o.last, line)
	if len(o.last) > tailLines {
		o.last = o.last[1:]
	}
}

// done logs how many lines were not logged.
func (o *output) done() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.dropped > 0 {
		o.log.Warn("program output cut", "lines_not_logged", o.dropped, "lines_logged", o.logged)
	}
}

// tail is ": last output: a | b" for errors, or "" when there was none.
func (o *output) tail() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.last) == 0 {
		return ""
	}
	return "; last output: " + strings.Join(o.last, " | ")
}

// lineWriter splits one stream into lines for output.
type lineWriter struct {
	o      *output
	stream string
	buf    []byte
	skip   bool // the rest of a line already logged, cut, is being dropped
}

// Write logs each complete line; of a line longer than maxLineBytes, the
// first maxLineBytes are logged, ending with "…", and the rest dropped.
// exec.Cmd calls Write from one goroutine per stream.
func (w *lineWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		chunk := p
		if i >= 0 {
			chunk = p[:i]
		}
		if !w.skip {
			w.buf = append(w.buf, chunk...)
		}
		switch {
		case i >= 0:
			if !w.skip {
				w.o.line(w.stream, strings.TrimRight(string(w.buf), "\r"))
			}
			w.buf, w.skip = w.buf[:0], false
			p = p[i+1:]
		default:
			if !w.skip && len(w.buf) > maxLineBytes {
				w.o.line(w.stream, string(w.buf))
				w.buf, w.skip = w.buf[:0], true
			}
			p = nil
		}
	}
	return n, nil
}

// flush logs what is left after the last newline.
func (w *lineWriter) flush() {
	if len(w.buf) > 0 {
		w.o.line(w.stream, strings.TrimRight(string(w.buf), "\r"))
		w.buf = nil
	}
}
