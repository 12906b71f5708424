// Package core holds the domain types that every part of tidewatch shares:
// containers and their image references, updates and their kinds, and the
// sentinel errors callers branch on. It does no I/O and imports nothing of
// ours, so every other package can depend on it.
package core
