package config

import (
	"errors"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Defaults of a watcher.
const (
	// DefaultSocket is the Docker engine's local unix socket.
	DefaultSocket = "/var/run/docker.sock"
	// DefaultPort is the engine's plain TCP port; DefaultTLSPort the one with TLS.
	DefaultPort    = 2375
	DefaultTLSPort = 2376
	// DefaultCron runs a watch at the start of every hour.
	DefaultCron = "0 * * * *"
	// DefaultWatcher is the name of the watcher used when none is configured.
	DefaultWatcher = "local"
	// DefaultJitter is the most a scheduled run is delayed at random, so
	// that many instances do not ask a registry at the same second.
	DefaultJitter = time.Minute
	// MaxJitter bounds JITTER.
	MaxJitter = 24 * time.Hour
)

// Watcher options, as they end a TIDEWATCH_WATCHER_<name>_<option> variable.
var watcherOptions = []string{"SOCKET", "HOST", "PORT", "CAFILE", "CERTFILE", "KEYFILE", "CRON", "JITTER", "WATCHBYDEFAULT", "WATCHALL", "WATCHEVENTS", "SWARM"}

// Watcher is one Docker host to watch, configured by the variables
// TIDEWATCH_WATCHER_<name>_<option>.
type Watcher struct {
	// Name is the lower-cased <name>.
	Name string
	// Socket is the engine's unix socket path (SOCKET), used when Host is
	// empty; default DefaultSocket.
	Socket string
	// Host is the hostname or IP address of a remote engine reached over
	// TCP (HOST), without scheme or port.
	Host string
	// Port is the remote engine's TCP port (PORT); default 2375, or 2376
	// when TLS files are set. Zero for a socket.
	Port int
	// CAFile, CertFile and KeyFile are PEM files for TLS to a remote engine
	// (CAFILE, CERTFILE, KEYFILE). CAFile verifies the engine; CertFile and
	// KeyFile, set together, authenticate us.
	CAFile, CertFile, KeyFile string
	// Cron is when watch runs happen (CRON): five fields ("0 * * * *") or a
	// descriptor ("@hourly", "@every 30m"); default DefaultCron.
	Cron string
	// WatchByDefault watches containers without a tidewatch.watch label
	// (WATCHBYDEFAULT); default true. A container labelled
	// tidewatch.watch=false is never watched, one labelled true always.
	WatchByDefault bool
	// WatchAll also watches stopped and exited containers (WATCHALL); default false.
	WatchAll bool
	// Jitter is the most each scheduled run is delayed at random (JITTER: a
	// Go duration like "30s", or a number of milliseconds as What's Up Docker
	// reads it); default DefaultJitter, 0 for none, at most MaxJitter.
	Jitter time.Duration
	// WatchEvents follows the engine's events (WATCHEVENTS): a container is
	// checked within seconds of starting, and a full run reconciles after the
	// engine comes back; default true. With false, only the schedule runs checks.
	WatchEvents bool
	// NoServices leaves Swarm services unwatched (SWARM=false). Default
	// false: on a swarm manager every service is watched like a container,
	// in place of its task containers.
	NoServices bool
}

// newWatcher returns a watcher named name holding the defaults that do not
// depend on other options.
func newWatcher(name string) Watcher {
	return Watcher{Name: name, WatchByDefault: true, WatchEvents: true, Jitter: DefaultJitter}
}

// SetDefaults fills the options left empty: the socket when no host is set,
// the port when one is, and the schedule. WatchByDefault, WatchEvents and
// Jitter are not touched, since false and 0 are values a user sets; Load
// starts from true, true and DefaultJitter.
func (w *Watcher) SetDefaults() {
	if w.Host == "" && w.Socket == "" {
		w.Socket = DefaultSocket
	}
	if w.Host != "" && w.Port == 0 {
		w.Port = DefaultPort
		if w.TLS() {
			w.Port = DefaultTLSPort
		}
	}
	if w.Cron == "" {
		w.Cron = DefaultCron
	}
}

// TLS reports whether the watcher talks TLS to its engine.
func (w Watcher) TLS() bool { return w.CAFile != "" || w.CertFile != "" || w.KeyFile != "" }

// DockerHost returns the engine address in DOCKER_HOST form:
// "unix:///var/run/docker.sock" or "tcp://host:port".
func (w Watcher) DockerHost() string {
	if w.Host != "" {
		return "tcp://" + net.JoinHostPort(w.Host, strconv.Itoa(w.Port))
	}
	return "unix://" + w.Socket
}

// variable returns the name of the variable that sets option.
func (w Watcher) variable(option string) string {
	return "TIDEWATCH_WATCHER_" + strings.ToUpper(w.Name) + "_" + option
}

// Validate reports every problem with the watcher, each naming its variable.
// It expects SetDefaults to have run, and checks that TLS files are readable.
func (w Watcher) Validate() error { return w.validate(unset) }

// validate is Validate, told which variables were set even if their values
// were rejected, so that one mistake is not reported twice.
func (w Watcher) validate(set func(variable string) bool) error {
	var es errs
	if !validName(w.Name) {
		es.add("TIDEWATCH_WATCHER_"+strings.ToUpper(w.Name)+"_*", "", "invalid watcher name", "letters and digits, in parts joined by single underscores")
	}
	switch {
	case w.Host != "" && w.Socket != "":
		es.add(w.variable("SOCKET"), w.Socket, "set together with "+w.variable("HOST"), "only one of them: SOCKET for a local engine, HOST for a remote one")
	case w.Host == "" && w.Socket == "":
		es.add(w.variable("SOCKET"), "", "neither SOCKET nor HOST is set", "a unix socket path or a remote host")
	case w.Socket != "" && !filepath.IsAbs(w.Socket):
		es.add(w.variable("SOCKET"), w.Socket, "not an absolute path", "a unix socket path like "+DefaultSocket)
	}
	if w.Host != "" && !validHost(w.Host) {
		es.add(w.variable("HOST"), w.Host, "not a hostname or IP address", "a bare host like docker.example.com or 10.0.0.5, without scheme or port (set the port with "+w.variable("PORT")+")")
	}
	if w.Host == "" {
		if w.Port != 0 || set(w.variable("PORT")) {
			port := ""
			if w.Port != 0 {
				port = strconv.Itoa(w.Port)
			}
			es.add(w.variable("PORT"), port, "set without "+w.variable("HOST"), "a HOST for the remote engine too")
		}
		for _, f := range []struct{ opt, path string }{{"CAFILE", w.CAFile}, {"CERTFILE", w.CertFile}, {"KEYFILE", w.KeyFile}} {
			if f.path != "" {
				es.add(w.variable(f.opt), f.path, "set without "+w.variable("HOST"), "TLS files only with a remote HOST")
			}
		}
	} else if w.Port < 1 || w.Port > 65535 {
		es.add(w.variable("PORT"), strconv.Itoa(w.Port), "not a port number", "an integer from 1 to 65535")
	}
	for _, f := range []struct{ opt, path string }{{"CAFILE", w.CAFile}, {"CERTFILE", w.CertFile}, {"KEYFILE", w.KeyFile}} {
		if f.path == "" {
			continue
		}
		if p := checkReadableFile(f.path); p != "" {
			es.add(w.variable(f.opt), f.path, p, "a readable PEM file")
		}
	}
	if w.CertFile != "" && w.KeyFile == "" {
		es.add(w.variable("CERTFILE"), w.CertFile, "set without "+w.variable("KEYFILE"), "CERTFILE and KEYFILE together")
	}
	if w.KeyFile != "" && w.CertFile == "" {
		es.add(w.variable("KEYFILE"), w.KeyFile, "set without "+w.variable("CERTFILE"), "CERTFILE and KEYFILE together")
	}
	if p, want := validateCron(w.Cron); p != "" {
		es.add(w.variable("CRON"), w.Cron, p, want)
	}
	if w.Jitter < 0 || w.Jitter > MaxJitter {
		es.add(w.variable("JITTER"), w.Jitter.String(), "out of range", jitterExpected)
	}
	return errors.Join(es...)
}

// set applies one option's raw value; it records a problem in es.
func (w *Watcher) set(es *errs, variable, option, value string) {
	switch option {
	case "SOCKET":
		w.Socket = value
	case "HOST":
		w.Host = strings.TrimSuffix(strings.TrimPrefix(value, "["), "]") // "[::1]" → "::1"
	case "PORT":
		p, ok := parsePort(value)
		if !ok {
			es.add(variable, value, "not a port number", "an integer from 1 to 65535")
			return
		}
		w.Port = p
	case "CAFILE":
		w.CAFile = value
	case "CERTFILE":
		w.CertFile = value
	case "KEYFILE":
		w.KeyFile = value
	case "CRON":
		w.Cron = value
	case "JITTER":
		d, ok := parseJitter(value)
		if !ok {
			es.add(variable, value, "not a jitter", jitterExpected)
			return
		}
		w.Jitter = d
	case "WATCHBYDEFAULT", "WATCHALL", "WATCHEVENTS", "SWARM":
		b, ok := parseBool(value)
		if !ok {
			es.add(variable, value, "not a boolean", "true or false")
			return
		}
		switch option {
		case "WATCHALL":
			w.WatchAll = b
		case "WATCHEVENTS":
			w.WatchEvents = b
		case "SWARM":
			w.NoServices = !b
		default:
			w.WatchByDefault = b
		}
	}
}

// jitterExpected says what JITTER takes.
const jitterExpected = `a duration from 0 to 24h like "30s" or "2m", or a number of milliseconds like 60000; 0 for none`

// parseJitter reads JITTER: a Go duration ("30s", "0") or, as What's Up
// Docker reads it, a whole number of milliseconds ("60000").
func parseJitter(s string) (time.Duration, bool) {
	s = strings.TrimSpace(s)
	var d time.Duration
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		if ms < 0 || ms > MaxJitter.Milliseconds() {
			return 0, false
		}
		d = time.Duration(ms) * time.Millisecond
	} else if d, err = time.ParseDuration(s); err != nil {
		return 0, false
	}
	return d, d >= 0 && d <= MaxJitter
}
