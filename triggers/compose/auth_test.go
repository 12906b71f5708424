package compose

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/tidewatch/tidewatch/core"
	"github.com/tidewatch/tidewatch/core/docker"
	"github.com/tidewatch/tidewatch/plugins/sdk"
	"github.com/tidewatch/tidewatch/registries/registrytest"
	"github.com/tidewatch/tidewatch/test/testbed"
	"github.com/tidewatch/tidewatch/triggers/triggertest"
)

// TestRolloutPrivateRegistry rolls out an image from a registry that
// demands credentials, in both modes: with the credentials the update
// carries (those tidewatch reads the registry with) it is applied; without
// them, or with a wrong password, the pull fails and nothing changes; the
// password is in no result.
func TestRolloutPrivateRegistry(t *testing.T) {
	bed := testbed.Require(t)
	cli := bed.ComposeCLI(t)
	const user, pass = "deployer", "canary-deploy-pass-51c2"
	reg := registrytest.New(t, registrytest.WithBearerAuth(user, pass))
	repo := reg.Host + "/private/" + unique("app")
	for _, v := range []string{vGood, vNext} {
		ref, err := name.ParseReference(repo+":"+v, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		img := bed.AppImage(t, testbed.AppOptions{Version: v, Healthcheck: true})
		if err := remote.Write(ref, img, remote.WithAuth(&authn.Basic{Username: user, Password: pass})); err != nil {
			t.Fatal(err)
		}
	}
	engine, err := docker.New(docker.Options{Host: bed.DockerHost})
	if err != nil {
		t.Fatal(err)
	}
	defer engine.Close()
	// The project starts on vGood, pulled with the credentials.
	if err := engine.Pull(t.Context(), repo+":"+vGood, core.RegistryAuth{Server: reg.Host, Username: user, Password: pass}); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{RecreateCLI, RecreateEngine} {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			port := freePort(t)
			file := filepath.Join(dir, "docker-compose.yml")
			body := fmt.Sprintf("services:\n  web:\n    image: %s:%s\n    ports: [\"127.0.0.1:%d:8080\"]\n    labels: {tidewatch.test: \"1\"}\n", repo, vGood, port)
			if err := os.WriteFile(file, []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
			p := &project{bed: bed, repo: repo, name: unique("twcauth"), dir: dir, file: file, original: []byte(body),
				urls: map[string]string{"web": fmt.Sprintf("http://127.0.0.1:%d/", port)}}
			bed.ComposeUp(t, dir, p.name)
			p.checkAnswers(t, "web", vGood)
			opts := options(bed, mode)
			if mode == RecreateCLI {
				opts[OptCompose] = cli
			}
			plugin, _ := triggertest.Start(t, "compose", opts)

			for _, bad := range []*sdk.RegistryAuth{nil, {Server: reg.Host, Username: user, Password: "wrong-" + pass}} {
				u := p.update(t, "web", vNext)
				u.RegistryAuth = bad
				r, rep := fire(t, plugin, u)
				if r.Err == nil || rep.Outcome != OutcomeFailed || rep.FailedStep != StepPull {
					t.Errorf("with credentials %v: err %v, outcome %q, failed step %q; want failed at pull", bad != nil, r.Err, rep.Outcome, rep.FailedStep)
				}
				if r.Err != nil && strings.Contains(r.Err.Error(), pass) {
					t.Errorf("the error holds the password: %v", r.Err)
				}
				p.checkFile(t, p.original)
			}

			u := p.update(t, "web", vNext)
			u.RegistryAuth = &sdk.RegistryAuth{Server: reg.Host, Username: user, Password: pass}
			r, rep := fire(t, plugin, u)
			if r.Err != nil || rep.Outcome != OutcomeApplied {
				t.Fatalf("with the credentials: err %v, outcome %q; want applied", r.Err, rep.Outcome)
			}
			if strings.Contains(fmt.Sprintf("%+v %s", rep, r.Detail), pass) {
				t.Errorf("the report holds the password")
			}
			p.checkAnswers(t, "web", vNext)
		})
	}
}
