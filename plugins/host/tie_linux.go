package host

import (
	"os/exec"
	"syscall"
)

// tieToParent has the kernel kill the plugin process when tidewatch dies
// (however: SIGKILL, OOM), so that no plugin process outlives it and goes on
// acting (a rollout) beside the tidewatch started after it.
func tieToParent(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
}
