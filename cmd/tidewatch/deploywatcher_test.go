package main

import (
	"testing"

	"github.com/tidewatch/tidewatch/core/config"
	"github.com/tidewatch/tidewatch/plugins/sdk"
)

// TestDeployWatcher checks which watcher a trigger that deploys is bound to
// when it names none: the only one, else the one on its engine, and none
// when several or none are.
func TestDeployWatcher(t *testing.T) {
	local := config.Watcher{Name: "local", Socket: "/var/run/docker.sock"}
	edge := config.Watcher{Name: "edge", Host: "edge.example", Port: 2375}
	proxy := config.Watcher{Name: "proxy", Host: "socket-proxy", Port: 2375}
	tests := []struct {
		name     string
		watchers []config.Watcher
		engine   string
		want     string
		ok       bool
	}{
		{"the only watcher, whatever its address (a socket proxy)", []config.Watcher{proxy}, "unix:///var/run/docker.sock", "proxy", true},
		{"the one on its socket", []config.Watcher{edge, local}, "unix:///var/run/docker.sock", "local", true},
		{"a socket path written otherwise", []config.Watcher{edge, local}, "unix:///var/run/../run/docker.sock/", "local", true},
		{"the one on its TCP engine, host without case", []config.Watcher{local, edge}, "tcp://EDGE.example:2375", "edge", true},
		{"another port is another engine", []config.Watcher{local, edge}, "tcp://edge.example:2376", "", false},
		{"none on its engine", []config.Watcher{local, edge}, "unix:///run/user/1000/docker.sock", "", false},
		{"two on its engine", []config.Watcher{local, {Name: "again", Socket: "/var/run/docker.sock"}}, "unix:///var/run/docker.sock", "", false},
		{"no engine option", []config.Watcher{local, edge}, "", "", false},
		{"hostile engine value", []config.Watcher{local, edge}, "unix:///var/run/docker.sock\x00,tcp://edge.example:2375", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := deployWatcher(tc.watchers, tc.engine)
			if got != tc.want || ok != tc.ok {
				t.Errorf("deployWatcher(%q) = %q, %v; want %q, %v", tc.engine, got, ok, tc.want, tc.ok)
			}
		})
	}
}

// TestEngineOf checks that a trigger's engine is its DOCKER_HOST as set,
// else its plugin's default, else none.
func TestEngineOf(t *testing.T) {
	desc := sdk.Description{Options: []sdk.Option{{Name: "DOCKER_HOST", Default: "unix:///var/run/docker.sock"}}}
	if got := engineOf(desc, map[string]string{"DOCKER_HOST": "tcp://edge.example:2375"}); got != "tcp://edge.example:2375" {
		t.Errorf("engineOf(set) = %q, want the value set", got)
	}
	if got := engineOf(desc, nil); got != "unix:///var/run/docker.sock" {
		t.Errorf("engineOf(unset) = %q, want the plugin's default", got)
	}
	if got := engineOf(sdk.Description{}, nil); got != "" {
		t.Errorf("engineOf(no option) = %q, want none", got)
	}
}
