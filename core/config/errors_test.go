package config

import (
	"errors"
	"strings"
	"testing"

	"github.com/tidewatch/tidewatch/core"
)

// TestErrorsQuoteAtMostMaxQuoted sets every variable tidewatch reads (and an
// unknown one with a huge name) to a 100 KB hostile value: each error names
// its variable and shows at most MaxQuoted bytes of the value, with the
// value's length, never the whole of it.
func TestErrorsQuoteAtMostMaxQuoted(t *testing.T) {
	const size = 100 << 10
	hostile := strings.Repeat("debug\x00\x1b[31m☃", size/8)[:size] // cut inside a snowman on purpose
	var vars []string
	vars = append(vars, "TIDEWATCH_LOG_LEVEL", "TIDEWATCH_LOG_FORMAT", "TIDEWATCH_STORE_PATH", "TIDEWATCH_PLUGINS_DIR", "TIDEWATCH_PLUGIN_X_SHA256")
	for _, o := range watcherOptions {
		vars = append(vars, "TIDEWATCH_WATCHER_REMOTE_"+o)
	}
	for _, o := range registryOptions {
		vars = append(vars, "TIDEWATCH_REGISTRY_CUSTOM_MINE_"+o)
	}
	for _, o := range serverOptions {
		vars = append(vars, "TIDEWATCH_SERVER_"+o)
	}
	for _, o := range core.TriggerOptions {
		vars = append(vars, "TIDEWATCH_TRIGGER_WEBHOOK_HOOK_"+o)
	}
	env := []string{"TIDEWATCH_" + strings.Repeat("X", size) + "=1", "TIDEWATCH_TRIGGER_WEBHOOK_HOOK_" + strings.Repeat("Y", size) + "=1"}
	for _, v := range vars {
		env = append(env, v+"="+hostile)
	}
	_, err := Load(env)
	if err == nil {
		t.Fatal("Load with 100 KB values = nil error")
	}
	var ves []*VarError
	collect(err, &ves)
	named := map[string]bool{}
	for _, e := range ves {
		named[e.Var] = true
		msg := e.Error()
		if len(msg) > 2048 {
			t.Errorf("error for %.40s… is %d bytes, want at most 2 KiB:\n%.400s…", e.Var, len(msg), msg)
		}
		if e.Value != "" && !strings.Contains(msg, "… (102400 bytes)") {
			t.Errorf("error for %s = %.300s…, want the value cut and its length given", e.Var, msg)
		}
		if strings.Contains(msg, "\x00") || strings.Contains(msg, "\x1b") {
			t.Errorf("error for %.40s… shows control characters: %q", e.Var, msg)
		}
	}
	for _, v := range []string{"TIDEWATCH_LOG_LEVEL", "TIDEWATCH_WATCHER_REMOTE_CRON", "TIDEWATCH_WATCHER_REMOTE_PORT", "TIDEWATCH_REGISTRY_CUSTOM_MINE_URL", "TIDEWATCH_TRIGGER_WEBHOOK_HOOK_EVENTS"} {
		if !named[v] {
			t.Errorf("no error names %s", v)
		}
	}
}

func TestQuote(t *testing.T) {
	tests := []struct{ in, want string }{
		{"debug", `"debug"`},
		{"a\x00b\n", `"a\x00b\n"`},
		{strings.Repeat("a", MaxQuoted), `"` + strings.Repeat("a", MaxQuoted) + `"`},
		{strings.Repeat("a", MaxQuoted+1), `"` + strings.Repeat("a", MaxQuoted) + `"… (201 bytes)`},
		// A three-byte character across the limit is left out whole, not cut in two.
		{strings.Repeat("a", MaxQuoted-1) + "☃☃", `"` + strings.Repeat("a", MaxQuoted-1) + `"… (205 bytes)`},
	}
	for _, tc := range tests {
		if got := quote(tc.in); got != tc.want {
			t.Errorf("quote(%.20q…) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

// collect gathers the *VarError values of a joined error.
func collect(err error, out *[]*VarError) {
	var ve *VarError
	if errors.As(err, &ve) && err == error(ve) {
		*out = append(*out, ve)
		return
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			collect(e, out)
		}
	}
}
