package host

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/tidewatch/tidewatch/plugins/sdk"
)

// process is one running plugin process.
type process struct {
	client   *plugin.Client
	cmd      *exec.Cmd
	protocol plugin.ClientProtocol
	rpc      *sdk.Client
	stdout   *lineWriter
	stderr   *lineWriter
	stopOnce sync.Once
	// released is closed once the process is stopped: the OS thread that
	// started it is held (locked) until then, see startTied.
	released chan struct{}
}

// start starts a process for spec and waits for its handshake.
func start(spec Spec, opts Options, log hclog.Logger) (*process, error) {
	cmd := exec.Command(spec.Path, spec.Args...)
	if cmd.Err != nil {
		return nil, fmt.Errorf("starting plugin %s: %w", spec.Type, cmd.Err)
	}
	cmd.Env = append([]string{}, spec.Env...)
	tieToParent(cmd)

	var secure *plugin.SecureConfig
	if spec.SHA256 != "" {
		want, _ := hex.DecodeString(strings.TrimSpace(spec.SHA256)) // checked by Spec.validate
		got, err := fileSHA256(cmd.Path)
		if err != nil {
			return nil, fmt.Errorf("starting plugin %s: checking the checksum %s pins: %w", spec.Type, PinVariable(spec.Type), err)
		}
		if !bytes.Equal(got, want) {
			return nil, fmt.Errorf("refusing to start plugin %s: %s has SHA-256 %x, but %s pins %x (%w)",
				spec.Type, cmd.Path, got, PinVariable(spec.Type), want, ErrChecksum)
		}
		// go-plugin checks again right before it starts the process.
		secure = &plugin.SecureConfig{Checksum: want, Hash: sha256.New()}
	}

	named := log.Named(filepath.Base(cmd.Path))
	pr := &process{
		cmd:      cmd,
		released: make(chan struct{}),
		stdout:   &lineWriter{line: func(b []byte) { logLine(named, hclog.Debug, b) }},
		stderr:   &lineWriter{line: func(b []byte) { logLine(named, hclog.Debug, b) }},
	}
	pr.client = plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  sdk.Handshake,
		Plugins:          sdk.Plugins(),
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		SkipHostEnv:      true,
		SecureConfig:     secure,
		StartTimeout:     opts.StartTimeout,
		Logger:           log,
		Stderr:           io.Discard,
		SyncStdout:       pr.stdout,
		SyncStderr:       pr.stderr,
	})
	err := startTied(func() (err error) {
		pr.protocol, err = pr.client.Client()
		return err
	}, pr.released)
	if err != nil {
		pr.stop(true)
		return nil, fmt.Errorf("starting plugin %s (%s): %w", spec.Type, cmd.Path, err)
	}
	raw, err := pr.protocol.Dispense(sdk.PluginName)
	if err != nil {
		pr.stop(true)
		return nil, fmt.Errorf("starting plugin %s (%s): %w", spec.Type, cmd.Path, err)
	}
	rpc, ok := raw.(*sdk.Client)
	if !ok {
		pr.stop(true)
		return nil, fmt.Errorf("starting plugin %s (%s): the plugin set dispensed a %T", spec.Type, cmd.Path, raw)
	}
	pr.rpc = rpc
	return pr, nil
}

// pid is the process's id, 0 when unknown.
func (pr *process) pid() int {
	if rc := pr.client.ReattachConfig(); rc != nil {
		return rc.Pid
	}
	return 0
}

// exited reports whether the process has exited.
func (pr *process) exited() bool { return pr.client.Exited() }

// stop stops the process and waits for it: gracefully (go-plugin's Kill:
// shut down over RPC, killed after 2s), or at once when force is set. Only
// the first call does anything; later ones wait for it.
func (pr *process) stop(force bool) {
	pr.stopOnce.Do(func() {
		if force && pr.cmd.Process != nil {
			_ = pr.cmd.Process.Kill()
		}
		pr.client.Kill()
		pr.stdout.Flush()
		pr.stderr.Flush()
		close(pr.released)
	})
}

// startTied runs start, which starts a plugin process, on an OS thread that
// stays locked to its goroutine until released is closed. A process started
// with a parent-death signal (Linux's Pdeathsig, see tieToParent) gets it
// when the thread that started it ends, not when tidewatch does: Go ends a
// thread whose goroutine exits while locked, so the starting thread must be
// one that no such goroutine can take and end while the process runs.
func startTied(start func() error, released <-chan struct{}) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		errc <- start()
		<-released
		runtime.UnlockOSThread()
	}()
	return <-errc
}

func fileSHA256(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, err
	}
	return h.Sum(nil), nil
}
