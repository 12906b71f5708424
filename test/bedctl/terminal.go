package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"unsafe"
)

// takeTerminal moves bedctl into a process group of its own and makes that
// group the terminal's foreground group, when bedctl runs in the terminal's
// foreground (make demo or make test typed at a shell). The terminal sends
// Ctrl-C to its foreground group only: bedctl and the command it runs get
// it, make does not, so make neither dies of it nor reports the stopped
// command as an error (make: *** [demo] Interrupt). The bed's own processes
// run in groups of their own and never get it. restore gives the terminal
// back to the group bedctl came from; call it before exiting. Without a
// terminal (CI), or in the background, it changes nothing and took is false.
func takeTerminal() (restore func(), took bool, err error) {
	noop := func() {}
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return noop, false, nil // no controlling terminal
	}
	fd := int(tty.Fd())
	fg, err := tcgetpgrp(fd)
	if err != nil || fg != syscall.Getpgrp() {
		tty.Close()
		return noop, false, nil // not in the terminal's foreground
	}
	// Between setpgid and tcsetpgrp bedctl is in a background group, and a
	// background group that sets the foreground gets SIGTTOU (which stops
	// it) unless it ignores it.
	signal.Ignore(syscall.SIGTTOU)
	defer signal.Reset(syscall.SIGTTOU)
	if err := syscall.Setpgid(0, 0); err != nil {
		tty.Close()
		return noop, false, fmt.Errorf("taking the terminal: setpgid: %w", err)
	}
	if err := tcsetpgrp(fd, syscall.Getpid()); err != nil {
		_ = syscall.Setpgid(0, fg)
		tty.Close()
		return noop, false, fmt.Errorf("taking the terminal: tcsetpgrp: %w", err)
	}
	return func() {
		signal.Ignore(syscall.SIGTTOU)
		_ = tcsetpgrp(fd, fg)
		signal.Reset(syscall.SIGTTOU)
		tty.Close()
	}, true, nil
}

func tcgetpgrp(fd int) (int, error) {
	var pgrp int32
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), uintptr(syscall.TIOCGPGRP), uintptr(unsafe.Pointer(&pgrp))); errno != 0 {
		return 0, errno
	}
	return int(pgrp), nil
}

func tcsetpgrp(fd, pgrp int) error {
	p := int32(pgrp)
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), uintptr(syscall.TIOCSPGRP), uintptr(unsafe.Pointer(&p))); errno != 0 {
		return errno
	}
	return nil
}
