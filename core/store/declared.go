package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tidewatch/tidewatch/core"
)

// closedDeclared closes the update row of a declared deploy as soon as it
// is written: it is no candidate on offer.
const closedDeclared = "declared"

// NewDeclared is a deploy of what a git source's compose files declare, to
// write to the outbox.
type NewDeclared struct {
	// Host is the watcher whose engine the trigger deploys to.
	Host string
	// Trigger is the deploying trigger instance, "type.name".
	Trigger string
	// Declared is the deploy.
	Declared core.Declared
	// Run makes the delivery distinct: the same Trigger, To and Run name the
	// same delivery, so that a deploy asked for again after a restart finds
	// the one it asked for before.
	Run string
	// From and To are the history's from and to (the commits, short).
	From, To string
	// Image is the image the files declare, for the history; "" when unknown.
	Image string
	// Labels are the service's labels as the files declare them, with
	// compose's project, service and working dir: what the trigger's policy
	// reads.
	Labels map[string]string
	// Principal is who asked ("git:<source>").
	Principal string
}

// EnqueueDeclared writes the delivery of a declared deploy to the outbox,
// pending, with the update and container rows it refers to, and returns it
// with its Update (status applying). Those rows are the service's, named
// "<project>/<service>" on Host (a name the engine gives no container),
// written gone and closed, so that they are never listed as running nor
// offered as an update. When the delivery of the same Trigger, To and Run
// exists already (asked for before a restart), that one is returned as it
// stands, and created is false: it is never enqueued twice.
func (s *Store) EnqueueDeclared(ctx context.Context, nd NewDeclared) (d Delivery, created bool, err error) {
	name := nd.Declared.Target()
	if nd.Trigger == "" || nd.Declared.Project == "" || nd.Declared.Service == "" || nd.Run == "" {
		return Delivery{}, false, fmt.Errorf("enqueuing declared deploy %s: trigger, project, service and run are required", name)
	}
	if strings.ContainsAny(nd.Declared.Project+nd.Declared.Service, "/\x00") {
		return Delivery{}, false, fmt.Errorf("enqueuing declared deploy %q: a project or service name holds '/' or NUL", name)
	}
	key := DeliveryKey(0, nd.Trigger, nd.To, core.EventUpdateAvailable, nd.Run)
	var id int64
	switch err := s.queryRow(ctx, `SELECT id FROM deliveries WHERE key = ?`, key).Scan(&id); {
	case err == nil:
		d, err := s.Delivery(ctx, id)
		return d, false, err
	case !errors.Is(err, sql.ErrNoRows):
		return Delivery{}, false, fmt.Errorf("enqueuing declared deploy %s: %w", name, err)
	}
	declared, err := json.Marshal(nd.Declared)
	if err != nil {
		return Delivery{}, false, fmt.Errorf("enqueuing declared deploy %s: %w", name, err)
	}
	labels := []byte("{}")
	if len(nd.Labels) > 0 {
		if labels, err = json.Marshal(nd.Labels); err != nil {
			return Delivery{}, false, fmt.Errorf("enqueuing declared deploy %s: %w", name, err)
		}
	}
	now := time.Now().UTC()
	tx, unlock, err := s.beginWrite(ctx)
	if err != nil {
		return Delivery{}, false, fmt.Errorf("enqueuing declared deploy %s: %w", name, err)
	}
	defer unlock()
	defer func() {
		if err != nil {
			err = errors.Join(err, rollback(tx))
		}
	}()
	var row, updateID int64
	if err := tx.QueryRowContext(ctx, `
		INSERT INTO containers (host, name, display_name, image, labels, first_seen, last_checked, gone_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (host, name) DO UPDATE SET image = excluded.image, labels = excluded.labels,
			last_checked = excluded.last_checked, gone_at = COALESCE(containers.gone_at, excluded.gone_at)
		RETURNING id`,
		nd.Host, name, name, nd.Image, string(labels), now.UnixNano(), now.UnixNano(), now.UnixNano()).Scan(&row); err != nil {
		return Delivery{}, false, fmt.Errorf("enqueuing declared deploy %s: %w", name, err)
	}
	if err := tx.QueryRowContext(ctx, `
		INSERT INTO updates (container, image, current_tag, candidate_tag, kind, status, status_at, first_seen, last_seen, closed_at, closed_as)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		RETURNING id`,
		row, nd.Image, nd.From, nd.To, string(core.KindGit), string(core.StatusApplying), now.UnixNano(),
		now.UnixNano(), now.UnixNano(), now.UnixNano(), closedDeclared).Scan(&updateID); err != nil {
		return Delivery{}, false, fmt.Errorf("enqueuing declared deploy %s: %w", name, err)
	}
	d, err = scanDelivery(tx.QueryRowContext(ctx, `
		INSERT INTO deliveries (update_id, trigger, candidate, event, run, key, event_detail, principal, declared,
			status, next_attempt_at, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, '', ?, ?, ?, ?, ?, ?)
		RETURNING `+deliveryColumns,
		updateID, nd.Trigger, nd.To, string(core.EventUpdateAvailable), nd.Run, key, nd.Principal, string(declared),
		string(DeliveryPending), now.UnixNano(), now.UnixNano(), now.UnixNano()), false)
	if err != nil {
		return Delivery{}, false, fmt.Errorf("enqueuing declared deploy %s to %s: %w", name, nd.Trigger, err)
	}
	if err := tx.Commit(); err != nil {
		return Delivery{}, false, fmt.Errorf("enqueuing declared deploy %s: %w", name, err)
	}
	d.Update = core.Update{ID: updateID, Host: nd.Host, ContainerName: name, DisplayName: name, Image: nd.Image,
		Current: nd.From, Candidate: nd.To, Kind: core.KindGit, Status: core.StatusApplying, FirstSeen: now, LastSeen: now,
		Labels: nd.Labels}
	return d, true, nil
}

// UnfinishedDeclared returns the IDs of the declared deploys to trigger
// asked for by principal ("git:<source>") that are not finished (pending or
// running), oldest first: what a source's deploy cut short by a stop left.
func (s *Store) UnfinishedDeclared(ctx context.Context, trigger, principal string) ([]int64, error) {
	rows, err := s.query(ctx, `SELECT id FROM deliveries
		WHERE status IN ('pending', 'running') AND trigger = ? AND principal = ? AND declared <> '' ORDER BY id`, trigger, principal)
	if err != nil {
		return nil, fmt.Errorf("listing unfinished declared deploys of %s: %w", principal, err)
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("listing unfinished declared deploys of %s: %w", principal, err)
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}
