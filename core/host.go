package core

import (
	"net"
	"strings"
)

// IsLoopback reports whether host names this machine only: "localhost" or a
// loopback IP (127.0.0.0/8, ::1, ::ffff:127.x), given with or without a
// port, in brackets or not, with or without a trailing dot, in any case.
func IsLoopback(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	host = strings.TrimSuffix(host, ".")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
