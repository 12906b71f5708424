package command

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/tidewatch/tidewatch/plugins/sdk"
)

// Option names.
const (
	OptCommand = "COMMAND"
	OptArgs    = "ARGS"
	OptTimeout = "TIMEOUT"
	OptEnv     = "ENV"
	OptDir     = "DIR"
)

// DefaultPath is the search path for COMMAND, and the program's PATH, when
// the plugin's environment has no PATH.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Options are the command trigger's options.
var Options = []sdk.Option{
	{Name: OptCommand, Required: true, Description: "the program to run: an absolute path, or a name looked up on the plugin's PATH (no shell)"},
	{Name: OptArgs, Description: `its arguments as a JSON array of strings, e.g. ["--channel", "ops"] (no shell: no quoting, globbing or $VARS)`},
	{Name: OptTimeout, Default: "30s", Description: "the longest a run may take, a Go duration; then the program and its process group are killed and the delivery retried"},
	{Name: OptEnv, Secret: true, Description: "extra environment variables as NAME=VALUE pairs separated by commas (or by newlines, when a value holds a comma); names may not start with TIDEWATCH_ (secret: it often holds tokens)"},
	{Name: OptDir, Description: "the working directory; default the plugin's"},
}

// Config is a command trigger's parsed configuration.
type Config struct {
	// Path is the program, resolved to a path when given as a name.
	Path string
	// Args are its arguments, without the program's name.
	Args []string
	// Timeout bounds one run; default 30s.
	Timeout time.Duration
	// Env are extra NAME=VALUE variables.
	Env []string
	// Dir is the working directory; "" for the plugin's.
	Dir string
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// ParseConfig parses a Configure call's options, reporting every problem at
// once, each naming its option. ENV's values never appear in errors.
func ParseConfig(options map[string]string) (Config, error) {
	o := sdk.NewOptions(options, Options)
	var c Config

	if name := strings.TrimSpace(o.String(OptCommand)); name != "" {
		p, err := lookPath(name, searchPath())
		if err != nil {
			o.Add(OptCommand, "%v", err)
		}
		c.Path = p
	}

	if raw := strings.TrimSpace(o.String(OptArgs)); raw != "" {
		if err := json.Unmarshal([]byte(raw), &c.Args); err != nil {
			o.Add(OptArgs, "not a JSON array of strings, like [\"--flag\", \"value\"]: %v", err)
		}
		for i, a := range c.Args {
			if strings.ContainsRune(a, 0) {
				o.Add(OptArgs, "argument %d holds a NUL byte", i+1)
			}
		}
	}

	c.Timeout = o.Duration(OptTimeout)
	env, problems := parseEnv(o.String(OptEnv))
	for _, p := range problems {
		o.Add(OptEnv, "%s", p)
	}
	c.Env = env

	if dir := strings.TrimSpace(o.String(OptDir)); dir != "" {
		fi, err := os.Stat(dir)
		switch {
		case err != nil:
			o.Add(OptDir, "%v", err)
		case !fi.IsDir():
			o.Add(OptDir, "%s is not a directory", dir)
		default:
			c.Dir = dir
		}
	}
	return c, o.Err()
}

// searchPath is the plugin's PATH, or DefaultPath when it has none.
func searchPath() string {
	if p := os.Getenv("PATH"); p != "" {
		return p
	}
	return DefaultPath
}

// lookPath resolves name: an absolute path must be an executable file; a
// bare name is looked up in the directories of path.
func lookPath(name, path string) (string, error) {
	if filepath.IsAbs(name) {
		return name, executable(name)
	}
	if strings.ContainsRune(name, filepath.Separator) {
		return "", fmt.Errorf("%s is a relative path; expected an absolute path or a name on PATH", name)
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" || !filepath.IsAbs(dir) {
			continue // never run something from the working directory by accident
		}
		p := filepath.Join(dir, name)
		if executable(p) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found on PATH (%s)", name, path)
}

func executable(p string) error {
	fi, err := os.Stat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%s does not exist", p)
	case err != nil:
		return err
	case fi.IsDir():
		return fmt.Errorf("%s is a directory", p)
	case fi.Mode()&0o111 == 0:
		return fmt.Errorf("%s is not executable", p)
	}
	return nil
}

// parseEnv parses ENV: NAME=VALUE entries separated by newlines when the
// text has one, else by commas. Problems never show values (ENV is secret).
func parseEnv(s string) ([]string, []string) {
	var env, problems []string
	for _, p := range sdk.Pairs(s) {
		i, name, value := p.Index-1, p.Name, p.Value
		switch {
		case !p.OK:
			problems = append(problems, fmt.Sprintf("entry %d is not NAME=VALUE", i+1))
		case !envName.MatchString(name):
			problems = append(problems, fmt.Sprintf("entry %d: the name is not valid; expected letters, digits and _", i+1))
		case strings.HasPrefix(strings.ToUpper(name), "TIDEWATCH_"):
			problems = append(problems, fmt.Sprintf("entry %d: %s: names starting with TIDEWATCH_ are the trigger's own", i+1, name))
		case strings.ContainsRune(value, 0):
			problems = append(problems, fmt.Sprintf("entry %d (%s): the value holds a NUL byte", i+1, name))
		default:
			env = append(env, name+"="+value)
		}
	}
	return env, problems
}
