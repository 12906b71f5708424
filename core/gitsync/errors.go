package gitsync

import (
	"errors"
	"fmt"
	"strings"
)

// Errors callers branch on. Every error this package returns that matches
// one of them does so through errors.Is.
var (
	// ErrNotWorkTree: the file does not lie in a git work tree. It is the
	// common case, found with a few stat calls.
	ErrNotWorkTree = errors.New("not in a git work tree")
	// ErrDetached: the work tree's HEAD is not on a branch, so there is no
	// branch to commit to.
	ErrDetached = errors.New("HEAD is not on a branch")
	// ErrNoUpstream: the branch has no tracking branch to push to.
	ErrNoUpstream = errors.New("branch has no upstream (branch.<name>.remote and .merge)")
	// ErrBusy: another git process holds the repository's index.lock.
	ErrBusy = errors.New("repository is busy: another git process holds its index.lock")
	// ErrConflict: the change cannot be applied without losing someone's
	// work; see *ConflictError for what and where.
	ErrConflict = errors.New("git conflict")
	// ErrTooLarge: a file or request body is larger than the bound this
	// package reads.
	ErrTooLarge = errors.New("too large")
)

// ConflictError reports a change that could not be committed, rebased or
// checked out without losing work. Nothing was lost when it is returned: the
// work tree is as it was (a commit already made stays on the local branch).
type ConflictError struct {
	// WorkTree is the work tree (or clone) folder.
	WorkTree string
	// Branch is the local branch.
	Branch string
	// Local is the local commit; Remote the remote head it met (may be empty).
	Local, Remote string
	// Paths are the files in conflict, relative to the work tree, with slashes.
	Paths []string
	// Reason says what conflicts, in a few words.
	Reason string
}

// Error reads "git conflict on main in /srv/app (compose.yaml): reason".
func (e *ConflictError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "git conflict on %s in %s", e.Branch, e.WorkTree)
	if len(e.Paths) > 0 {
		fmt.Fprintf(&b, " (%s)", strings.Join(e.Paths, ", "))
	}
	b.WriteString(": ")
	b.WriteString(e.Reason)
	return b.String()
}

// Is makes errors.Is(err, ErrConflict) true.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }
