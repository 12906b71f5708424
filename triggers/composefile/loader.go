package composefile

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/compose-spec/compose-go/v2/dotenv"
	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/template"
	"github.com/compose-spec/compose-go/v2/types"
)

// This file holds the second proof of a rewrite: compose's own loader
// (compose-go, which the compose CLI and compose's library use) loads the
// project before and after, and the two projects must be equal but for the
// image of the service (and of the services that share its value).

// processEnv is the process's environment, which compose lets win over the
// env file; a variable for tests.
var processEnv = os.Environ

// environment returns the variables compose interpolates with: the
// process's, then those of the env file envBytes (nil: none) that the
// process does not set, read by compose's own dotenv parser.
func environment(envBytes []byte) (map[string]string, error) {
	env := map[string]string{}
	for _, kv := range processEnv() {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	if envBytes == nil {
		return env, nil
	}
	vars, err := dotenv.ParseWithLookup(bytes.NewReader(envBytes), func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	})
	if err != nil {
		return nil, fmt.Errorf("compose's parser rejects the env file: %w", err)
	}
	for k, v := range vars {
		if _, set := env[k]; !set {
			env[k] = v
		}
	}
	return env, nil
}

// substitute interpolates an image value as compose does, from env.
func substitute(value string, env map[string]string) (string, error) {
	return template.Substitute(value, func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	})
}

// load loads the project with compose's loader from its files' bytes (those
// in over replace the file on disk), the env file's bytes envBytes, and the
// variables set (which win over both).
func (t *Target) load(over map[string][]byte, envBytes []byte, set map[string]string) (*types.Project, error) {
	env, err := environment(envBytes)
	if err != nil {
		return nil, err
	}
	for k, v := range set {
		env[k] = v
	}
	details := types.ConfigDetails{WorkingDir: t.WorkingDir, Environment: env}
	for _, f := range t.Files {
		b, ok := over[f]
		if !ok {
			if b, err = os.ReadFile(f); err != nil {
				return nil, fmt.Errorf("reading compose file: %w", err)
			}
		}
		details.ConfigFiles = append(details.ConfigFiles, types.ConfigFile{Filename: f, Content: b})
	}
	name := t.Project
	if name == "" {
		name = "tidewatch-check"
	}
	p, err := loader.LoadWithContext(context.Background(), details, func(o *loader.Options) {
		o.SetProjectName(name, true)
	})
	if err != nil {
		return nil, fmt.Errorf("compose's loader rejects the project: %w", err)
	}
	return p, nil
}

// verifyWithCompose loads the project before and after c with compose's
// loader and checks that the only difference is the image of the service
// and of those sharing its value, which must be c.NewImage. When c rewrites
// the variable the tag reads (in the env file), the project after must be
// the project before with that variable set to the new tag (other uses of
// it in the service follow it), and no other service may change: only this
// one is recreated.
func (t *Target) verifyWithCompose(c *Change) error {
	before, err := t.load(nil, t.env, nil)
	if err != nil {
		return fmt.Errorf("before the rewrite: %w", err)
	}
	over, envBytes := map[string][]byte{}, t.env
	viaVar := c.Path == t.envPath
	if viaVar {
		envBytes = c.New
	} else {
		over[c.Path] = c.New
	}
	after, err := t.load(over, envBytes, nil)
	if err != nil {
		return fmt.Errorf("after the rewrite: %w", err)
	}
	changed := append([]string{t.Service}, t.Shared...)
	for _, s := range changed {
		a, ok := after.Services[s]
		if !ok {
			return fmt.Errorf("compose's loader finds no service %q after the rewrite", s)
		}
		if a.Image != c.NewImage {
			return fmt.Errorf("compose's loader reads the image of %q as %q after the rewrite, want %q (is the variable set in tidewatch's environment, which wins over the env file?)", s, a.Image, c.NewImage)
		}
	}
	want := before
	if viaVar {
		// The project as it would be with the variable alone set anew.
		if want, err = t.load(nil, t.env, map[string]string{t.Var.Name: c.varValue}); err != nil {
			return fmt.Errorf("with %s set anew: %w", t.Var.Name, err)
		}
		for n, b := range before.Services {
			if slices.Contains(changed, n) {
				continue
			}
			if !sameJSON(b, after.Services[n]) {
				return fmt.Errorf("compose's loader sees service %s change too (it reads %s), which a rollout of %s does not recreate", n, t.Var.Name, t.Service)
			}
		}
	} else {
		for _, s := range changed {
			if b, ok := want.Services[s]; ok {
				b.Image = after.Services[s].Image
				want.Services[s] = b
			}
		}
	}
	if !sameJSON(want, after) {
		return fmt.Errorf("compose's loader sees more than the image of %s change: %s differs", strings.Join(changed, ", "), firstDifference(want, after))
	}
	return nil
}

// sameJSON says whether a and b encode alike.
func sameJSON(a, b any) bool {
	aj, aerr := json.Marshal(a)
	bj, berr := json.Marshal(b)
	return aerr == nil && berr == nil && bytes.Equal(aj, bj)
}

// firstDifference names what differs between two projects, for the error.
func firstDifference(before, after *types.Project) string {
	names := slices.Sorted(func(yield func(string) bool) {
		seen := map[string]bool{}
		for _, p := range []*types.Project{before, after} {
			for n := range p.Services {
				if !seen[n] {
					seen[n] = true
					if !yield(n) {
						return
					}
				}
			}
		}
	})
	for _, n := range names {
		b, _ := json.Marshal(before.Services[n])
		a, _ := json.Marshal(after.Services[n])
		if !bytes.Equal(a, b) {
			return "service " + n
		}
	}
	return "the project's networks, volumes, secrets, configs or models"
}
