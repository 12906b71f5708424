package sources

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tidewatch/tidewatch/core/gitsync"
	"github.com/tidewatch/tidewatch/core/gitsync/gittest"
)

func TestDeployProjects(t *testing.T) {
	dir, backups := t.TempDir(), t.TempDir()
	gittest.WriteFiles(t, dir, map[string]string{
		"shop/compose.override.yaml": "services:\n  web:\n    ports: [\"8080:80\"]\n",
		"shop/compose.yaml":          "services:\n  web:\n    image: a:2\n  worker:\n    image: w:2\n",
		"shop/.env":                  "TAG=2\n",
		"shop/notes.txt":             "not compose\n",
		"blog/docker-compose.yml":    "name: My Blog!\nservices:\n  ghost:\n    image: ghost:5\n",
	})
	gittest.WriteFiles(t, backups, map[string]string{
		"shop/compose.yaml": "services:\n  web:\n    image: a:1\n  old:\n    image: o:1\n",
		"shop/.env":         "TAG=1\n",
	})
	d := Deploy{Dir: dir, Backups: backups, Files: []gitsync.FileDiff{
		{Path: "shop/compose.yaml", Status: gitsync.Modified, Changed: []string{"web"}, Added: []string{"worker"}, Removed: []string{"old"}},
		{Path: "shop/compose.override.yaml", Status: gitsync.Added, Added: []string{"web"}},
		{Path: "blog/docker-compose.yml", Status: gitsync.Added, Added: []string{"ghost"}},
	}}
	got, err := d.Projects()
	if err != nil {
		t.Fatal(err)
	}
	j := filepath.Join
	want := []Project{
		{Name: "myblog", Dir: j(dir, "blog"), Files: []string{j(dir, "blog/docker-compose.yml")}, Up: []string{"ghost"},
			Previous: []Previous{{Path: j(dir, "blog/docker-compose.yml")}}},
		{Name: "shop", Dir: j(dir, "shop"), Files: []string{j(dir, "shop/compose.yaml"), j(dir, "shop/compose.override.yaml")},
			Up: []string{"web", "worker"}, Removed: []string{"old"},
			Previous: []Previous{
				{Path: j(dir, "shop/.env"), Backup: j(backups, "shop/.env")},
				{Path: j(dir, "shop/compose.override.yaml")},
				{Path: j(dir, "shop/compose.yaml"), Backup: j(backups, "shop/compose.yaml")},
			}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Projects() (-want +got):\n%s", diff)
	}

	// What ran before unknown: nothing to put back (not "did not exist").
	d.Backups = ""
	got, err = d.Projects()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range got {
		if p.Previous != nil {
			t.Errorf("Projects() without backups: %s has previous files %+v, want none", p.Name, p.Previous)
		}
	}
}

func TestUnreadableRefusesPathsOutOfTheSource(t *testing.T) {
	for _, p := range []string{"../compose.yaml", "/etc/compose.yaml", "a/../../compose.yaml"} {
		if err := unreadable([]gitsync.FileDiff{{Path: p, Status: gitsync.Added, Added: []string{"web"}}}); err == nil {
			t.Errorf("unreadable(%q) = nil, want refused", p)
		}
	}
	if err := unreadable([]gitsync.FileDiff{{Path: "shop/compose.yaml", Status: gitsync.Modified, Changed: []string{"web"}}}); err != nil {
		t.Errorf("unreadable(shop/compose.yaml) = %v, want nil", err)
	}
}

func TestServiceOf(t *testing.T) {
	dir := t.TempDir()
	gittest.WriteFiles(t, dir, map[string]string{
		"compose.yaml": "services:\n  web:\n    image: reg.example/app:1.0\n    labels:\n      tidewatch.trigger.exclude: compose\n      team: a\n" +
			"  api:\n    image: reg.example/api:${TAG:-1}\n    labels: [\"tidewatch.watch=false\", \"bare\"]\n",
		"compose.override.yaml": "services:\n  web:\n    labels: {team: b}\n",
		"broken.yaml":           "services: [unclosed\n",
		"huge.yaml":             "services:\n  web:\n    image: huge:1\n#" + strings.Repeat("x", gitsync.MaxComposeSize),
	})
	base, override := filepath.Join(dir, "compose.yaml"), filepath.Join(dir, "compose.override.yaml")
	tests := []struct {
		name, service string
		files         []string
		image         string
		labels        map[string]string
	}{
		{"map labels, a later file wins", "web", []string{base, override}, "reg.example/app:1.0",
			map[string]string{"tidewatch.trigger.exclude": "compose", "team": "b"}},
		{"list labels; an interpolated image is left to the trigger", "api", []string{base}, "",
			map[string]string{"tidewatch.watch": "false", "bare": ""}},
		{"not declared", "db", []string{base}, "", nil},
		{"not YAML, larger than 1 MiB, or missing: passed over", "web",
			[]string{filepath.Join(dir, "broken.yaml"), filepath.Join(dir, "huge.yaml"), filepath.Join(dir, "gone.yaml")}, "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			image, labels := serviceOf(tc.files, tc.service)
			if image != tc.image {
				t.Errorf("image = %q, want %q", image, tc.image)
			}
			if diff := cmp.Diff(tc.labels, labels); diff != "" {
				t.Errorf("labels (-want +got):\n%s", diff)
			}
		})
	}
}
