package sdk

import (
	"io"
	"log/slog"
	"os"
)

// hclogTime is the timestamp layout go-plugin parses in a plugin's log lines.
const hclogTime = "2006-01-02T15:04:05.000000Z07:00"

// Logger returns a logger for a plugin: JSON lines on stderr in the shape
// go-plugin reads (@level, @message, @timestamp), so that tidewatch shows
// them in its own log at their level, with the plugin's name. Debug lines
// are written; tidewatch's log level decides whether they show.
func Logger() *slog.Logger { return NewLogger(stderr) }

// stderr is the process's standard error as it was before Serve: go-plugin
// later swaps os.Stderr for a stream that can lose its last lines when the
// process is stopped, and reorder them.
var stderr = os.Stderr

// NewLogger is Logger writing to w, for tests.
func NewLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{
		Level: slog.LevelDebug,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) > 0 {
				return a
			}
			switch a.Key {
			case slog.TimeKey:
				return slog.String("@timestamp", a.Value.Time().Format(hclogTime))
			case slog.LevelKey:
				return slog.String("@level", levelName(a.Value.Any()))
			case slog.MessageKey:
				return slog.String("@message", a.Value.String())
			}
			return a
		},
	}))
}

func levelName(v any) string {
	l, _ := v.(slog.Level)
	switch {
	case l < slog.LevelInfo:
		return "debug"
	case l < slog.LevelWarn:
		return "info"
	case l < slog.LevelError:
		return "warn"
	default:
		return "error"
	}
}
