package composeup

import (
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/docker/compose/v5/pkg/api"
)

// TestToHost: with tidewatch seeing the projects under /stacks and the
// host under /srv/stacks, bind mounts, secret and config files and the
// project labels get the host's paths; named volumes are left alone.
func TestToHost(t *testing.T) {
	p := &types.Project{
		WorkingDir:   "/stacks/app",
		ComposeFiles: []string{"/stacks/app/compose.yaml", "/stacks/app/override.yaml"},
		Services: types.Services{"web": {
			Name: "web",
			ContainerSpec: types.ContainerSpec{
				Volumes: []types.ServiceVolumeConfig{
					{Type: types.VolumeTypeBind, Source: "/stacks/app/conf", Target: "/conf"},
					{Type: types.VolumeTypeVolume, Source: "data", Target: "/data"},
				},
				CustomLabels: types.Labels{api.WorkingDirLabel: "/stacks/app"},
			},
		}},
		Secrets: types.Secrets{"key": {File: "/stacks/app/key.txt"}},
		Configs: types.Configs{"cfg": {File: "/stacks/app/cfg.txt"}},
	}
	toHost(p, func(local string) string { return "/srv" + local })
	web := p.Services["web"]
	if got := web.Volumes[0].Source; got != "/srv/stacks/app/conf" {
		t.Errorf("bind source = %s, want the host's path", got)
	}
	if got := web.Volumes[1].Source; got != "data" {
		t.Errorf("named volume = %s, want it unchanged", got)
	}
	if got := web.CustomLabels[api.WorkingDirLabel]; got != "/srv/stacks/app" {
		t.Errorf("working_dir label = %s", got)
	}
	if got := web.CustomLabels[api.ConfigFilesLabel]; got != strings.Join([]string{"/srv/stacks/app/compose.yaml", "/srv/stacks/app/override.yaml"}, ",") {
		t.Errorf("config_files label = %s", got)
	}
	if p.Secrets["key"].File != "/srv/stacks/app/key.txt" || p.Configs["cfg"].File != "/srv/stacks/app/cfg.txt" {
		t.Errorf("secret %s, config %s: want the host's paths", p.Secrets["key"].File, p.Configs["cfg"].File)
	}
}
