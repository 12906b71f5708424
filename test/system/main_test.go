package system

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// binary is the tidewatch binary built once for the package's tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tidewatch-system-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "tidewatch")
	build := exec.Command("go", "build", "-o", binary, "github.com/tidewatch/tidewatch/cmd/tidewatch")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building tidewatch: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// result is what one tidewatch invocation printed and returned.
type result struct {
	stdout, stderr string
	code           int
}

// tidewatch runs the binary with env (and nothing else of the test's environment but PATH and HOME).
func tidewatch(t *testing.T, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}, env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		r.code = exit.ExitCode()
	case err != nil:
		t.Fatalf("running tidewatch %v: %v", args, err)
	}
	return r
}

// row is one object of `tidewatch check --format json`.
type row struct {
	Container     string `json:"container"`
	Host          string `json:"host"`
	Image         string `json:"image"`
	Current       string `json:"current"`
	CurrentDigest string `json:"current_digest"`
	Candidate     string `json:"candidate"`
	Kind          string `json:"kind"`
	Digest        string `json:"digest"`
	Note          string `json:"note"`
	Error         string `json:"error"`
}

func parseRows(t *testing.T, r result) map[string]row {
	t.Helper()
	var rows []row
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil {
		t.Fatalf("check --format json printed no JSON array: %v\nstdout:\n%s\nstderr:\n%s", err, r.stdout, r.stderr)
	}
	m := map[string]row{}
	for _, rw := range rows {
		m[rw.Container] = rw
	}
	return m
}

// unique returns a name that no other test run uses.
func unique(prefix string) string {
	b := make([]byte, 4)
	rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

func envFor(t testing.TB, dockerHost string, extra ...string) []string {
	t.Helper()
	env := []string{
		"TIDEWATCH_STORE_PATH=" + t.TempDir(),
		// Only the containers a test labels tidewatch.watch=true, so that other
		// packages' containers on the same engine stay out of the way.
		"TIDEWATCH_WATCHER_LOCAL_WATCHBYDEFAULT=false",
	}
	if sock, ok := strings.CutPrefix(dockerHost, "unix://"); ok {
		env = append(env, "TIDEWATCH_WATCHER_LOCAL_SOCKET="+sock)
	} else {
		host := strings.TrimPrefix(dockerHost, "tcp://")
		h, p, _ := strings.Cut(host, ":")
		env = append(env, "TIDEWATCH_WATCHER_LOCAL_HOST="+h, "TIDEWATCH_WATCHER_LOCAL_PORT="+p)
	}
	return append(env, extra...)
}
