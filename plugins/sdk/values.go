package sdk

import (
	"crypto/x509"
	"os"
	"strings"
)

// Pair is one NAME=VALUE entry of a list option such as HEADERS or ENV.
type Pair struct {
	// Index is the entry's position, from 1, for messages that must not
	// show values (the option may be secret).
	Index int
	// Name and Value are the entry's parts, trimmed.
	Name, Value string
	// OK is false for an entry without '='.
	OK bool
}

// Pairs splits s into NAME=VALUE entries, separated by newlines when s holds
// one (so that a value may hold commas), else by commas; blank entries are
// skipped.
func Pairs(s string) []Pair {
	if strings.TrimSpace(s) == "" {
		return nil
	}
	sep := ","
	if strings.Contains(s, "\n") {
		sep = "\n"
	}
	var out []Pair
	for i, entry := range strings.Split(s, sep) {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		name, value, ok := strings.Cut(entry, "=")
		out = append(out, Pair{Index: i + 1, Name: strings.TrimSpace(name), Value: strings.TrimSpace(value), OK: ok})
	}
	return out
}

// CertPool reads the option as the path of a PEM file of CA certificates
// (TLS_CAFILE) and returns them as a pool, nil when the option is not set;
// it records an error when the file cannot be read or holds no certificate.
func (o *Options) CertPool(name string) *x509.CertPool {
	path := o.String(name)
	if path == "" {
		return nil
	}
	pem, err := os.ReadFile(path)
	if err != nil {
		o.Add(name, "reading %s: %v", path, err)
		return nil
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		o.Add(name, "%s holds no PEM certificate", path)
		return nil
	}
	return pool
}
