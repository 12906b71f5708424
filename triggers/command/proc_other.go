//go:build !unix

package command

import "os/exec"

// setProcessGroup does nothing where process groups are not available: a
// timeout kills the program only (exec.CommandContext's default).
func setProcessGroup(*exec.Cmd) {}
