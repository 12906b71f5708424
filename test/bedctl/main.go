// Command bedctl installs, starts and stops the test bed of real parts (a
// Docker engine, a registry, mail servers, an MQTT broker, the compose CLIs,
// chromium) that tidewatch's system tests use. Its state lives in .testbed
// under the module root.
//
//	go run ./test/bedctl install             install the missing parts (apt-get, go), once
//	go run ./test/bedctl up                  install, start what is missing, write .testbed/state.json
//	go run ./test/bedctl down                stop what up started, remove test containers
//	go run ./test/bedctl status              print the state and whether the parts answer
//	go run ./test/bedctl run -- CMD ARGS...  up, run CMD with TIDEWATCH_TESTBED_STATE and
//	                                         TIDEWATCH_TESTBED_REQUIRED=1 set, down (also on
//	                                         Ctrl-C), and exit with CMD's exit code
//
// Everything the tests need is installed by install, up and run, before any
// test starts; test packages never install anything. run takes the
// terminal's foreground for itself and CMD, so that Ctrl-C stops CMD without
// make reporting an error.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/tidewatch/tidewatch/test/testbed"
)

const usage = `usage: bedctl install | up | down | status | run -- CMD [ARGS...]`

// downTimeout bounds the clean-up, which must run even after Ctrl-C.
const downTimeout = 3 * time.Minute

func main() { os.Exit(run(os.Args[1:])) }

func run(args []string) int {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("component", "bedctl")
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, usage)
		return 2
	}
	if args[0] == "install" { // needs no module: it also runs in a bare chroot
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		return install(ctx, log)
	}
	root, err := testbed.ModuleRoot()
	if err != nil {
		log.Error("finding the module root", "err", err)
		return 1
	}
	stateDir := filepath.Join(root, ".testbed")

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	switch args[0] {
	case "up":
		if _, err := testbed.Up(ctx, stateDir, log); err != nil {
			log.Error("bringing the test bed up", "err", err)
			return 1
		}
		return 0
	case "down":
		if err := down(stateDir, log); err != nil {
			return 1
		}
		return 0
	case "status":
		return status(ctx, stateDir)
	case "run":
		cmd := args[1:]
		if len(cmd) > 0 && cmd[0] == "--" {
			cmd = cmd[1:]
		}
		if len(cmd) == 0 {
			fmt.Fprintln(os.Stderr, usage)
			return 2
		}
		stop() // runWith handles signals itself: it must outlive the command
		restore, tookTerminal, err := takeTerminal()
		if err != nil {
			log.Warn("running without the terminal's foreground: Ctrl-C also reaches make", "err", err)
		}
		defer restore()
		return runWith(stateDir, cmd, tookTerminal, log)
	default:
		fmt.Fprintln(os.Stderr, usage)
		return 2
	}
}

// down stops the bed, even when the caller was interrupted.
func down(stateDir string, log *slog.Logger) error {
	ctx, cancel := context.WithTimeout(context.Background(), downTimeout)
	defer cancel()
	if err := testbed.Down(ctx, stateDir, log); err != nil {
		log.Error("bringing the test bed down", "err", err)
		return err
	}
	return nil
}

// runWith brings the bed up, runs cmd, and brings the bed down. Ctrl-C
// during up stops it, brings down what it started, and exits 130. A signal
// during cmd is passed on to it, except a SIGINT that the terminal already
// sent it (onTerminal: bedctl and cmd are the terminal's foreground group),
// and the bed comes down once cmd has ended.
func runWith(stateDir string, cmd []string, onTerminal bool, log *slog.Logger) int {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)

	upCtx, cancelUp := context.WithCancel(context.Background())
	go func() {
		select {
		case <-sigs:
			cancelUp()
		case <-upCtx.Done():
		}
	}()
	st, err := testbed.Up(upCtx, stateDir, log)
	interrupted := upCtx.Err() != nil
	cancelUp()
	if err != nil || interrupted {
		if err != nil && !interrupted {
			log.Error("bringing the test bed up", "err", err)
		}
		_ = down(stateDir, log)
		if interrupted {
			fmt.Fprintln(os.Stderr, "bedctl: stopped before", cmd[0], "started")
			return 130
		}
		return 1
	}

	env := append(os.Environ(),
		testbed.EnvState+"="+filepath.Join(st.Dir, testbed.StateFile),
		testbed.EnvRequired+"=1",
	)
	log.Info("running", "cmd", cmd)
	code := runCommand(cmd, env, sigs, onTerminal, log)
	if err := down(stateDir, log); err != nil && code == 0 {
		code = 1
	}
	return code
}

// runCommand runs cmd with env, its standard streams bedctl's, and returns
// its exit code (128+N when signal N ended it, 127 when it could not start).
// Signals that arrive on sigs are passed on to it, but SIGINT only when
// fromTerminal is false: on a terminal, Ctrl-C reaches cmd directly.
func runCommand(cmd, env []string, sigs <-chan os.Signal, fromTerminal bool, log *slog.Logger) int {
	c := exec.Command(cmd[0], cmd[1:]...)
	c.Stdin, c.Stdout, c.Stderr = os.Stdin, os.Stdout, os.Stderr
	c.Env = env
	if err := c.Start(); err != nil {
		log.Error("starting command", "cmd", cmd[0], "err", err)
		return 127
	}
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-sigs:
				if s == os.Interrupt && fromTerminal {
					continue // the terminal sent it to the command too
				}
				log.Info("passing signal on to the command", "signal", s)
				_ = c.Process.Signal(s)
			case <-done:
				return
			}
		}
	}()
	err := c.Wait()
	close(done)
	code := exitCode(err)
	log.Info("command ended", "cmd", cmd[0], "exit_code", code)
	return code
}

// install installs the bed's missing parts and prints where each is.
func install(ctx context.Context, log *slog.Logger) int {
	res, err := testbed.Install(ctx, log)
	if err != nil {
		log.Error("installing the test bed's parts", "err", err)
		return 1
	}
	printParts(res.Parts, res.Missing)
	for _, step := range slices.Sorted(maps.Keys(res.Took)) {
		fmt.Printf("took %-16s %s\n", step+":", res.Took[step].Round(100*time.Millisecond))
	}
	return 0
}

// printParts prints each part and its path, or why it is missing.
func printParts(parts, missing map[string]string) {
	for _, name := range slices.Sorted(maps.Keys(parts)) {
		fmt.Printf("part %-17s %s\n", name+":", parts[name])
	}
	for _, name := range slices.Sorted(maps.Keys(missing)) {
		fmt.Printf("part %-17s MISSING: %s\n", name+":", missing[name])
	}
}

// exitCode turns the result of Wait into a shell-style exit code.
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ee.ExitCode()
	}
	return 1
}

// status prints the state file and whether the parts answer.
func status(ctx context.Context, stateDir string) int {
	path := filepath.Join(stateDir, testbed.StateFile)
	st, err := testbed.ReadState(path)
	if errors.Is(err, os.ErrNotExist) {
		fmt.Println("test bed: down (no", path+")")
		return 3
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Printf("test bed %s, up since %s\n", st.ID, st.StartedAt.Format(time.RFC3339))
	engine := "reused (ran before the bed)"
	if st.StartedEngine {
		engine = fmt.Sprintf("started by the bed, pid %d, log %s", st.Engine.PID, st.Engine.Log)
	}
	fmt.Printf("engine:   %s: %s; %s\n", st.DockerHost, answer(testbed.PingEngine(ctx, st.DockerHost)), engine)
	reg := ""
	if st.RegistryProcess != nil {
		reg = fmt.Sprintf("pid %d, log %s", st.RegistryProcess.PID, st.RegistryProcess.Log)
	}
	fmt.Printf("registry: %s: %s; %s\n", st.Registry, answer(testbed.PingRegistry(ctx, st.Registry)), reg)
	if st.MailpitSMTP != "" {
		fmt.Printf("mail:     smtp %s (STARTTLS), smtps %s, api %s and %s\n", st.MailpitSMTP, st.MailpitTLSSMTP, st.MailpitAPI, st.MailpitTLSAPI)
	}
	if st.MQTTAddr != "" {
		fmt.Printf("mqtt:     %s, mqtts %s (CA %s), user %s\n", st.MQTTAddr, st.MQTTTLSAddr, st.MQTTCAFile, st.MQTTUser)
	}
	printParts(st.Parts, st.PartsMissing)
	return 0
}

func answer(err error) string {
	if err != nil {
		return "NOT ANSWERING (" + err.Error() + ")"
	}
	return "answers"
}
