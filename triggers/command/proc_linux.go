package command

import "syscall"

// sysProcAttr puts the program in its own process group and, should the
// plugin process itself be killed (cut off by tidewatch mid-run), has the
// kernel kill the program too.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
