// Package arch keeps the dependency rules of DESIGN.md true by reading the
// import graph: core imports nothing of ours outside core; only core/docker
// and its subpackages (core/docker/composeup: compose's own library) import
// the Docker SDK, the docker CLI's packages and compose; only registries
// imports go-containerregistry's remote; the plugin SDK imports nothing of
// ours but its protocol; a built-in trigger imports only the SDK (and, when
// it deploys, the Docker adapter and the domain types it speaks), never
// another trigger; web does not read tidewatch's configuration (cmd hands it
// a web.Config).
package arch

import (
	"bufio"
	"bytes"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/tidewatch/tidewatch"

func TestImportRules(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	rules := []struct {
		name    string
		applies func(pkg string) bool
		forbids func(imp string) bool
	}{
		{
			name:    "core imports nothing of ours outside core",
			applies: func(p string) bool { return under(p, module+"/core") },
			forbids: func(i string) bool { return under(i, module) && !under(i, module+"/core") },
		},
		{
			name:    "only core/docker and its subpackages import the Docker SDK, the docker CLI and compose",
			applies: func(p string) bool { return !under(p, module+"/core/docker") && !under(p, module+"/test") },
			forbids: func(i string) bool {
				return under(i, "github.com/docker/docker") || under(i, "github.com/moby/moby") ||
					under(i, "github.com/docker/cli") || under(i, "github.com/docker/compose")
			},
		},
		{
			name:    "what triggers share imports no trigger",
			applies: func(p string) bool { return strings.HasPrefix(p, module+"/triggers/") && !builtinTrigger(p) },
			forbids: builtinTrigger,
		},
		{
			name:    "plugins/sdk imports nothing of ours but the protocol",
			applies: func(p string) bool { return p == module+"/plugins/sdk" },
			forbids: func(i string) bool { return under(i, module) && i != module+"/plugins/internal/proto" },
		},
		{
			name:    "a built-in trigger imports the SDK, the Docker adapter and core only, and no sibling trigger",
			applies: builtinTrigger,
			forbids: func(i string) bool {
				if !under(i, module) {
					return false
				}
				switch {
				case i == module+"/plugins/sdk", i == module+"/core", under(i, module+"/core/docker"):
					return false
				}
				for _, shared := range sharedByTriggers {
					if under(i, module+"/triggers/"+shared) {
						return false
					}
				}
				return true
			},
		},
		{
			name:    "web does not import core/config",
			applies: func(p string) bool { return under(p, module+"/web") },
			forbids: func(i string) bool { return under(i, module+"/core/config") },
		},
		{
			name: "only registries imports go-containerregistry's remote",
			applies: func(p string) bool {
				return p != module+"/registries" && !under(p, module+"/registries/registrytest") && !under(p, module+"/test")
			},
			forbids: func(i string) bool { return under(i, "github.com/google/go-containerregistry/pkg/v1/remote") },
		},
	}
	checked := 0
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		pkg, imports := fields[0], fields[1:]
		imports = ownSubpackagesDropped(pkg, imports)
		checked++
		for _, r := range rules {
			if !r.applies(pkg) {
				continue
			}
			for _, imp := range imports {
				if r.forbids(imp) {
					t.Errorf("%s: %s imports %s", r.name, pkg, imp)
				}
			}
		}
	}
	if checked < 5 {
		t.Fatalf("go list returned %d packages; the module looks empty", checked)
	}
}

func under(pkg, root string) bool { return pkg == root || strings.HasPrefix(pkg, root+"/") }

// sharedByTriggers are the packages under triggers/ that are not triggers
// but what triggers share: the conformance kit, the compose file engine
// (compose files and stack files), and what every deploying trigger does
// (the rollout record, health gate, smoke checks, rollback).
var sharedByTriggers = []string{"triggertest", "composefile", "rollout"}

// dispatcherParts are the packages under triggers/ that, like the
// dispatcher, run in serve and drive triggers from the outside (the repair
// loop of failed rollouts): neither a trigger nor something a trigger may
// import (the last rule's allow list leaves them out).
var dispatcherParts = []string{"repair"}

// builtinTrigger reports whether pkg is a built-in trigger: a package under
// triggers/ but the dispatcher itself, its parts and the packages triggers
// share.
func builtinTrigger(pkg string) bool {
	rest, ok := strings.CutPrefix(pkg, module+"/triggers/")
	if !ok {
		return false
	}
	first := strings.Split(rest, "/")[0]
	return !slices.Contains(sharedByTriggers, first) && !slices.Contains(dispatcherParts, first)
}

// ownSubpackagesDropped leaves out the imports of a trigger's own
// subpackages (triggers/compose → triggers/composefile): a package
// may be split in parts.
func ownSubpackagesDropped(pkg string, imports []string) []string {
	if !builtinTrigger(pkg) {
		return imports
	}
	root := module + "/triggers/" + strings.Split(strings.TrimPrefix(pkg, module+"/triggers/"), "/")[0]
	out := imports[:0:0]
	for _, i := range imports {
		if !under(i, root) {
			out = append(out, i)
		}
	}
	return out
}
