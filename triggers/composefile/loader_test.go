package composefile

import (
	"errors"
	"strings"
	"testing"
)

// TestComposeLoaderAgrees: compose's own loader (compose-go) is the second
// proof of every rewrite. It agrees with rewrites of a literal tag, of a
// tag in .env and of a default; it refuses, naming compose's loader, a
// .env rewrite that compose would not see (the variable set in the
// environment tidewatch runs in, which wins over the env file) and a
// project that compose itself cannot load (hostile: a required variable
// unset elsewhere in the file).
func TestComposeLoaderAgrees(t *testing.T) {
	tests := []struct {
		name    string
		files   map[string]string
		procEnv []string
		want    string // the new file or env file; "" when refused
		refuse  string // what the refusal says
	}{
		{
			name:  "literal tag",
			files: map[string]string{"compose.yml": "services:\n  web:\n    image: reg.example/app:1.0.0\n  db:\n    image: reg.example/db:1.0.0\n"},
			want:  "services:\n  web:\n    image: reg.example/app:1.1.0\n  db:\n    image: reg.example/db:1.0.0\n",
		},
		{
			name:  "tag in .env, read by the service's environment too",
			files: map[string]string{"compose.yml": "services:\n  web:\n    image: reg.example/app:${WEB_TAG}\n    environment:\n      - TAG=${WEB_TAG}\n", ".env": "WEB_TAG=1.0.0\n"},
			want:  "WEB_TAG=1.1.0\n",
		},
		{
			name:   "tag in .env, read by another service",
			files:  map[string]string{"compose.yml": "services:\n  web:\n    image: reg.example/app:${WEB_TAG}\n  worker:\n    image: reg.example/worker:1\n    environment:\n      - WEB=${WEB_TAG}\n", ".env": "WEB_TAG=1.0.0\n"},
			refuse: "service worker change too",
		},
		{
			name:  "tag in .env, used once",
			files: map[string]string{"compose.yml": "services:\n  web:\n    image: reg.example/app:${WEB_TAG}\n", ".env": "# pinned\nWEB_TAG=1.0.0\n"},
			want:  "# pinned\nWEB_TAG=1.1.0\n",
		},
		{
			name:  "default",
			files: map[string]string{"compose.yml": "services:\n  web:\n    image: reg.example/app:${WEB_TAG:-1.0.0}\n"},
			want:  "services:\n  web:\n    image: reg.example/app:${WEB_TAG:-1.1.0}\n",
		},
		{
			name:    "variable set in tidewatch's environment",
			files:   map[string]string{"compose.yml": "services:\n  web:\n    image: reg.example/app:${WEB_TAG}\n", ".env": "WEB_TAG=1.0.0\n"},
			procEnv: []string{"WEB_TAG=1.0.0"},
			refuse:  "wins over the env file",
		},
		{
			name:   "required variable unset elsewhere",
			files:  map[string]string{"compose.yml": "services:\n  web:\n    image: reg.example/app:1.0.0\n    environment:\n      - KEY=${API_KEY:?set API_KEY}\n"},
			refuse: "compose's loader rejects the project",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := processEnv
			processEnv = func() []string { return tc.procEnv }
			t.Cleanup(func() { processEnv = before })
			dir := t.TempDir()
			writeProject(t, dir, tc.files)
			target, err := Locate(map[string]string{LabelService: "web", LabelProject: "p", LabelWorkingDir: dir, LabelConfigFiles: "compose.yml"}, LocateOptions{})
			if err != nil {
				if tc.refuse != "" && strings.Contains(err.Error(), tc.refuse) {
					return // refused as early as Locate: compose cannot read the value either
				}
				t.Fatalf("Locate = %v", err)
			}
			c, err := target.Plan("1.1.0", "")
			if tc.refuse != "" {
				if err == nil || !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), tc.refuse) {
					t.Fatalf("Plan = %v, want a refusal saying %q", err, tc.refuse)
				}
				return
			}
			if err != nil {
				t.Fatalf("Plan = %v", err)
			}
			if string(c.New) != tc.want {
				t.Errorf("new bytes %q, want %q", c.New, tc.want)
			}
		})
	}
}
