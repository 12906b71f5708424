package config

import (
	"errors"
	"net"
	"path/filepath"
	"strconv"
	"strings"
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
)

// Watcher options, as they end a TIDEWATCH_WATCHER_<name>_<option> variable.
var watcherOptions = []string{"SOCKET", "HOST", "PORT", "CAFILE", "CERTFILE", "KEYFILE", "CRON", "WATCHBYDEFAULT", "WATCHALL"}

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
}

// newWatcher returns a watcher named name holding the defaults that do not
// depend on other options.
func newWatcher(name string) Watcher {
	return Watcher{Name: name, WatchByDefault: true}
}

// SetDefaults fills the options left empty: the socket when no host is set,
// the port when one is, and the schedule. WatchByDefault is not touched,
// since false is a value a user sets; Load starts from true.
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
	case "WATCHBYDEFAULT", "WATCHALL":
		b, ok := parseBool(value)
		if !ok {
			es.add(variable, value, "not a boolean", "true or false")
			return
		}
		if option == "WATCHALL" {
			w.WatchAll = b
		} else {
			w.WatchByDefault = b
		}
	}
}
