package docker

import (
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/go-connections/nat"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

const testID = "0123456789ab0123456789ab0123456789ab0123456789ab0123456789abcdef"

// oldApp is the image defaults the containers of TestConfigLike were made from.
var oldApp = &imageDefaults{
	Env:          []string{"PATH=/", "VERSION=1.0.0", "MODE=dev"},
	Entrypoint:   []string{"/app"},
	Cmd:          []string{"-addr", ":8080"},
	WorkingDir:   "/srv",
	User:         "1000",
	StopSignal:   "SIGTERM",
	Labels:       map[string]string{"org.example.version": "1.0.0", "org.example.vendor": "acme"},
	Healthcheck:  &container.HealthConfig{Test: []string{"CMD", "/app", "-probe"}, Interval: time.Second, Timeout: 3 * time.Second, Retries: 2},
	Volumes:      map[string]struct{}{"/data": {}},
	ExposedPorts: map[string]struct{}{"8080/tcp": {}, "9090/tcp": {}},
}

// fromOld is what the engine shows for a container of oldApp created
// without any option: the image's defaults merged in.
func fromOld() container.Config {
	return container.Config{
		Hostname: testID[:12], Image: "app:1.0.0",
		Env: []string{"PATH=/", "VERSION=1.0.0", "MODE=dev"}, Entrypoint: []string{"/app"}, Cmd: []string{"-addr", ":8080"},
		WorkingDir: "/srv", User: "1000", StopSignal: "SIGTERM",
		Labels:       map[string]string{"org.example.version": "1.0.0", "org.example.vendor": "acme"},
		Healthcheck:  &container.HealthConfig{Test: []string{"CMD", "/app", "-probe"}, Interval: time.Second, Timeout: 3 * time.Second, Retries: 2},
		Volumes:      map[string]struct{}{"/data": {}},
		ExposedPorts: nat.PortSet{"8080/tcp": {}, "9090/tcp": {}},
	}
}

// TestConfigLike: what the container had from its image is left out of the
// recreated configuration (the new image's applies); what the user set,
// also where it overrides the image, is kept.
func TestConfigLike(t *testing.T) {
	tests := []struct {
		name     string
		change   func(c *container.Config, h *container.HostConfig)
		oldImage *imageDefaults
		want     func(c *container.Config)
	}{
		{
			name: "nothing set: every default left to the new image",
			want: func(c *container.Config) {
				*c = container.Config{Image: "app:2.0.0", Env: []string{}, Labels: map[string]string{}}
			},
		},
		{
			name: "environment: own entries and overrides kept",
			change: func(c *container.Config, _ *container.HostConfig) {
				c.Env = []string{"PATH=/", "VERSION=1.0.0", "MODE=production", "OWN=1", "EMPTY="}
			},
			want: func(c *container.Config) { c.Env = []string{"MODE=production", "OWN=1", "EMPTY="} },
		},
		{
			name:   "own entrypoint: kept, with a command equal to the image's (the engine adds none beside it)",
			change: func(c *container.Config, _ *container.HostConfig) { c.Entrypoint = []string{"/app", "-v"} },
			want: func(c *container.Config) {
				c.Entrypoint, c.Cmd = []string{"/app", "-v"}, []string{"-addr", ":8080"}
			},
		},
		{
			name:   "own command under the image's entrypoint",
			change: func(c *container.Config, _ *container.HostConfig) { c.Cmd = []string{"-addr", ":9000"} },
			want:   func(c *container.Config) { c.Cmd = []string{"-addr", ":9000"} },
		},
		{
			name: "working dir, user, stop signal set",
			change: func(c *container.Config, _ *container.HostConfig) {
				c.WorkingDir, c.User, c.StopSignal = "/tmp", "0:0", "SIGINT"
			},
			want: func(c *container.Config) { c.WorkingDir, c.User, c.StopSignal = "/tmp", "0:0", "SIGINT" },
		},
		{
			name: "a value equal to the image's counts as the image's",
			change: func(c *container.Config, _ *container.HostConfig) {
				c.WorkingDir, c.User = oldApp.WorkingDir, oldApp.User
			},
		},
		{
			name: "healthcheck: one field given (--health-interval), the rest the image's",
			change: func(c *container.Config, _ *container.HostConfig) {
				c.Healthcheck.Interval = 5 * time.Second
			},
			want: func(c *container.Config) { c.Healthcheck = &container.HealthConfig{Interval: 5 * time.Second} },
		},
		{
			name: "healthcheck turned off (--no-healthcheck)",
			change: func(c *container.Config, _ *container.HostConfig) {
				c.Healthcheck = &container.HealthConfig{Test: []string{"NONE"}}
			},
			want: func(c *container.Config) { c.Healthcheck = &container.HealthConfig{Test: []string{"NONE"}} },
		},
		{
			name: "labels: own and changed ones kept",
			change: func(c *container.Config, _ *container.HostConfig) {
				c.Labels["org.example.vendor"] = "me"
				c.Labels["team"] = "ops"
			},
			want: func(c *container.Config) { c.Labels = map[string]string{"org.example.vendor": "me", "team": "ops"} },
		},
		{
			name:   "volumes: own kept (-v /cache), the image's left",
			change: func(c *container.Config, _ *container.HostConfig) { c.Volumes["/cache"] = struct{}{} },
			want:   func(c *container.Config) { c.Volumes = map[string]struct{}{"/cache": {}} },
		},
		{
			name: "ports: own (--expose) and published image ports kept, unpublished image ports left",
			change: func(c *container.Config, h *container.HostConfig) {
				c.ExposedPorts["7000/tcp"] = struct{}{}
				h.PortBindings = nat.PortMap{"8080/tcp": {{HostIP: "127.0.0.1"}}}
			},
			want: func(c *container.Config) { c.ExposedPorts = nat.PortSet{"7000/tcp": {}, "8080/tcp": {}} },
		},
		{
			name:   "own hostname kept",
			change: func(c *container.Config, _ *container.HostConfig) { c.Hostname = "web" },
			want:   func(c *container.Config) { c.Hostname = "web" },
		},
		{
			name: "in another container's network: its hostname and the exposed ports left (the engine refuses them)",
			change: func(c *container.Config, h *container.HostConfig) {
				c.Hostname = "fedcba987654"
				h.NetworkMode = "container:fedcba987654fedcba987654"
			},
		},
		{
			name:     "old image gone: everything kept",
			oldImage: &imageDefaults{},
			change:   func(c *container.Config, _ *container.HostConfig) { c.Env = append(c.Env, "OWN=1") },
			want: func(c *container.Config) {
				*c = fromOld()
				c.Image, c.Hostname = "app:2.0.0", ""
				c.Env = append(c.Env, "OWN=1")
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, host := fromOld(), container.HostConfig{}
			if tc.change != nil {
				tc.change(&cfg, &host)
			}
			info := container.InspectResponse{ContainerJSONBase: &container.ContainerJSONBase{ID: testID, HostConfig: &host}, Config: &cfg}
			old := oldApp
			if tc.oldImage != nil {
				old = nil // the image is gone
			}
			got := configLike(info, old, "app:2.0.0")
			want := container.Config{Image: "app:2.0.0", Env: []string{}, Labels: map[string]string{}}
			if tc.want != nil {
				tc.want(&want)
			}
			if diff := cmp.Diff(&want, got); diff != "" {
				t.Errorf("configLike (-want +got):\n%s", diff)
			}
		})
	}
}

// TestInheritVolumes: anonymous volumes are carried over by name where the
// user or the new image wants a volume; those only the old image declared
// are named in left; binds, named volumes and volumes from other
// containers are left as they are.
func TestInheritVolumes(t *testing.T) {
	info := container.InspectResponse{
		ContainerJSONBase: &container.ContainerJSONBase{ID: testID, HostConfig: &container.HostConfig{
			Binds:       []string{"named:/named", "/srv/conf:/conf:ro", "/bare"},
			Mounts:      []mount.Mount{{Type: mount.TypeVolume, Target: "/mountvol"}, {Type: mount.TypeTmpfs, Target: "/tmp"}},
			VolumesFrom: []string{"other"},
		}},
		Config: &container.Config{Volumes: map[string]struct{}{"/user": {}, "/kept": {}, "/dropped": {}}},
		Mounts: []container.MountPoint{
			{Type: mount.TypeVolume, Name: "named", Destination: "/named", RW: true},
			{Type: mount.TypeBind, Source: "/srv/conf", Destination: "/conf"},
			{Type: mount.TypeVolume, Name: "v-bare", Destination: "/bare", RW: true},
			{Type: mount.TypeVolume, Name: "v-mountvol", Destination: "/mountvol", RW: true},
			{Type: mount.TypeVolume, Name: "v-user", Destination: "/user", RW: true},
			{Type: mount.TypeVolume, Name: "v-kept", Destination: "/kept", RW: false},
			{Type: mount.TypeVolume, Name: "v-dropped", Destination: "/dropped", RW: true},
			{Type: mount.TypeVolume, Name: "v-other", Destination: "/shared", RW: true},
			{Type: mount.TypeVolume, Name: "v-other2", Destination: "/newonly", RW: true}, // --volumes-from where the new image declares a VOLUME
		},
	}
	user := map[string]struct{}{"/user": {}}                     // -v /user
	newImage := map[string]struct{}{"/kept": {}, "/newonly": {}} // the new image's VOLUMEs
	shared := map[string]bool{"v-other": true, "v-other2": true} // the volumes of "other"
	binds, mounts, left := inheritVolumes(info, user, newImage, shared)
	if diff := cmp.Diff([]string{"named:/named", "/srv/conf:/conf:ro"}, binds); diff != "" {
		t.Errorf("binds (-want +got):\n%s", diff)
	}
	wantMounts := []mount.Mount{
		{Type: mount.TypeVolume, Source: "v-mountvol", Target: "/mountvol"},
		{Type: mount.TypeTmpfs, Target: "/tmp"},
		{Type: mount.TypeVolume, Source: "v-bare", Target: "/bare"},
		{Type: mount.TypeVolume, Source: "v-user", Target: "/user"},
		{Type: mount.TypeVolume, Source: "v-kept", Target: "/kept", ReadOnly: true},
	}
	if diff := cmp.Diff(wantMounts, mounts); diff != "" {
		t.Errorf("mounts (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"v-dropped at /dropped"}, left); diff != "" {
		t.Errorf("left (-want +got):\n%s", diff)
	}
}

func TestParseLink(t *testing.T) {
	tests := []struct{ in, child, alias string }{
		{"/db:/web/database", "db", "database"},
		{"db:database", "db", "database"},
		{"db", "", ""},
		{":x", "", ""},
		{"/db:", "", ""},
	}
	for _, tc := range tests {
		child, alias, ok := parseLink(tc.in)
		if child != tc.child || alias != tc.alias || ok != (tc.child != "") {
			t.Errorf("parseLink(%q) = %q, %q, %v; want %q, %q", tc.in, child, alias, ok, tc.child, tc.alias)
		}
	}
}

// TestEndpointsLike keeps aliases (but the container's own ID), static
// addresses and links, and nothing for a shared network namespace.
func TestEndpointsLike(t *testing.T) {
	info := container.InspectResponse{
		ContainerJSONBase: &container.ContainerJSONBase{ID: testID, HostConfig: &container.HostConfig{NetworkMode: "front"}},
		NetworkSettings: &container.NetworkSettings{Networks: map[string]*network.EndpointSettings{
			"front": {Aliases: []string{"web", testID[:12]}, IPAddress: "10.0.0.7", IPAMConfig: &network.EndpointIPAMConfig{IPv4Address: "10.0.0.7"}},
			"back":  {Aliases: []string{testID[:12]}, Links: []string{"db:database"}, IPAddress: "10.1.0.3"},
		}},
	}
	primary, eps := endpointsLike(info)
	want := map[string]*network.EndpointSettings{
		"front": {Aliases: []string{"web"}, IPAMConfig: &network.EndpointIPAMConfig{IPv4Address: "10.0.0.7"}},
		"back":  {Links: []string{"db:database"}},
	}
	if primary != "front" {
		t.Errorf("primary = %q, want front", primary)
	}
	if diff := cmp.Diff(want, eps, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("endpoints (-want +got):\n%s", diff)
	}
	info.HostConfig.NetworkMode = "container:" + testID
	if primary, eps := endpointsLike(info); primary != "" || len(eps) != 0 {
		t.Errorf("in another container's network: %q, %v; want none", primary, eps)
	}
}
