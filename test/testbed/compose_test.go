package testbed_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"

	"github.com/tidewatch/tidewatch/test/testbed"
)

// TestComposeUp runs a compose project of the test app with each compose
// CLI of the bed (Debian's docker-compose 1.29 and the compose v2 plugin),
// finds its container by its compose labels, and checks that the cleanup
// removes it.
func TestComposeUp(t *testing.T) {
	bed := testbed.Require(t)
	ref := bed.Registry + "/" + unique("compose") + ":1.0.0"
	bed.BuildImage(t, ref, testbed.AppOptions{Version: "1.0.0"})
	for _, c := range []testbed.Compose{testbed.ComposeV1, testbed.ComposeV2} {
		t.Run(c.String(), func(t *testing.T) {
			dir := t.TempDir()
			file := fmt.Sprintf("services:\n  web:\n    image: %s\n    ports: [\"127.0.0.1::8080\"]\n    labels:\n      tidewatch.test: \"1\"\n", ref)
			if err := os.WriteFile(filepath.Join(dir, "docker-compose.yml"), []byte(file), 0o644); err != nil {
				t.Fatal(err)
			}
			project := strings.ReplaceAll(unique("proj"), "-", "")

			var id string
			t.Run("up", func(t *testing.T) {
				bed.ComposeUpWith(t, c, dir, project)
				info := bed.ComposeContainer(t, project, "web")
				id = info.ID
				labels := info.Config.Labels
				if labels[testbed.ComposeLabelProject] != project || labels[testbed.ComposeLabelService] != "web" || labels["com.docker.compose.project.working_dir"] != dir {
					t.Errorf("labels = %v, want project %s, service web, working dir %s", labels, project, dir)
				}
				wantVersion := map[testbed.Compose]string{testbed.ComposeV1: "1.", testbed.ComposeV2: strings.TrimPrefix(testbed.ComposeV2Version, "v")}[c]
				if v := labels["com.docker.compose.version"]; !strings.HasPrefix(v, wantVersion) {
					t.Errorf("label com.docker.compose.version = %q, want %s…: the container was made by another compose", v, wantVersion)
				}
				port := info.NetworkSettings.Ports["8080/tcp"]
				if len(port) == 0 {
					t.Fatalf("port 8080 not published: %v", info.NetworkSettings.Ports)
				}
				if got := strings.TrimSpace(bed.WaitHTTP(t, "http://127.0.0.1:"+port[0].HostPort+"/")); got != "1.0.0" {
					t.Errorf("GET / = %q, want 1.0.0", got)
				}
				if out := bed.ComposeWith(t, c, dir, project, nil, "ps", "-q"); !strings.Contains(out, id[:12]) {
					t.Errorf("%s ps = %q, want the container %s", c, out, id[:12])
				}
			})
			left, err := bed.Docker().ContainerList(context.Background(), container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", testbed.ComposeLabelProject+"="+project))})
			if err != nil {
				t.Fatal(err)
			}
			if id == "" || len(left) != 0 {
				t.Errorf("after the test: %d containers of project %s left (container %q), want none", len(left), project, id)
			}
		})
	}
}
