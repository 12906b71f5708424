package host

import (
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// Prefix is how the executable of a custom trigger is named in the plugins
// folder: tidewatch-trigger-<type>.
const Prefix = "tidewatch-trigger-"

// typePattern is what a trigger type may be: lower-case letters and digits.
var typePattern = regexp.MustCompile(`^[a-z0-9]+$`)

// Spec says how to start one plugin executable.
type Spec struct {
	// Type is the trigger type, lower case: "webhook", "ntfy".
	Type string
	// Path is the executable.
	Path string
	// Args are its arguments; built-ins re-execute tidewatch with
	// Path=os.Executable() and Args={"trigger", "serve", "<type>"}.
	Args []string
	// Env is the plugin's whole environment: tidewatch's own is never passed
	// on (go-plugin's SkipHostEnv), and so neither are its secrets. nil is an
	// empty environment (plus go-plugin's handshake variables).
	Env []string
	// SHA256 is an optional hex checksum pin of Path, from PinVariable(Type):
	// a binary whose checksum differs is refused.
	SHA256 string
	// Builtin is true for tidewatch's own triggers.
	Builtin bool
}

// PinVariable is the variable that pins the checksum of a plugin of type typ:
// TIDEWATCH_PLUGIN_<TYPE>_SHA256.
func PinVariable(typ string) string {
	return "TIDEWATCH_PLUGIN_" + strings.ToUpper(typ) + "_SHA256"
}

// validate reports what is wrong with s, naming the pin's variable.
func (s Spec) validate() error {
	if !typePattern.MatchString(s.Type) {
		return fmt.Errorf("plugin type %q: expected lower-case letters and digits", s.Type)
	}
	if s.Path == "" {
		return fmt.Errorf("plugin %s: no executable path", s.Type)
	}
	if s.SHA256 != "" {
		b, err := hex.DecodeString(strings.TrimSpace(s.SHA256))
		if err != nil || len(b) != 32 {
			return fmt.Errorf("%s: %q is not a SHA-256 checksum; expected 64 hex digits (sha256sum %s)", PinVariable(s.Type), s.SHA256, s.Path)
		}
	}
	return nil
}

// Builtins returns Specs that serve the built-in trigger types by
// re-executing self (os.Executable()) as `self trigger serve <type>`.
func Builtins(self string, types ...string) []Spec {
	specs := make([]Spec, 0, len(types))
	for _, typ := range types {
		specs = append(specs, Spec{Type: typ, Path: self, Args: []string{"trigger", "serve", typ}, Builtin: true})
	}
	return specs
}

// Discover returns a Spec, sorted by type, for each executable named
// tidewatch-trigger-<type> in dir, with <type> of lower-case letters and
// digits; symbolic links are followed. Anything else is ignored (Host.Discover
// logs what, at debug level). An empty dir means no plugins folder: no Specs.
//
// tidewatch runs what it finds there, so who may write there matters: a
// folder, or a plugin (the file a link leads to, and the folder holding it),
// that is group- or world-writable, or owned by another user than
// tidewatch's or root, is refused, with an error naming it (joined; the
// plugins that pass are returned beside it). A dir that cannot be read is an
// error naming it.
func Discover(dir string) ([]Spec, error) {
	return discover(dir, slog.New(slog.DiscardHandler))
}

// Discover is the package's Discover, logging the files it ignores at debug level.
func (h *Host) Discover(dir string) ([]Spec, error) {
	return discover(dir, h.log)
}

func discover(dir string, log *slog.Logger) ([]Spec, error) {
	if dir == "" {
		return nil, nil
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("reading plugins folder %s: %w", dir, err)
	}
	entries, err := os.ReadDir(abs)
	if err != nil {
		return nil, fmt.Errorf("reading plugins folder %s: %w", dir, err)
	}
	if err := trusted(abs); err != nil {
		return nil, fmt.Errorf("plugins folder %s: %w", abs, err)
	}
	var (
		specs   []Spec
		refused []error
	)
	for _, e := range entries {
		path := filepath.Join(abs, e.Name())
		typ, ok := strings.CutPrefix(e.Name(), Prefix)
		if !ok || !typePattern.MatchString(typ) {
			log.Debug("ignoring file in plugins folder: not named "+Prefix+"<type> with <type> of a-z and 0-9", "path", path)
			continue
		}
		fi, err := os.Stat(path)
		switch {
		case err != nil:
			log.Debug("ignoring file in plugins folder", "path", path, "error", err)
			continue
		case !fi.Mode().IsRegular():
			log.Debug("ignoring file in plugins folder: not a regular file", "path", path)
			continue
		case fi.Mode().Perm()&0o111 == 0:
			log.Debug("ignoring file in plugins folder: not executable", "path", path)
			continue
		}
		if err := trustedFile(path); err != nil {
			refused = append(refused, fmt.Errorf("plugin %s refused: %w", path, err))
			continue
		}
		specs = append(specs, Spec{Type: typ, Path: path})
	}
	sort.Slice(specs, func(i, j int) bool { return specs[i].Type < specs[j].Type })
	return specs, errors.Join(refused...)
}

// trustedFile checks a plugin: the file a link leads to, and its folder.
func trustedFile(path string) error {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return err
	}
	if err := trusted(real); err != nil {
		return err
	}
	if real != path {
		if err := trusted(filepath.Dir(real)); err != nil {
			return fmt.Errorf("its folder %s: %w", filepath.Dir(real), err)
		}
	}
	return nil
}
