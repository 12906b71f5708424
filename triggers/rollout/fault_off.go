//go:build !faulthook

package rollout

// FaultsCompiled reports whether this binary was built with the faulthook
// tag (test builds only; see fault_on.go).
const FaultsCompiled = false

// Fault is a test-only hook: in a binary built with the faulthook tag it
// stops the rollout for good at point when the test's fault file says so.
// Here it does nothing.
func Fault(point string) {}

// FaultHost returns host: only a faulthook build puts a fault proxy
// between a trigger and its engine.
func FaultHost(host string) string { return host }
