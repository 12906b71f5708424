package docker_test

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/tidewatch/tidewatch/core"
	"github.com/tidewatch/tidewatch/core/docker"
	"github.com/tidewatch/tidewatch/registries/registrytest"
	"github.com/tidewatch/tidewatch/test/testbed"
)

// TestPullWithCredentials: an image in a registry that demands credentials
// (bearer tokens issued for a user and password, as Docker Hub and GHCR do)
// is pulled with the credentials given, and refused without them or with
// wrong ones; the password is in no error.
func TestPullWithCredentials(t *testing.T) {
	bed := testbed.Require(t)
	const user, pass = "puller", "canary-pull-pass-7f3e"
	reg := registrytest.New(t, registrytest.WithBearerAuth(user, pass))
	ref := reg.Host + "/private/" + unique("app") + ":2.0.0"
	img := bed.AppImage(t, testbed.AppOptions{Version: "2.0.0"})
	nref, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(nref, img, remote.WithAuth(&authn.Basic{Username: user, Password: pass})); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, bed)
	ctx := t.Context()
	for _, tc := range []struct {
		name string
		auth core.RegistryAuth
	}{
		{"anonymous", core.RegistryAuth{}},
		{"wrong password", core.RegistryAuth{Server: reg.Host, Username: user, Password: "canary-wrong-pass-19ab"}},
	} {
		err := c.Pull(ctx, ref, tc.auth)
		if err == nil {
			t.Errorf("%s: Pull(%s) succeeded, want refused", tc.name, ref)
		} else if strings.Contains(err.Error(), "canary-") {
			t.Errorf("%s: Pull's error holds a password: %v", tc.name, err)
		}
	}
	if err := c.Pull(ctx, ref, core.RegistryAuth{Server: reg.Host, Username: user, Password: pass}); err != nil {
		t.Fatalf("Pull(%s) with the credentials = %v", ref, err)
	}
	if _, err := c.ImageID(ctx, ref); err != nil {
		t.Errorf("the pulled image is not there: %v", err)
	}
	t.Cleanup(func() { _ = c.ImageRemove(t.Context(), ref) })
}

func TestCLIConfig(t *testing.T) {
	tests := []struct {
		name string
		auth core.RegistryAuth
		key  string
		want map[string]string
	}{
		{"basic", core.RegistryAuth{Server: "127.0.0.1:5000", Username: "u", Password: "p:with:colons ü"},
			"127.0.0.1:5000", map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte("u:p:with:colons ü"))}},
		{"docker hub", core.RegistryAuth{Server: "index.docker.io", Username: "u", Password: "p"},
			"https://index.docker.io/v1/", map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte("u:p"))}},
		{"tokens", core.RegistryAuth{Server: "ghcr.io", IdentityToken: "id-tok", RegistryToken: "reg-tok"},
			"ghcr.io", map[string]string{"identitytoken": "id-tok", "registrytoken": "reg-tok"}},
		{"hostile server", core.RegistryAuth{Server: `evil"}, "x": {"`, Username: "u", Password: "p"},
			`evil"}, "x": {"`, map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte("u:p"))}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := docker.CLIConfig(tc.auth)
			if err != nil {
				t.Fatal(err)
			}
			var cfg struct {
				Auths map[string]map[string]string `json:"auths"`
			}
			if err := json.Unmarshal(b, &cfg); err != nil {
				t.Fatalf("CLIConfig gave no JSON: %v\n%s", err, b)
			}
			if len(cfg.Auths) != 1 || len(cfg.Auths[tc.key]) != len(tc.want) {
				t.Fatalf("CLIConfig = %s, want one entry for %q with %v", b, tc.key, tc.want)
			}
			for k, v := range tc.want {
				if cfg.Auths[tc.key][k] != v {
					t.Errorf("auths[%q][%q] = %q, want %q", tc.key, k, cfg.Auths[tc.key][k], v)
				}
			}
		})
	}
}
