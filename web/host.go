package web

import (
	"net"
	"net/http"
	"slices"
	"strings"

	"github.com/tidewatch/tidewatch/core"
)

// private keeps a server without authentication private to this machine.
// Such a server trusts whoever reaches it, which on a loopback address is
// this machine's users, but also any web page a browser here opens whose
// domain resolves to 127.0.0.1 (DNS rebinding): to the browser that page and
// the API are one origin, so neither CORS nor CrossOriginProtection stops it.
// What the browser cannot forge is the Host header, which names the page's
// domain: a request is answered only when Host names loopback (127.0.0.0/8,
// ::1, localhost) or one of allowedHosts (the configured address and
// TIDEWATCH_SERVER_ALLOWED_HOSTS), whatever its method. A request carrying
// Forwarded, X-Forwarded-* or X-Real-Ip came through a proxy, so the server
// is not private: it is refused too, until authentication is on. With
// authentication on, requests pass: credentials are the guard.
func (s *Server) private(next http.Handler) http.Handler {
	if s.auth.enabled() {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h := proxyHeader(r.Header); h != "" {
			s.writeError(w, r, &Error{Status: http.StatusForbidden, Code: "proxied",
				Message: "a request through a proxy (it carries " + h + ") needs authentication, which is off: " +
					"set TIDEWATCH_SERVER_AUTH_USERS or TIDEWATCH_SERVER_API_TOKENS"})
			return
		}
		if !s.allowedHost(r.Host) {
			s.writeError(w, r, &Error{Status: http.StatusForbidden, Code: "host_not_allowed",
				Message: "this Host is not this server's: without authentication only loopback names (127.0.0.1, [::1], localhost), " +
					"TIDEWATCH_SERVER_ADDRESS and TIDEWATCH_SERVER_ALLOWED_HOSTS are answered"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// proxyHeader returns the name of a header that a proxy adds, "" when r has none.
func proxyHeader(h http.Header) string {
	for k := range h {
		if k == "Forwarded" || k == "X-Real-Ip" || strings.HasPrefix(k, "X-Forwarded-") {
			return k
		}
	}
	return ""
}

// allowedHost reports whether a Host header ("name", "name:port",
// "[v6]:port") names loopback or one of s.allowedHosts.
func (s *Server) allowedHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	if core.IsLoopback(host) {
		return true
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	return host != "" && slices.Contains(s.allowedHosts, host)
}
