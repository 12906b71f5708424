package host

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"log/slog"
	"slices"
	"strings"
	"sync"

	"github.com/hashicorp/go-hclog"
)

// levelTrace is hclog's Trace in slog terms.
const levelTrace = slog.LevelDebug - 4

// hclogger is the hclog.Logger that go-plugin is given: it writes to a
// slog.Logger that already carries plugin=<type> instance=<name>. go-plugin
// logs its own lines through the root logger, and each line of the plugin's
// stderr through a Named one, at the level of the line's JSON @level.
type hclogger struct {
	log   *slog.Logger
	min   slog.Level
	name  string
	named bool
	args  []any
}

var _ hclog.Logger = (*hclogger)(nil)

func newHCLogger(l *slog.Logger, min slog.Level) *hclogger {
	return &hclogger{log: l, min: min}
}

func toSlog(l hclog.Level) slog.Level {
	switch l {
	case hclog.Trace:
		return levelTrace
	case hclog.Debug:
		return slog.LevelDebug
	case hclog.Warn:
		return slog.LevelWarn
	case hclog.Error:
		return slog.LevelError
	default:
		return slog.LevelInfo
	}
}

func toHCLog(l slog.Level) hclog.Level {
	switch {
	case l < slog.LevelDebug:
		return hclog.Trace
	case l < slog.LevelInfo:
		return hclog.Debug
	case l < slog.LevelWarn:
		return hclog.Info
	case l < slog.LevelError:
		return hclog.Warn
	default:
		return hclog.Error
	}
}

func (h *hclogger) enabled(l slog.Level) bool {
	return l >= h.min && h.log.Enabled(context.Background(), l)
}

// Log writes msg and its key/value pairs to slog. The plugin's own
// timestamp (added by go-plugin) is dropped: slog has the time. Keys that
// would hide the plugin's identity are renamed: go-plugin's "plugin" (the
// executable's path) becomes "path", a plugin's own "plugin" or "instance"
// gets a "plugin_" prefix.
func (h *hclogger) Log(level hclog.Level, msg string, args ...any) {
	if level == hclog.Off {
		return
	}
	l := toSlog(level)
	if !h.named && l == slog.LevelInfo {
		// go-plugin's own notes (process started, exited) are for debugging;
		// what matters reaches the log as the host's own warnings and errors.
		l = slog.LevelDebug
	}
	if !h.enabled(l) {
		return
	}
	all := append(append([]any(nil), h.args...), args...)
	attrs := make([]slog.Attr, 0, len(all)/2+1)
	for i := 0; i < len(all); i += 2 {
		key := fmt.Sprint(all[i])
		if i+1 == len(all) {
			attrs = append(attrs, slog.Any("extra_value", all[i]))
			break
		}
		v := all[i+1]
		switch {
		case key == "timestamp" && h.named:
			continue
		case key == "plugin" && !h.named:
			key = "path"
		case key == "plugin" || key == "instance":
			key = "plugin_" + key
		}
		if err, ok := v.(error); ok {
			v = err.Error()
		}
		attrs = append(attrs, slog.Any(key, v))
	}
	h.log.LogAttrs(context.Background(), l, msg, attrs...)
}

func (h *hclogger) Trace(msg string, args ...any) { h.Log(hclog.Trace, msg, args...) }
func (h *hclogger) Debug(msg string, args ...any) { h.Log(hclog.Debug, msg, args...) }
func (h *hclogger) Info(msg string, args ...any)  { h.Log(hclog.Info, msg, args...) }
func (h *hclogger) Warn(msg string, args ...any)  { h.Log(hclog.Warn, msg, args...) }
func (h *hclogger) Error(msg string, args ...any) { h.Log(hclog.Error, msg, args...) }
func (h *hclogger) IsTrace() bool                 { return h.enabled(levelTrace) }
func (h *hclogger) IsDebug() bool                 { return h.enabled(slog.LevelDebug) }
func (h *hclogger) IsInfo() bool                  { return h.enabled(slog.LevelInfo) }
func (h *hclogger) IsWarn() bool                  { return h.enabled(slog.LevelWarn) }
func (h *hclogger) IsError() bool                 { return h.enabled(slog.LevelError) }
func (h *hclogger) ImpliedArgs() []any            { return h.args }
func (h *hclogger) Name() string                  { return h.name }
func (h *hclogger) SetLevel(l hclog.Level)        { h.min = toSlog(l) }
func (h *hclogger) GetLevel() hclog.Level         { return toHCLog(h.min) }

func (h *hclogger) With(args ...any) hclog.Logger {
	c := *h
	c.args = append(append([]any(nil), h.args...), args...)
	return &c
}

// Named returns the logger go-plugin writes the plugin's stderr lines to.
func (h *hclogger) Named(name string) hclog.Logger {
	c := *h
	c.named = true
	if h.name != "" {
		name = h.name + "." + name
	}
	c.name = name
	return &c
}

func (h *hclogger) ResetNamed(name string) hclog.Logger {
	c := *h
	c.name, c.named = name, true
	return &c
}

func (h *hclogger) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(h.StandardWriter(opts), "", 0)
}

func (h *hclogger) StandardWriter(*hclog.StandardLoggerOptions) io.Writer {
	return &lineWriter{line: func(b []byte) { h.Info(string(b)) }}
}

// lineWriter calls line for each complete line written to it; what is left
// without a newline is kept for the next Write, or given out by Flush.
type lineWriter struct {
	mu   sync.Mutex
	buf  []byte
	line func([]byte)
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		if l := bytes.TrimRight(w.buf[:i], "\r"); len(l) > 0 {
			w.line(l)
		}
		w.buf = w.buf[i+1:]
	}
	if len(w.buf) > 64<<10 {
		w.line(w.buf)
		w.buf = nil
	}
	return len(p), nil
}

// Flush gives out what is left without a newline.
func (w *lineWriter) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.line(w.buf)
		w.buf = nil
	}
}

// logLine logs one line a plugin wrote after go-plugin took over its
// os.Stderr (or os.Stdout): lines of the JSON shape sdk.Logger writes
// (@level, @message) at their level, anything else at def, the way go-plugin
// treats the lines of the process's own stderr.
func logLine(h hclog.Logger, def hclog.Level, line []byte) {
	var raw map[string]any
	if err := json.Unmarshal(line, &raw); err != nil {
		h.Log(def, strings.TrimSpace(string(line)))
		return
	}
	msg, _ := raw["@message"].(string)
	lvl, _ := raw["@level"].(string)
	level := hclog.LevelFromString(lvl)
	if level == hclog.NoLevel {
		h.Log(def, string(line))
		return
	}
	delete(raw, "@message")
	delete(raw, "@level")
	delete(raw, "@timestamp")
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	args := make([]any, 0, 2*len(keys))
	for _, k := range keys {
		args = append(args, k, raw[k])
	}
	h.Log(level, msg, args...)
}
