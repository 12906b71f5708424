package command

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/tidewatch/tidewatch/plugins/sdk"
	"github.com/tidewatch/tidewatch/triggers/triggertest"
)

// peerScript behaves as the file mode in its state folder (its first
// argument) says: ok (records stdin and exits 0), retry (exit 75), fail
// (exit 1) or hang.
const peerScript = `state=$1
case "$(cat "$state/mode" 2>/dev/null)" in
retry) echo "busy, later" >&2; exit 75 ;;
fail) echo "bad input" >&2; exit 1 ;;
hang) exec sleep 300 ;;
esac
cat > "$state/stdin"
echo "$TIDEWATCH_KEY" > "$state/key"
`

func TestConformance(t *testing.T) {
	state := t.TempDir()
	setMode := func(mode string) func() {
		if err := os.WriteFile(filepath.Join(state, "mode"), []byte(mode), 0o600); err != nil {
			t.Fatal(err)
		}
		return func() { os.Remove(filepath.Join(state, "mode")) }
	}
	prog := script(t, peerScript)
	args, _ := json.Marshal([]string{state})
	options := map[string]string{OptCommand: prog, OptArgs: string(args), OptEnv: "API_TOKEN=abc", OptTimeout: "20s"}
	with := func(name, value string) map[string]string {
		o := map[string]string{OptCommand: prog, OptArgs: string(args), OptEnv: "API_TOKEN=abc"}
		o[name] = value
		return o
	}

	triggertest.Run(t, triggertest.Case{
		Type:          "command",
		Options:       options,
		SecretOptions: []string{OptEnv},
		Bad: []triggertest.BadOption{
			{Options: with(OptCommand, filepath.Join(state, "no-such-program")), Option: OptCommand},
			{Options: with(OptArgs, "--verbose"), Option: OptArgs},
			{Options: with(OptTimeout, "0s"), Option: OptTimeout},
			{Options: with(OptEnv, "TIDEWATCH_KEY=x"), Option: OptEnv},
			{Options: with(OptDir, filepath.Join(state, "no-such-folder")), Option: OptDir},
		},
		Deliver: func(t *testing.T) func(t *testing.T, u sdk.Update) {
			return func(t *testing.T, u sdk.Update) {
				raw, err := os.ReadFile(filepath.Join(state, "stdin"))
				if err != nil {
					t.Fatalf("the program did not record its stdin: %v", err)
				}
				var p sdk.Payload
				if err := json.Unmarshal(raw, &p); err != nil || len(p.Updates) != 1 || p.Updates[0].Key != u.Key {
					t.Errorf("stdin = %s (%v), want the payload of %s", raw, err, u.Key)
				}
				if key, _ := os.ReadFile(filepath.Join(state, "key")); string(key) != u.Key+"\n" {
					t.Errorf("TIDEWATCH_KEY = %q, want %q", key, u.Key)
				}
			}
		},
		Retryable: func(*testing.T) func() { return setMode("retry") },
		Permanent: func(*testing.T) func() { return setMode("fail") },
		Hang:      func(*testing.T) func() { return setMode("hang") },
	})
}
