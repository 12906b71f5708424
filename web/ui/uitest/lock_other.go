//go:build !unix

package uitest

import "errors"

// lock is not supported here: chromium is installed with apt-get on Debian only.
func lock(string) (func(), error) {
	return nil, errors.New("installing chromium needs a Unix system with apt-get")
}
