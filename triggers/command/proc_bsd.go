//go:build unix && !linux

package command

import "syscall"

// sysProcAttr puts the program in its own process group.
func sysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }
