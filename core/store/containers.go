package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/tidewatch/tidewatch/core"
)

// ContainerRecord is a container as the store last saw it.
type ContainerRecord struct {
	// Container is what the last check saw; Container.Host is the watcher's name.
	Container core.Container `json:"container"`
	// Repo is the normalised repository ("index.docker.io/library/nginx"), when known.
	Repo string `json:"repo,omitempty"`
	// Current and CurrentDigest describe what runs.
	Current       string `json:"current"`
	CurrentDigest string `json:"current_digest,omitempty"`
	// Note is the last check's note.
	Note string `json:"note,omitempty"`
	// FirstSeen is when the container was first recorded; LastChecked when it was last checked.
	FirstSeen   time.Time `json:"first_seen"`
	LastChecked time.Time `json:"last_checked"`
	// LastError is the last check's error, "" when it succeeded.
	LastError string `json:"last_error,omitempty"`
}

// Containers returns the containers present on host ("" for every host),
// sorted by host and name. Containers marked gone are left out.
func (s *Store) Containers(ctx context.Context, host string) ([]ContainerRecord, error) {
	q := `SELECT host, name, container_id, display_name, image, image_id, repo, current_tag, current_digest,
			repo_digests, labels, state, created_at, note, first_seen, last_checked, last_error, kind, service
		FROM containers WHERE gone_at IS NULL`
	var args []any
	if host != "" {
		q += ` AND host = ?`
		args = append(args, host)
	}
	q += ` ORDER BY host, name`
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("listing containers: %w", err)
	}
	defer rows.Close()
	var out []ContainerRecord
	for rows.Next() {
		var (
			r                             ContainerRecord
			digests, labels, kind, svc    string
			created, firstSeen, lastCheck sql.NullInt64
		)
		c := &r.Container
		if err := rows.Scan(&c.Host, &c.Name, &c.ID, &c.DisplayName, &c.Image, &c.ImageID, &r.Repo, &r.Current, &r.CurrentDigest,
			&digests, &labels, &c.State, &created, &r.Note, &firstSeen, &lastCheck, &r.LastError, &kind, &svc); err != nil {
			return nil, fmt.Errorf("listing containers: %w", err)
		}
		c.Kind = core.ObjectKind(kind)
		if svc != "" {
			c.Service = &core.Service{}
			if err := json.Unmarshal([]byte(svc), c.Service); err != nil {
				return nil, fmt.Errorf("listing containers: service of %s: %w", c.Name, err)
			}
		}
		if err := json.Unmarshal([]byte(digests), &c.RepoDigests); err != nil {
			return nil, fmt.Errorf("listing containers: repo digests of %s: %w", c.Name, err)
		}
		if err := json.Unmarshal([]byte(labels), &c.Labels); err != nil {
			return nil, fmt.Errorf("listing containers: labels of %s: %w", c.Name, err)
		}
		if len(c.RepoDigests) == 0 {
			c.RepoDigests = nil
		}
		if len(c.Labels) == 0 {
			c.Labels = nil
		}
		c.Created, r.FirstSeen, r.LastChecked = fromNanos(created), fromNanos(firstSeen), fromNanos(lastCheck)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing containers: %w", err)
	}
	return out, nil
}

// MarkGone marks the containers of host whose engine ID is not in keepIDs
// as gone at at (now when zero): they leave Containers, their open update is
// closed (unless it is being applied), and a "gone" event is recorded. Call it after a full run with the
// IDs of every container the host listed. A container seen again by
// RecordRun is present again.
func (s *Store) MarkGone(ctx context.Context, host string, keepIDs []string, at time.Time) (err error) {
	if at.IsZero() {
		at = time.Now()
	}
	at = at.UTC()
	keep := make(map[string]bool, len(keepIDs))
	for _, id := range keepIDs {
		keep[id] = true
	}
	tx, unlock, err := s.beginWrite(ctx)
	if err != nil {
		return fmt.Errorf("marking gone containers on %s: %w", host, err)
	}
	defer unlock()
	defer func() {
		if err != nil {
			err = errors.Join(err, rollback(tx))
		}
	}()
	if err := markGone(ctx, tx, host, keep, at); err != nil {
		return fmt.Errorf("marking gone containers on %s: %w", host, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("marking gone containers on %s: %w", host, err)
	}
	return nil
}

// markGone marks the containers of host whose engine ID is not in keep as
// gone, closes their open updates and records EventGone, in tx.
func markGone(ctx context.Context, tx querier, host string, keep map[string]bool, at time.Time) error {
	rows, err := tx.QueryContext(ctx, `
		SELECT id, name, container_id, CASE WHEN repo <> '' THEN repo ELSE image END
		FROM containers WHERE host = ? AND gone_at IS NULL`, host)
	if err != nil {
		return fmt.Errorf("reading the containers: %w", err)
	}
	var goners []gone
	for rows.Next() {
		var g gone
		var cid string
		if err := rows.Scan(&g.id, &g.name, &cid, &g.image); err != nil {
			rows.Close()
			return fmt.Errorf("reading the containers: %w", err)
		}
		if !keep[cid] {
			goners = append(goners, g)
		}
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return fmt.Errorf("reading the containers: %w", err)
	}
	return markGoneRows(ctx, tx, host, goners, at)
}

// gone is a container row of host to mark gone.
type gone struct {
	id          int64
	name, image string
}

// markGoneRows marks goners gone, closes their open updates (unless being
// applied) and records EventGone for each, in tx.
func markGoneRows(ctx context.Context, tx querier, host string, goners []gone, at time.Time) error {
	for _, g := range goners {
		if _, err := tx.ExecContext(ctx, `UPDATE containers SET gone_at = ? WHERE id = ?`, at.UnixNano(), g.id); err != nil {
			return fmt.Errorf("marking %s gone: %w", g.name, err)
		}
		// An update being applied stays open: its container is the
		// rollout's to replace, rename aside and maybe bring back, and the
		// rollout's outcome lands on that update.
		if _, err := tx.ExecContext(ctx, `UPDATE updates SET closed_at = ?, closed_as = ? WHERE container = ? AND closed_at IS NULL AND status <> ?`,
			at.UnixNano(), closedGone, g.id, string(core.StatusApplying)); err != nil {
			return fmt.Errorf("closing the update of %s: %w", g.name, err)
		}
		ev := event{at: at, host: host, container: g.name, image: g.image, kind: EventGone}
		if err := ev.insert(ctx, tx); err != nil {
			return err
		}
	}
	return nil
}
