//go:build unix

package host

import (
	"fmt"
	"os"
	"syscall"
)

// trusted checks that path (a file or folder) can be changed only by
// tidewatch's user or root: not group- or world-writable, owned by one of
// them. A sticky folder (/tmp) is no excuse: whoever may write there may
// place a plugin.
func trusted(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		return fmt.Errorf("it is writable by its group or by everyone (mode %04o); make it writable by its owner only (chmod go-w)", perm)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	if uid := uint32(os.Geteuid()); st.Uid != uid && st.Uid != 0 {
		return fmt.Errorf("it is owned by user %d, neither tidewatch's (%d) nor root; chown it to one of them", st.Uid, uid)
	}
	return nil
}
