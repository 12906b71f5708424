package config

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"

	"github.com/tidewatch/tidewatch/core"
)

// Trigger is one trigger instance, TIDEWATCH_TRIGGER_<type>_<name>_<option>.
// <type> and <name> are letters and digits (no underscore), lower-cased, so
// that the option, which may hold underscores (ACCOUNT_SID), is the rest.
type Trigger struct {
	// Type is the trigger type: a built-in (webhook, email, sms, command,
	// compose, …) or a plugin found as tidewatch-trigger-<type> in the plugins folder.
	Type string
	// Name is the instance name.
	Name string
	// Policy holds the common options (core.TriggerOptions: THRESHOLD, MODE,
	// AUTO, ONCE, INCLUDE, EXCLUDE, EVENTS, RETRIES, DEADLINE, CONCURRENCY,
	// LABELS), parsed; unset ones have their defaults.
	Policy core.TriggerPolicy
	// Options are the trigger's own options, by upper-case name, as set
	// (an OPTION_FILE is kept under that name; see ResolveOptions). Every value
	// is held as a Secret, since only the plugin knows which are secret.
	Options map[string]core.Secret
	// Vars maps each option (common or own) to the variable that set it.
	Vars map[string]string
}

// ID returns "type.name", the trigger's name in logs, the store and labels.
func (t Trigger) ID() string { return t.Type + "." + t.Name }

// Var returns the variable name of option, set or not.
func (t Trigger) Var(option string) string {
	if v, ok := t.Vars[option]; ok {
		return v
	}
	return "TIDEWATCH_TRIGGER_" + strings.ToUpper(t.Type) + "_" + strings.ToUpper(t.Name) + "_" + option
}

func newTrigger(typ, name string) *Trigger {
	return &Trigger{Type: typ, Name: name, Policy: core.DefaultTriggerPolicy(), Options: map[string]core.Secret{}, Vars: map[string]string{}}
}

var optionName = regexp.MustCompile(`^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$`)

// set applies one variable, whose option is opt (upper case).
func (t *Trigger) set(es *errs, variable, opt, value string) {
	t.Vars[opt] = variable
	if core.IsTriggerOption(opt) {
		if err := t.Policy.Set(opt, value); err != nil {
			var ve *core.OptionValueError
			if errors.As(err, &ve) {
				es.add(variable, value, ve.Problem, ve.Expected)
			} else {
				es.add(variable, value, err.Error(), "")
			}
		}
		return
	}
	if !optionName.MatchString(opt) {
		es.add(variable, "", "invalid option name "+quote(opt), "upper-case letters, digits and single underscores")
		return
	}
	t.Options[opt] = core.Secret(value)
}

// Plugins configures where custom triggers come from.
type Plugins struct {
	// Dir is TIDEWATCH_PLUGINS_DIR: the folder holding tidewatch-trigger-<type>
	// executables; "" for none.
	Dir string
	// Pins are TIDEWATCH_PLUGIN_<type>_SHA256: the hex SHA-256 each plugin
	// binary must have, by type; a binary whose checksum differs is refused.
	Pins map[string]string
	// PinVars maps each pinned type to the variable that pinned it.
	PinVars map[string]string
}

var sha256Hex = regexp.MustCompile(`^[0-9a-f]{64}$`)

// loadTrigger handles one TIDEWATCH_TRIGGER_ variable.
func loadTrigger(es *errs, triggers map[string]*Trigger, key, upper, value string, claim func(field, variable string) bool) {
	rest := upper[len("TIDEWATCH_TRIGGER_"):]
	parts := strings.SplitN(rest, "_", 3)
	if len(parts) < 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		es.add(key, "", "unknown variable", "TIDEWATCH_TRIGGER_<type>_<name>_<option>, with <type> and <name> letters and digits")
		return
	}
	typ, name, opt := strings.ToLower(parts[0]), strings.ToLower(parts[1]), parts[2]
	if !alnum(typ) || !alnum(name) {
		es.add(key, "", "invalid trigger type or name", "TIDEWATCH_TRIGGER_<type>_<name>_<option>, with <type> and <name> letters and digits")
		return
	}
	if !claim("TIDEWATCH_TRIGGER_"+strings.ToUpper(typ)+"_"+strings.ToUpper(name)+"_"+opt, key) {
		return
	}
	id := typ + "." + name
	t := triggers[id]
	if t == nil {
		t = newTrigger(typ, name)
		triggers[id] = t
	}
	t.set(es, key, opt, value)
}

// loadPlugins handles TIDEWATCH_PLUGINS_DIR and TIDEWATCH_PLUGIN_<type>_SHA256.
func loadPlugins(es *errs, p *Plugins, key, upper, value string) {
	if upper == "TIDEWATCH_PLUGINS_DIR" {
		fi, err := os.Stat(value)
		switch {
		case err != nil:
			es.add(key, value, "cannot read folder ("+pathErrCause(err)+")", "a folder holding tidewatch-trigger-<type> executables")
		case !fi.IsDir():
			es.add(key, value, "not a folder", "a folder holding tidewatch-trigger-<type> executables")
		}
		p.Dir = value
		return
	}
	typ, ok := strings.CutSuffix(upper[len("TIDEWATCH_PLUGIN_"):], "_SHA256")
	typ = strings.ToLower(typ)
	if !ok || !alnum(typ) {
		es.add(key, "", "unknown variable", "TIDEWATCH_PLUGIN_<type>_SHA256 or TIDEWATCH_PLUGINS_DIR")
		return
	}
	sum := strings.ToLower(strings.TrimSpace(strings.TrimPrefix(value, "sha256:")))
	if !sha256Hex.MatchString(sum) {
		es.add(key, value, "not a SHA-256 checksum", "64 hexadecimal digits, as sha256sum prints")
		return
	}
	if p.Pins == nil {
		p.Pins, p.PinVars = map[string]string{}, map[string]string{}
	}
	p.Pins[typ], p.PinVars[typ] = sum, key
}

func alnum(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

func sortTriggers(m map[string]*Trigger) []Trigger {
	var out []Trigger
	for _, t := range m {
		out = append(out, *t)
	}
	slices.SortFunc(out, func(a, b Trigger) int { return cmp.Or(cmp.Compare(a.Type, b.Type), cmp.Compare(a.Name, b.Name)) })
	return out
}

// ResolveOptions turns a trigger's own options into what its plugin is
// configured with, given the options the plugin declares (name → secret):
// OPTION_FILE of a declared secret OPTION is read from its file; an option the
// plugin does not declare is an error naming its variable; so is setting both
// OPTION and OPTION_FILE, and a file that cannot be read (its contents are
// never shown). With errors, the options that were fine are still returned,
// so that the plugin can check them too.
func ResolveOptions(t Trigger, declared map[string]bool) (map[string]string, error) {
	var es errs
	out := map[string]string{}
	names := make([]string, 0, len(t.Options))
	for n := range t.Options {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		v := t.Options[n].Reveal()
		if base, ok := strings.CutSuffix(n, "_FILE"); ok {
			if secret, known := declared[base]; known && secret {
				if _, both := t.Options[base]; both {
					es.add(t.Var(n), "", "set together with "+t.Var(base), "only one of them")
					continue
				}
				s, problem := readSecretFile(v)
				if problem != "" {
					es.add(t.Var(n), v, problem, "a readable file holding the secret")
					continue
				}
				out[base] = s
				continue
			}
		}
		if _, known := declared[n]; !known {
			es.add(t.Var(n), "", "unknown option of trigger type "+t.Type, fmt.Sprintf("one of its options (see tidewatch plugins) or %s", strings.Join(core.TriggerOptions, ", ")))
			continue
		}
		out[n] = v
	}
	if len(es) > 0 {
		return out, errors.Join(es...)
	}
	return out, nil
}
