package swarm

import (
	"errors"
	"testing"
)

// TestStackFile: a stack's file is the one named for it, else the path for
// every stack with its name put in, mapped through PATH_MAP; a stack label
// that is no stack name (a service's label is anyone's to set) never
// becomes part of a path.
func TestStackFile(t *testing.T) {
	cfg, err := ParseConfig(map[string]string{
		OptStackFile: "shop=/srv/shop/stack.yml, /srv/stacks/{stack}/docker-stack.yml",
		OptPathMap:   "/srv/stacks:/stacks",
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		stack, want string
		err         error
	}{
		{"shop", "/srv/shop/stack.yml", nil},
		{"blog", "/stacks/blog/docker-stack.yml", nil},
		{"blog_2-x", "/stacks/blog_2-x/docker-stack.yml", nil},
		{"..", "", errBadStack},
		{"../../etc", "", errBadStack},
		{"a/b", "", errBadStack},
		{"a b", "", errBadStack},
		{"", "", errBadStack},
		{"x\x00y", "", errBadStack},
		{"-rf", "", errBadStack},
	} {
		got, err := cfg.stackFile(tc.stack)
		if got != tc.want || !errors.Is(err, tc.err) {
			t.Errorf("stackFile(%q) = %q, %v; want %q, %v", tc.stack, got, err, tc.want, tc.err)
		}
	}
	none, err := ParseConfig(map[string]string{OptStackFile: "shop=/srv/shop/stack.yml"})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := none.stackFile("blog"); got != "" || err != nil {
		t.Errorf("stackFile(blog) without a path for every stack = %q, %v; want none", got, err)
	}
}

// TestDefaults: a service without an update config gets rollback on
// failure, a 15s monitor, start-first, one task at a time.
func TestDefaults(t *testing.T) {
	cfg, err := ParseConfig(map[string]string{})
	if err != nil {
		t.Fatal(err)
	}
	d := cfg.Defaults
	if d.FailureAction != "rollback" || d.Monitor.String() != "15s" || d.Order != "start-first" || d.Parallelism != 1 || d.Delay != 0 || cfg.Paused != PausedRollback {
		t.Errorf("defaults = %+v, paused %s; want rollback, 15s, start-first, 1, no delay, paused rollback", d, cfg.Paused)
	}
}
