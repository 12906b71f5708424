package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/tidewatch/tidewatch/core"
)

// maxSecretFile bounds what a *_FILE variable may point to, so that a path
// like /dev/zero cannot exhaust memory.
const maxSecretFile = 64 << 10

// parseBool reads true/false/1/0/yes/no, case-insensitively.
func parseBool(s string) (v, ok bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "1", "yes":
		return true, true
	case "false", "0", "no":
		return false, true
	}
	return false, false
}

// parsePort reads a TCP port number.
func parsePort(s string) (int, bool) {
	p, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || p < 1 || p > 65535 {
		return 0, false
	}
	return p, true
}

func validName(n string) bool { return core.ValidName(n) }

// validHost reports whether h is a DNS name or an IP address (no scheme, no port).
func validHost(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	if net.ParseIP(h) != nil {
		return true
	}
	for _, label := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// normalizeRegistryURL turns "https://host[:port][/]", "host" or "host:port"
// into host[:port], lower-cased. It returns the problem when s is none of those.
func normalizeRegistryURL(s string) (string, string) {
	u := strings.TrimSpace(s)
	if scheme, rest, ok := strings.Cut(u, "://"); ok {
		if !strings.EqualFold(scheme, "https") {
			return "", "scheme " + quote(scheme) + " is not supported"
		}
		u = rest
	}
	u = strings.TrimSuffix(u, "/")
	if strings.ContainsAny(u, "/?#@") {
		return "", "not a registry host"
	}
	host, port := u, ""
	if h, p, err := net.SplitHostPort(u); err == nil {
		host, port = h, p
		if _, ok := parsePort(port); !ok {
			return "", "port " + quote(port) + " is not a port number"
		}
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if !validHost(host) {
		return "", "not a registry host"
	}
	host = strings.ToLower(host)
	if port == "" {
		if strings.Contains(host, ":") { // IPv6 literal
			return "[" + host + "]", ""
		}
		return host, ""
	}
	return net.JoinHostPort(host, port), ""
}

// validateCron parses a cron expression with the standard five-field parser,
// descriptors included, and checks that it fires: robfig/cron accepts dates
// that never come ("0 0 31 2 *", February 31st), whose next time is the zero
// time. It returns the problem and what was expected, or "", "".
func validateCron(spec string) (problem, expected string) {
	const want = `5 fields like "0 * * * *" or a descriptor like "@hourly"`
	// robfig/cron panics on some malformed time-zone prefixes ("TZ=UTC" alone).
	defer func() {
		if r := recover(); r != nil {
			problem, expected = "not a cron expression (malformed expression)", want
		}
	}()
	sched, err := cron.ParseStandard(spec)
	if err != nil {
		return "not a cron expression (" + clip(err.Error()) + ")", want
	}
	if sched.Next(time.Now()).IsZero() {
		return "never fires (no such date in the next five years, like February 31st)", "a schedule with dates that exist, like " + `"0 0 28 2 *"`
	}
	return "", ""
}

// checkReadableFile reports why path is not a readable regular file, or "".
func checkReadableFile(path string) string {
	fi, err := os.Stat(path)
	if err != nil {
		return "cannot read file (" + pathErrCause(err) + ")"
	}
	if !fi.Mode().IsRegular() {
		return "not a regular file"
	}
	f, err := os.Open(path)
	if err != nil {
		return "cannot read file (" + pathErrCause(err) + ")"
	}
	f.Close()
	return ""
}

// readSecretFile reads a secret from path, trimming trailing newlines. It
// returns the problem, never the contents, when it cannot.
func readSecretFile(path string) (string, string) {
	if p := checkReadableFile(path); p != "" {
		return "", p
	}
	f, err := os.Open(path)
	if err != nil {
		return "", "cannot read file (" + pathErrCause(err) + ")"
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	if err != nil {
		return "", "cannot read file (" + pathErrCause(err) + ")"
	}
	if len(b) > maxSecretFile {
		return "", fmt.Sprintf("file larger than %d KiB", maxSecretFile>>10)
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		return "", "file is empty"
	}
	return s, ""
}

// pathErrCause strips the path from an fs error: "permission denied".
func pathErrCause(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// distance is the Levenshtein distance between a and b, used to suggest the
// variable a typo meant.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
