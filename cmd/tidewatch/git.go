package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/tidewatch/tidewatch/core"
	"github.com/tidewatch/tidewatch/core/config"
	"github.com/tidewatch/tidewatch/core/gitsync"
	"github.com/tidewatch/tidewatch/core/store"
	"github.com/tidewatch/tidewatch/triggers"
)

// commitTimeout bounds one commit and its push.
const commitTimeout = 5 * time.Minute

// gitCommits commits the files that applied rollouts rewrote, in the git
// work trees configured for it (TIDEWATCH_GIT_<name>_WORKTREE), records
// each commit in the history, and tells the triggers listening for
// commit-failed when one cannot be made or pushed.
type gitCommits struct {
	keeper *gitsync.Keeper
	st     *store.Store
	disp   *triggers.Dispatcher // set once the dispatcher exists
	log    *slog.Logger
	wg     sync.WaitGroup
	one    sync.Mutex // one commit at a time: they are rare, and git is not fast
}

// newGitCommits returns the committer of cfg's work trees, nil when none is configured.
func newGitCommits(cfg config.Config, st *store.Store, log *slog.Logger) (*gitCommits, error) {
	var trees []gitsync.WorkTree
	for _, g := range cfg.Git {
		if !g.IsSource() && g.WorkTree != "" {
			trees = append(trees, gitsync.WorkTree{Name: g.Name, Root: g.WorkTree, Config: g.CommitConfig()})
		}
	}
	if len(trees) == 0 {
		return nil, nil
	}
	k, err := gitsync.NewKeeper(trees, log)
	if err != nil {
		return nil, fmt.Errorf("TIDEWATCH_GIT_<name>_WORKTREE: %w", err)
	}
	return &gitCommits{keeper: k, st: st, log: log.With("component", "git")}, nil
}

// rolledOut takes a rollout's final outcome (the dispatcher's rollout
// observer): an applied one that rewrote files is committed, in the
// background, also after ctx ends (the daemon waits for it when it stops).
func (g *gitCommits) rolledOut(ctx context.Context, u core.Update, r core.Rollout) {
	if r.Outcome != core.OutcomeApplied || len(r.Files) == 0 {
		return
	}
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		g.one.Lock()
		defer g.one.Unlock()
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
		defer cancel()
		g.commit(ctx, u, r)
	}()
}

// commit commits r's files and records what happened.
func (g *gitCommits) commit(ctx context.Context, u core.Update, r core.Rollout) {
	ch := gitsync.Change{Container: u.DisplayName, From: u.CurrentRef(), To: u.CandidateRef(), Kind: string(u.Kind), Outcome: string(r.Outcome)}
	for _, f := range r.Files {
		if f.Backup == "" {
			continue
		}
		before, err := gitsync.ReadBackup(f.Backup)
		if err != nil {
			g.failed(ctx, u, fmt.Errorf("committing %s: %w", f.Path, err))
			return
		}
		ch.Files = append(ch.Files, gitsync.FileChange{Path: f.Path, Before: before})
	}
	results, err := g.keeper.Commit(ctx, ch)
	if errors.Is(err, gitsync.ErrNotWorkTree) {
		return // not in a configured work tree: nothing to keep
	}
	for _, res := range results {
		if res.Commit == "" {
			continue
		}
		detail := fmt.Sprintf("commit %s on %s in %s: %s", shortCommit(res.Commit), res.Branch, res.WorkTree, strings.Join(res.Files, ", "))
		switch {
		case res.Pushed && res.Rebased:
			detail += "; rebased on the remote's new commits and pushed to " + res.Remote
		case res.Pushed:
			detail += "; pushed to " + res.Remote
		}
		g.record(ctx, u, store.EventCommitted, detail)
	}
	if err != nil {
		g.failed(ctx, u, err)
	}
}

// failed records and notifies a commit that could not be made or pushed.
func (g *gitCommits) failed(ctx context.Context, u core.Update, err error) {
	g.log.Error("committing a rollout's rewrite", "container", u.ContainerName, "error", err)
	detail := err.Error()
	g.record(ctx, u, string(core.EventCommitFailed), detail)
	if g.disp != nil {
		if nerr := g.disp.NotifyEvent(ctx, u, core.EventCommitFailed, detail); nerr != nil {
			g.log.Error("notifying a failed commit", "error", nerr)
		}
	}
}

func (g *gitCommits) record(ctx context.Context, u core.Update, kind, detail string) {
	e := store.Event{Host: u.Host, Container: u.ContainerName, Image: u.Image, Kind: kind, From: u.CurrentRef(), To: u.CandidateRef(),
		UpdateKind: u.Kind, UpdateID: u.ID, Detail: detail}
	if err := g.st.AddEvent(ctx, e); err != nil {
		g.log.Error("recording a commit in the history", "error", err)
	}
}

// wait waits for the commits in flight, at shutdown.
func (g *gitCommits) wait() {
	if g != nil {
		g.wg.Wait()
	}
}

func shortCommit(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
