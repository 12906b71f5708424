//go:build !unix

package host

import (
	"fmt"
	"os"
)

// trusted checks that path is not group- or world-writable; ownership is a
// Unix notion and not checked here.
func trusted(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		return fmt.Errorf("it is writable by its group or by everyone (mode %04o)", perm)
	}
	return nil
}
