package rollout

import "syscall"

// tieToParent has the kernel kill the child when its parent thread ends.
func tieToParent(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGKILL }
