package composefile

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParsePathMap(t *testing.T) {
	tests := []struct {
		in      string
		want    []PathMapping
		wantErr bool
	}{
		{in: "", want: nil},
		{in: "/srv/stacks:/stacks", want: []PathMapping{{Host: "/srv/stacks", Local: "/stacks"}}},
		{in: " /a/:/b , /c:/d/e/ ", want: []PathMapping{{Host: "/a", Local: "/b"}, {Host: "/c", Local: "/d/e"}}},
		{in: "relative:/b", wantErr: true},
		{in: "/a", wantErr: true},
	}
	for _, tc := range tests {
		got, err := ParsePathMap(tc.in)
		if (err != nil) != tc.wantErr {
			t.Errorf("ParsePathMap(%q) error = %v, want error %v", tc.in, err, tc.wantErr)
			continue
		}
		if !tc.wantErr {
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ParsePathMap(%q) (-want +got):\n%s", tc.in, diff)
			}
		}
	}
}

func TestMap(t *testing.T) {
	maps := []PathMapping{{Host: "/srv", Local: "/host/srv"}, {Host: "/srv/stacks", Local: "/stacks"}}
	tests := []struct{ in, want string }{
		{"/srv/stacks/app/compose.yml", "/stacks/app/compose.yml"}, // the longest prefix wins
		{"/srv/other/compose.yml", "/host/srv/other/compose.yml"},
		{"/srv", "/host/srv"},
		{"/srvx/compose.yml", "/srvx/compose.yml"}, // whole path elements only
		{"/opt/app/./compose.yml", "/opt/app/compose.yml"},
	}
	for _, tc := range tests {
		if got := Map(maps, tc.in); got != tc.want {
			t.Errorf("Map(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// writeProject writes files (name → content) under dir.
func writeProject(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestLocate(t *testing.T) {
	root := t.TempDir()
	local := filepath.Join(root, "local", "stacks", "demo")
	writeProject(t, local, map[string]string{
		"compose.yml":      "services:\n  app:\n    image: 127.0.0.1:5000/app:${TAG:-1.0.0}\n",
		"compose.prod.yml": "services:\n  app:\n    restart: always\n",
		".env":             "TAG=1.0.1\n",
		"other.env":        "TAG=1.0.2\n",
	})
	host := "/srv/stacks/demo" // the same folder, as the Docker host sees it
	pathMap := []PathMapping{{Host: "/srv/stacks", Local: filepath.Join(root, "local", "stacks")}}
	base := map[string]string{LabelProject: "demo", LabelService: "app", LabelWorkingDir: host}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	files := []string{filepath.Join(local, "compose.yml"), filepath.Join(local, "compose.prod.yml")}
	tests := []struct {
		name     string
		labels   map[string]string
		opts     LocateOptions
		files    []string
		tag      string
		envFile  string
		envLine  int
		wantErr  error
		anyError bool
	}{
		{name: "compose v2 absolute paths", labels: with(LabelConfigFiles, host+"/compose.yml,"+host+"/compose.prod.yml"),
			opts: LocateOptions{PathMap: pathMap}, files: files, tag: "1.0.1", envFile: filepath.Join(local, ".env"), envLine: 1},
		{name: "docker-compose 1.29 relative paths", labels: with(LabelConfigFiles, "compose.yml,compose.prod.yml"),
			opts: LocateOptions{PathMap: pathMap}, files: files, tag: "1.0.1", envFile: filepath.Join(local, ".env"), envLine: 1},
		{name: "FILE option, relative to the mapped working dir", labels: with(),
			opts: LocateOptions{File: "compose.yml", PathMap: pathMap}, files: files[:1], tag: "1.0.1", envFile: filepath.Join(local, ".env"), envLine: 1},
		{name: "FILE option without labels", labels: map[string]string{},
			opts: LocateOptions{File: filepath.Join(local, "compose.yml"), Service: "app"}, files: files[:1], tag: "1.0.1", envFile: filepath.Join(local, ".env"), envLine: 1},
		{name: "env file option", labels: with(LabelConfigFiles, host+"/compose.yml"),
			opts: LocateOptions{PathMap: pathMap, EnvFile: filepath.Join(local, "other.env")}, files: files[:1], tag: "1.0.2", envFile: filepath.Join(local, "other.env"), envLine: 1},
		{name: "no mapping: the host path does not exist here", labels: with(LabelConfigFiles, host+"/compose.yml"), anyError: true},
		{name: "relative path without working dir", labels: map[string]string{LabelService: "app", LabelConfigFiles: "compose.yml"}, anyError: true},
		{name: "no service label", labels: map[string]string{LabelConfigFiles: files[0]}, wantErr: ErrNoImage},
		{name: "no files", labels: with(), wantErr: ErrNoImage},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Locate(tc.labels, tc.opts)
			if tc.wantErr != nil || tc.anyError {
				if err == nil || (tc.wantErr != nil && !errors.Is(err, tc.wantErr)) {
					t.Fatalf("Locate error = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Locate: %v", err)
			}
			if diff := cmp.Diff(tc.files, got.Files); diff != "" {
				t.Errorf("Files (-want +got):\n%s", diff)
			}
			if got.File != files[0] || got.WorkingDir != local || got.Tag != tc.tag || got.Repository != "127.0.0.1:5000/app" {
				t.Errorf("Locate = file %s dir %s repo %s tag %s, want %s %s 127.0.0.1:5000/app %s", got.File, got.WorkingDir, got.Repository, got.Tag, files[0], local, tc.tag)
			}
			wantVar := &EnvVar{Name: "TAG", Default: "1.0.0", HasDefault: true, EnvFile: tc.envFile, Line: tc.envLine, Value: tc.tag}
			if diff := cmp.Diff(wantVar, got.Var); diff != "" {
				t.Errorf("Var (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCheckRepository(t *testing.T) {
	dir := t.TempDir()
	writeProject(t, dir, map[string]string{"compose.yml": "services:\n  web:\n    image: nginx:1.25\n  app:\n    image: 127.0.0.1:5000/app:1.0.0\n"})
	tests := []struct {
		service, image string
		wantErr        error
	}{
		{"web", "docker.io/library/nginx:1.27", nil},
		{"web", "index.docker.io/library/nginx@" + digestA, nil},
		{"web", "nginx", nil},
		{"web", "ghcr.io/nginx/nginx:1.27", ErrOtherRepository},
		{"app", "127.0.0.1:5000/app:1.1.0", nil},
		{"app", "127.0.0.1:5001/app:1.1.0", ErrOtherRepository},
	}
	for _, tc := range tests {
		target, err := Locate(map[string]string{LabelService: tc.service, LabelConfigFiles: filepath.Join(dir, "compose.yml")}, LocateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := target.CheckRepository(tc.image); !errors.Is(err, tc.wantErr) {
			t.Errorf("CheckRepository(%s) for %s = %v, want %v", tc.image, tc.service, err, tc.wantErr)
		}
	}
}

func TestParseEnv(t *testing.T) {
	in := "\ufeff# comment\r\n\r\nexport A=1\r\nB = two words # comment\r\nC='lit $X # not a comment'\r\nD=\"esc \\\"q\\\" \\n\"\r\nE=\"multi\nline\"\r\nF=a#b\r\nG=\r\n  H=last"
	got, err := parseEnv([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	type kv struct {
		Key, Value string
		Line       int
		Editable   bool
	}
	var gotKV []kv
	for _, e := range got {
		gotKV = append(gotKV, kv{e.key, e.value, e.line, e.editable})
	}
	want := []kv{
		{"A", "1", 3, true},
		{"B", "two words", 4, true},
		{"C", "lit $X # not a comment", 5, true},
		{"D", "esc \"q\" \n", 6, false},
		{"E", "multi\nline", 7, false},
		{"F", "a#b", 9, true},
		{"G", "", 10, true},
		{"H", "last", 11, true},
	}
	if diff := cmp.Diff(want, gotKV); diff != "" {
		t.Errorf("parseEnv (-want +got):\n%s", diff)
	}
	for _, bad := range []string{"NOEQUALS\n", "A='open\n", "A=\"x\" trailing\n", "=x\n"} {
		if _, err := parseEnv([]byte(bad)); err == nil {
			t.Errorf("parseEnv(%q) = nil error, want one", bad)
		}
	}
}
