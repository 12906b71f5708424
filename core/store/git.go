package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/tidewatch/tidewatch/core/gitsync"
)

// The kinds of event a git source's sync records (host "git", container the
// source's name, to the commit).
const (
	// EventSynced: a new commit of a git source was deployed; the detail
	// names the services.
	EventSynced = "synced"
	// EventSyncFailed: a git source could not be synced (fetch, diff), or a
	// commit's deploy failed and was rolled back: the commit is marked
	// failed and not tried again until a newer one.
	EventSyncFailed = "sync-failed"
)

// GitState is the store's gitsync.State: what each git source deployed,
// and the commit that failed last.
type GitState struct{ s *Store }

var _ gitsync.State = GitState{}

// GitState returns the git sources' state, kept in the store.
func (s *Store) GitState() GitState { return GitState{s: s} }

// Get returns source's record; the zero Record when there is none.
func (g GitState) Get(ctx context.Context, source string) (gitsync.Record, error) {
	var (
		r  gitsync.Record
		at sql.NullInt64
	)
	err := g.s.queryRow(ctx, `SELECT deployed, failed, failed_reason, at FROM git_sources WHERE name = ?`, source).
		Scan(&r.Deployed, &r.Failed, &r.FailedReason, &at)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return gitsync.Record{}, nil
	case err != nil:
		return gitsync.Record{}, fmt.Errorf("reading the state of git source %s: %w", source, err)
	}
	if at.Valid {
		r.At = time.Unix(0, at.Int64).UTC()
	}
	return r, nil
}

// Put replaces source's record.
func (g GitState) Put(ctx context.Context, source string, r gitsync.Record) error {
	var at any
	if !r.At.IsZero() {
		at = r.At.UTC().UnixNano()
	}
	_, err := g.s.exec(ctx, `INSERT INTO git_sources (name, deployed, failed, failed_reason, at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET deployed = excluded.deployed, failed = excluded.failed,
			failed_reason = excluded.failed_reason, at = excluded.at`,
		source, r.Deployed, r.Failed, r.FailedReason, at)
	if err != nil {
		return fmt.Errorf("writing the state of git source %s: %w", source, err)
	}
	return nil
}
