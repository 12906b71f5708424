package config

import (
	"cmp"
	"errors"
	"log/slog"
	"slices"
	"strings"

	"github.com/tidewatch/tidewatch/core"
)

// Prefix starts every variable tidewatch reads.
const Prefix = "TIDEWATCH_"

// DefaultStorePath is where the store keeps its database when
// TIDEWATCH_STORE_PATH is not set.
const DefaultStorePath = "./data"

// Config is tidewatch's whole configuration, as read from the environment.
type Config struct {
	// Watchers are the Docker hosts to watch, sorted by name. With none
	// configured, one named "local" watches the local socket.
	Watchers []Watcher
	// Registries are the configured registries, sorted by type then name.
	Registries []Registry
	// Store says where state is kept.
	Store Store
	// Log says how tidewatch logs.
	Log Log
	// Triggers are the configured trigger instances, sorted by type then name.
	Triggers []Trigger
	// Plugins says where custom triggers come from.
	Plugins Plugins
	// Server configures the HTTP API and UI of `tidewatch serve` (TIDEWATCH_SERVER_*).
	Server Server
	// Git are the git sources and work trees (TIDEWATCH_GIT_<name>_*), sorted by name.
	Git []Git
}

// Store configures persistence.
type Store struct {
	// Path is the folder holding the database (TIDEWATCH_STORE_PATH); default DefaultStorePath.
	Path string
}

// SetDefaults fills an empty Path.
func (s *Store) SetDefaults() {
	if s.Path == "" {
		s.Path = DefaultStorePath
	}
}

// Validate reports a problem with the store configuration.
func (s Store) Validate() error {
	if strings.ContainsRune(s.Path, 0) {
		return &VarError{Var: "TIDEWATCH_STORE_PATH", Problem: "contains a NUL byte", Expected: "a folder path"}
	}
	return nil
}

// Log configures logging.
type Log struct {
	// Level is the lowest level logged (TIDEWATCH_LOG_LEVEL: debug, info,
	// warn or error); default info.
	Level slog.Level
	// Format is "text" or "json" (TIDEWATCH_LOG_FORMAT); default "text".
	Format string
}

// SetDefaults fills an empty Format; the zero Level is already info.
func (l *Log) SetDefaults() {
	if l.Format == "" {
		l.Format = "text"
	}
}

// Validate reports a problem with the log configuration.
func (l Log) Validate() error {
	if l.Format != "text" && l.Format != "json" {
		return &VarError{Var: "TIDEWATCH_LOG_FORMAT", Value: l.Format, Problem: "unknown format", Expected: "text or json"}
	}
	return nil
}

// SetDefaults fills every part's defaults, and adds the "local" watcher
// when no watcher is configured.
func (c *Config) SetDefaults() {
	if len(c.Watchers) == 0 {
		c.Watchers = []Watcher{newWatcher(DefaultWatcher)}
	}
	for i := range c.Watchers {
		c.Watchers[i].SetDefaults()
	}
	for i := range c.Registries {
		c.Registries[i].SetDefaults()
	}
	for i := range c.Git {
		c.Git[i].SetDefaults()
	}
	c.Store.SetDefaults()
	c.Log.SetDefaults()
	c.Server.SetDefaults()
}

// Validate reports every problem of every part at once.
func (c Config) Validate() error { return c.validate(unset) }

// unset is the validate argument when no variable is known to be set.
func unset(string) bool { return false }

// validate is Validate, told which variables were set even if their values
// were rejected, so that one mistake is not reported twice.
func (c Config) validate(set func(variable string) bool) error {
	var es []error
	seen := map[string]bool{}
	watchers := map[string]bool{}
	for _, w := range c.Watchers {
		watchers[w.Name] = true
		if seen[w.Name] {
			es = append(es, &VarError{Var: "TIDEWATCH_WATCHER_" + strings.ToUpper(w.Name) + "_*", Problem: "watcher configured twice", Expected: "one watcher per name"})
		}
		seen[w.Name] = true
		es = append(es, w.validate(set))
	}
	seen = map[string]bool{}
	for _, r := range c.Registries {
		key := r.Type + "_" + r.Name
		if seen[key] {
			es = append(es, &VarError{Var: "TIDEWATCH_REGISTRY_" + strings.ToUpper(key) + "_*", Problem: "registry configured twice", Expected: "one registry per type and name"})
		}
		seen[key] = true
		es = append(es, r.validate(set))
	}
	for _, t := range c.Triggers {
		for _, w := range t.Policy.Watchers {
			if !watchers[w] {
				es = append(es, &VarError{Var: t.Var(core.OptionWatcher), Value: strings.Join(t.Policy.Watchers, ","),
					Problem: "no watcher " + quote(w), Expected: "the names of configured watchers: " + strings.Join(watcherNames(c.Watchers), ", ")})
			}
		}
	}
	es = append(es, c.Store.Validate(), c.Log.Validate(), c.Server.validate(set))
	es = append(es, validateGit(c.Git, set))
	return errors.Join(es...)
}

func watcherNames(ws []Watcher) []string {
	out := make([]string, len(ws))
	for i, w := range ws {
		out[i] = w.Name
	}
	return out
}

// Variables of later features, which this version ignores so that setting
// them does not break it.
var (
	ignoredPrefixes = []string{"TIDEWATCH_TEST"}
	ignoredNames    = []string{}
)

// topLevel lists what may follow the prefix, for unknown-variable errors.
var topLevel = []string{
	"TIDEWATCH_STORE_PATH", "TIDEWATCH_LOG_LEVEL", "TIDEWATCH_LOG_FORMAT",
	"TIDEWATCH_WATCHER_<name>_<option>", "TIDEWATCH_REGISTRY_<type>_<name>_<option>",
	"TIDEWATCH_TRIGGER_<type>_<name>_<option>", "TIDEWATCH_PLUGINS_DIR", "TIDEWATCH_PLUGIN_<type>_SHA256",
}

// families are the first words after the prefix, for "did you mean" hints.
var families = []string{"STORE", "LOG", "WATCHER", "REGISTRY", "TRIGGER", "SERVER", "PLUGINS", "PLUGIN", "GIT"}

// Load reads the configuration from environ (as os.Environ returns it),
// applies defaults and validates it. It reports every problem at once, joined
// with errors.Join; each is a *VarError naming its variable. Variables are
// matched case-insensitively; a variable set to the empty string counts as
// unset. TIDEWATCH_TEST* variables are ignored; any other unknown
// TIDEWATCH_ variable is an error.
func Load(environ []string) (Config, error) {
	l := &loader{
		watchers: map[string]*Watcher{}, registries: map[string]*Registry{}, triggers: map[string]*Trigger{}, setBy: map[string]string{},
	}
	for _, e := range entriesOf(environ) {
		l.apply(e)
	}
	return l.config()
}

// entry is one TIDEWATCH_ variable: its name as set, upper-cased, and its value.
type entry struct{ key, upper, value string }

// entriesOf returns the TIDEWATCH_ variables of environ that are set,
// sorted, so that errors come in a stable order whatever the environment's.
func entriesOf(environ []string) []entry {
	var entries []entry
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || v == "" {
			continue
		}
		up := strings.ToUpper(k)
		if !strings.HasPrefix(up, Prefix) {
			continue
		}
		entries = append(entries, entry{k, up, v})
	}
	slices.SortFunc(entries, func(a, b entry) int { return cmp.Or(cmp.Compare(a.upper, b.upper), cmp.Compare(a.key, b.key)) })
	return entries
}

// loader is Load's state: the configuration as it is read, and the errors.
type loader struct {
	cfg        Config
	es         errs
	watchers   map[string]*Watcher
	registries map[string]*Registry
	triggers   map[string]*Trigger
	setBy      map[string]string // canonical variable → the variable that set it
}

// claim records that variable sets the field of the canonical variable
// (upper-cased, aliases and _FILE variants folded), and reports a variable
// that sets a field another one already set.
func (l *loader) claim(field, variable string) bool {
	if prev, ok := l.setBy[field]; ok {
		l.es.add(variable, "", "set together with "+prev, "only one of them")
		return false
	}
	l.setBy[field] = variable
	return true
}

// apply reads one variable into the configuration, by its family.
func (l *loader) apply(e entry) {
	switch {
	case ignored(e.upper):
	case e.upper == "TIDEWATCH_STORE_PATH":
		if l.claim(e.upper, e.key) {
			l.cfg.Store.Path = e.value
		}
	case e.upper == "TIDEWATCH_LOG_LEVEL" || e.upper == "TIDEWATCH_LOG_FORMAT":
		if l.claim(e.upper, e.key) {
			l.log(e)
		}
	case strings.HasPrefix(e.upper, "TIDEWATCH_WATCHER_"):
		l.watcher(e)
	case strings.HasPrefix(e.upper, "TIDEWATCH_REGISTRY_"):
		l.registry(e)
	case strings.HasPrefix(e.upper, "TIDEWATCH_TRIGGER_"):
		loadTrigger(&l.es, l.triggers, e.key, e.upper, e.value, l.claim)
	case strings.HasPrefix(e.upper, "TIDEWATCH_SERVER_"):
		opt := e.upper[len("TIDEWATCH_SERVER_"):]
		slot, ok := serverSlot(opt)
		if !ok {
			l.es.add(e.key, "", "unknown variable", "TIDEWATCH_SERVER_<option> with <option> one of "+strings.Join(serverOptions, ", ")+serverHint(opt))
			return
		}
		if l.claim("TIDEWATCH_SERVER_"+slot, e.key) {
			loadServer(&l.es, &l.cfg.Server, e.key, opt, e.value)
		}
	case strings.HasPrefix(e.upper, "TIDEWATCH_GIT_"):
		loadGit(&l.es, &l.cfg.Git, e.key, e.upper, e.value, l.claim)
	case e.upper == "TIDEWATCH_PLUGINS_DIR" || strings.HasPrefix(e.upper, "TIDEWATCH_PLUGIN_"):
		if l.claim(e.upper, e.key) {
			loadPlugins(&l.es, &l.cfg.Plugins, e.key, e.upper, e.value)
		}
	default:
		l.es.add(e.key, "", "unknown variable", unknownExpected(e.upper))
	}
}

// log reads TIDEWATCH_LOG_LEVEL and TIDEWATCH_LOG_FORMAT.
func (l *loader) log(e entry) {
	if e.upper == "TIDEWATCH_LOG_LEVEL" {
		lvl, ok := parseLevel(e.value)
		if !ok {
			l.es.add(e.key, e.value, "unknown log level", "debug, info, warn or error")
		}
		l.cfg.Log.Level = lvl
		return
	}
	f := strings.ToLower(e.value)
	if f != "text" && f != "json" {
		l.es.add(e.key, e.value, "unknown log format", "text or json")
		f = ""
	}
	l.cfg.Log.Format = f
}

// watcher reads a TIDEWATCH_WATCHER_<name>_<option> variable.
func (l *loader) watcher(e entry) {
	rest := e.upper[len("TIDEWATCH_WATCHER_"):]
	name, opt, ok := splitOption(rest, watcherOptions)
	if !ok {
		l.es.add(e.key, "", "unknown variable", "TIDEWATCH_WATCHER_<name>_<option> with <option> one of "+strings.Join(watcherOptions, ", ")+hint("TIDEWATCH_WATCHER_", rest, watcherOptions))
		return
	}
	name = strings.ToLower(name)
	if !validName(name) {
		l.es.add(e.key, "", "invalid watcher name "+quote(name), "letters and digits, in parts joined by single underscores")
		return
	}
	if !l.claim("TIDEWATCH_WATCHER_"+strings.ToUpper(name)+"_"+opt, e.key) {
		return
	}
	w := l.watchers[name]
	if w == nil {
		nw := newWatcher(name)
		w = &nw
		l.watchers[name] = w
	}
	w.set(&l.es, e.key, opt, e.value)
}

// registry reads a TIDEWATCH_REGISTRY_<type>_<name>_<option> variable.
func (l *loader) registry(e entry) {
	rest := e.upper[len("TIDEWATCH_REGISTRY_"):]
	typ, rest, _ := strings.Cut(rest, "_")
	typ = strings.ToLower(typ)
	if !knownRegistryType(typ) {
		l.es.add(e.key, "", "unknown registry type "+quote(typ), "TIDEWATCH_REGISTRY_<type>_<name>_<option> with <type> one of "+strings.Join(RegistryTypes, ", "))
		return
	}
	name, opt, ok := splitOption(rest, registryOptions)
	if !ok {
		prefix := "TIDEWATCH_REGISTRY_" + strings.ToUpper(typ) + "_"
		l.es.add(e.key, "", "unknown variable", prefix+"<name>_<option> with <option> one of "+strings.Join(registryOptions, ", ")+hint(prefix, rest, registryOptions))
		return
	}
	name = strings.ToLower(name)
	if !validName(name) {
		l.es.add(e.key, "", "invalid registry name "+quote(name), "letters and digits, in parts joined by single underscores")
		return
	}
	if !l.claim("TIDEWATCH_REGISTRY_"+strings.ToUpper(typ)+"_"+strings.ToUpper(name)+"_"+registrySlot(opt), e.key) {
		return
	}
	key := typ + "/" + name
	r := l.registries[key]
	if r == nil {
		r = &Registry{Type: typ, Name: name}
		l.registries[key] = r
	}
	r.set(&l.es, e.key, opt, e.value)
}

// config returns what was read, sorted, with defaults, and every error.
func (l *loader) config() (Config, error) {
	cfg := l.cfg
	cfg.Triggers = sortTriggers(l.triggers)
	for _, w := range l.watchers {
		cfg.Watchers = append(cfg.Watchers, *w)
	}
	slices.SortFunc(cfg.Watchers, func(a, b Watcher) int { return cmp.Compare(a.Name, b.Name) })
	for _, r := range l.registries {
		cfg.Registries = append(cfg.Registries, *r)
	}
	slices.SortFunc(cfg.Registries, func(a, b Registry) int {
		return cmp.Or(cmp.Compare(a.Type, b.Type), cmp.Compare(a.Name, b.Name))
	})
	cfg.SetDefaults()
	// A value that did not parse is left at its default; validate is told
	// it was set, so that it does not report the variable a second time.
	es := append(l.es, cfg.validate(func(v string) bool { _, ok := l.setBy[v]; return ok }))
	return cfg, errors.Join(es...)
}

func ignored(upper string) bool {
	for _, p := range ignoredPrefixes {
		if strings.HasPrefix(upper, p) {
			return true
		}
	}
	return slices.Contains(ignoredNames, upper)
}

func parseLevel(s string) (slog.Level, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "debug":
		return slog.LevelDebug, true
	case "info":
		return slog.LevelInfo, true
	case "warn", "warning":
		return slog.LevelWarn, true
	case "error":
		return slog.LevelError, true
	}
	return slog.LevelInfo, false
}

// splitOption splits "<name>_<option>" at the longest known option that ends
// rest and leaves a non-empty name: "MY_HOST_SOCKET" → "MY_HOST", "SOCKET".
func splitOption(rest string, options []string) (name, option string, ok bool) {
	for _, o := range options {
		if len(o) > len(option) && len(rest) > len(o)+1 && strings.HasSuffix(rest, "_"+o) {
			option = o
		}
	}
	if option == "" {
		return "", "", false
	}
	return rest[:len(rest)-len(option)-1], option, true
}

// hint suggests the variable a mistyped option meant: for rest
// "LOCAL_SOCKT" it returns "; did you mean TIDEWATCH_WATCHER_LOCAL_SOCKET?".
func hint(prefix, rest string, options []string) string {
	best, bestDist := "", 3
	parts := strings.Split(rest, "_")
	for _, o := range options {
		n := strings.Count(o, "_") + 1
		if len(parts) <= n || len(o) < 4 {
			continue
		}
		tail := strings.Join(parts[len(parts)-n:], "_")
		if d := distance(tail, o); d < bestDist {
			best, bestDist = strings.Join(parts[:len(parts)-n], "_")+"_"+o, d
		}
	}
	if best == "" {
		return ""
	}
	return "; did you mean " + prefix + best + "?"
}

// unknownExpected lists the variables that could have been meant by an
// unknown one, by its first word: the options of that family when the word is
// known, else every family, with a suggestion for a near miss.
func unknownExpected(upper string) string {
	rest := upper[len(Prefix):]
	word, tail, _ := strings.Cut(rest, "_")
	switch word {
	case "STORE":
		return "one of TIDEWATCH_STORE_PATH"
	case "LOG":
		return "one of TIDEWATCH_LOG_LEVEL, TIDEWATCH_LOG_FORMAT"
	}
	s := "one of " + strings.Join(topLevel, ", ")
	for _, f := range families {
		if d := distance(word, f); f != word && tail != "" && (d == 1 || d == 2 && len(f) >= 6) {
			return s + "; did you mean " + Prefix + f + "_" + tail + "?"
		}
	}
	return s
}
