//go:build unix && !linux

package rollout

import "syscall"

// tieToParent does nothing where there is no parent-death signal: the
// lock a child holds (Lock.File) and the record's process groups are what
// keep a rollout from acting twice.
func tieToParent(*syscall.SysProcAttr) {}
