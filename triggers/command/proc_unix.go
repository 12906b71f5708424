//go:build unix

package command

import (
	"errors"
	"os"
	"os/exec"
	"syscall"
)

// setProcessGroup runs cmd in a process group of its own, so that a
// timeout kills what it started too, not only the program.
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = sysProcAttr()
	cmd.Cancel = func() error {
		err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		if errors.Is(err, syscall.ESRCH) {
			return os.ErrProcessDone
		}
		return err
	}
}
