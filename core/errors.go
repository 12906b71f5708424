package core

import "errors"

// Sentinel errors that callers branch on with errors.Is.
var (
	// ErrEmptyReference is returned when an image reference is empty.
	ErrEmptyReference = errors.New("empty image reference")
	// ErrNotFound is returned when a repository, tag or record does not exist.
	ErrNotFound = errors.New("not found")
	// ErrUnauthorized is returned when a registry refuses the credentials (or their absence).
	ErrUnauthorized = errors.New("unauthorized")
	// ErrRateLimited is returned when a registry answered 429 and the retry budget is spent.
	ErrRateLimited = errors.New("rate limited")
	// ErrUnavailable is returned when a registry or engine keeps failing (5xx, timeouts).
	ErrUnavailable = errors.New("unavailable")
)
