// Command bedctl starts and stops the test bed of real parts (a Docker engine
// and a registry) that tidewatch's system tests use. Its state lives in
// .testbed under the module root.
//
//	go run ./test/bedctl up                  start what is missing, write .testbed/state.json
//	go run ./test/bedctl down                stop what up started, remove test containers
//	go run ./test/bedctl status              print the state and whether the parts answer
//	go run ./test/bedctl run -- CMD ARGS...  up, run CMD with TIDEWATCH_TESTBED_STATE and
//	                                         TIDEWATCH_TESTBED_REQUIRED=1 set, down (also on
//	                                         Ctrl-C), and exit with CMD's exit code
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/tidewatch/tidewatch/test/testbed"
)

const usage = `usage: bedctl up | down | status | run -- CMD [ARGS...]`

// downTimeout bounds the clean-up, which must run even after Ctrl-C.
const downTimeout = 3 * time.Minute

func main() { os.Exit(run(os.Args[1:])) }

func run(args []string) int {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("component", "bedctl")
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, usage)
		return 2
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
		return runWith(stateDir, cmd, log)
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

// runWith brings the bed up, runs cmd, and brings the bed down. A signal is
// passed on to cmd (it usually gets Ctrl-C from the terminal already) and
// the bed comes down once cmd has ended.
func runWith(stateDir string, cmd []string, log *slog.Logger) int {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
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
		if err != nil {
			log.Error("bringing the test bed up", "err", err)
		}
		_ = down(stateDir, log)
		return 1
	}

	c := exec.Command(cmd[0], cmd[1:]...)
	c.Stdin, c.Stdout, c.Stderr = os.Stdin, os.Stdout, os.Stderr
	c.Env = append(os.Environ(),
		testbed.EnvState+"="+filepath.Join(st.Dir, testbed.StateFile),
		testbed.EnvRequired+"=1",
	)
	log.Info("running", "cmd", cmd)
	code := 0
	if err := c.Start(); err != nil {
		log.Error("starting command", "cmd", cmd[0], "err", err)
		code = 127
	} else {
		done := make(chan struct{})
		go func() {
			for {
				select {
				case s := <-sigs:
					log.Info("passing signal on to the command", "signal", s)
					_ = c.Process.Signal(s)
				case <-done:
					return
				}
			}
		}()
		err := c.Wait()
		close(done)
		code = exitCode(err)
		log.Info("command ended", "cmd", cmd[0], "exit_code", code)
	}
	if err := down(stateDir, log); err != nil && code == 0 {
		code = 1
	}
	return code
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
	return 0
}

func answer(err error) string {
	if err != nil {
		return "NOT ANSWERING (" + err.Error() + ")"
	}
	return "answers"
}
