package watch

import (
	"context"
	"fmt"
	"time"

	"github.com/tidewatch/tidewatch/core"
)

// readAge reads when p's candidate was created, if a cooldown needs it (the
// container's tidewatch.update.min-age, or Options.ReadCreated for the
// triggers' MIN_AGE). The candidate's digest comes first, by HEAD (free on
// Docker Hub): a tag pushed again is then a new candidate, whose wait starts
// again. Its creation time is remembered by repository@digest|platform, in
// memory and in the Memo, so that the manifest GETs it costs are paid once
// per candidate, never on a run where nothing changed. When the age cannot
// be read, the check says so in its note, and the cooldown counts from when
// tidewatch first saw the candidate (core.Update.AgeFrom).
func (w *Watcher) readAge(ctx context.Context, r *run, g *group, p *plan) {
	if p.policy.MinAge <= 0 && !w.opts.ReadCreated {
		return
	}
	digest := p.check.CandidateDigest
	if p.check.Kind != core.KindDigest || digest == "" {
		tag := p.check.Candidate
		if _, ok := g.cand[tag]; !ok {
			if g.cand == nil {
				g.cand = map[string]answer{}
			}
			d, err := w.shareDigest(ctx, r, g.ref.WithTag(tag))
			g.cand[tag] = answer{digest: d, err: err}
		}
		a := g.cand[tag]
		if a.err != nil {
			p.check.Note = joinNote(p.check.Note, fmt.Sprintf("age of %s unknown (%v): the cooldown counts from when it was first seen", tag, a.err))
			return
		}
		digest = a.digest
		p.check.CandidateDigest = digest
	}
	created, err := w.candidateCreated(ctx, r, p, digest)
	if err != nil {
		p.check.Note = joinNote(p.check.Note, fmt.Sprintf("age of %s unknown (%v): the cooldown counts from when it was first seen", p.check.Candidate, err))
		return
	}
	p.check.CandidateCreated = created
}

// answer is a digest a repository answered, or why it did not.
type answer struct {
	digest string
	err    error
}

// createdEntry is a candidate's creation time kept in memory, and the last
// run that needed it.
type createdEntry struct {
	at  time.Time
	run uint64
}

// candidateCreated returns when the image at digest in p's repository was
// created, for p's platform: from memory, the Memo, or the registry (once,
// through the Share). A config without a usable time (reproducible builds
// write 1970) gives the zero time, remembered as such.
func (w *Watcher) candidateCreated(ctx context.Context, r *run, p *plan, digest string) (time.Time, error) {
	key := p.ref.Repo() + "@" + digest + "|" + p.check.Container.Platform.String()
	w.mu.Lock()
	e, ok := w.created[key]
	if ok {
		w.created[key] = createdEntry{at: e.at, run: r.id}
	}
	w.mu.Unlock()
	if ok {
		return e.at, nil
	}
	if w.opts.Memo != nil {
		at, ok, err := w.opts.Memo.ImageCreated(ctx, key)
		if err != nil {
			w.log.Warn("reading a remembered creation time", "repo", p.ref.Repo(), "digest", digest, "error", err)
		} else if ok {
			w.keepCreated(key, at, r.id)
			return at, nil
		}
	}
	ref := core.ImageRef{Registry: p.ref.Registry, Repository: p.ref.Repository, Digest: digest}
	at, err := shareCall(ctx, w.opts.Share, "created "+key, w.opts.Host, r.start, func() (at time.Time, err error) {
		err = w.registry(ctx, r, func() (err error) {
			at, err = w.reg.Created(ctx, ref, p.check.Container.Platform)
			return err
		})
		return at, err
	})
	if err != nil {
		return time.Time{}, err
	}
	at = core.PlausibleCreated(at, w.opts.Now())
	w.keepCreated(key, at, r.id)
	if w.opts.Memo != nil {
		if err := w.opts.Memo.RememberImageCreated(ctx, key, at); err != nil {
			w.log.Warn("keeping a creation time", "repo", p.ref.Repo(), "digest", digest, "error", err)
		}
	}
	return at, nil
}

func (w *Watcher) keepCreated(key string, at time.Time, run uint64) {
	w.mu.Lock()
	w.created[key] = createdEntry{at: at, run: run}
	w.mu.Unlock()
}

// pruneCreated forgets the creation times full run run did not need (the
// Memo keeps them).
func (w *Watcher) pruneCreated(run uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for k, e := range w.created {
		if e.run != run {
			delete(w.created, k)
		}
	}
}
