package store

import (
	"context"
	"fmt"
	"time"
)

// AddEvent appends e to the history as it is (ID is ignored; a zero At is
// now; an empty Actor is ctx's, see WithActor), for what happens outside a
// watch run or a delivery: a deploy asked for by CI through the API.
func (s *Store) AddEvent(ctx context.Context, e Event) error {
	if e.At.IsZero() {
		e.At = time.Now()
	}
	if e.Actor == "" {
		e.Actor = ActorFrom(ctx)
	}
	if e.Kind == "" {
		return fmt.Errorf("recording an event: its kind is required")
	}
	_, err := s.exec(ctx, `
		INSERT INTO events (at, host, container, image, kind, from_ref, to_ref, update_kind, update_id, detail, actor)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?)`,
		e.At.UTC().UnixNano(), e.Host, e.Container, e.Image, e.Kind, e.From, e.To, string(e.UpdateKind), e.Detail, e.Actor)
	if err != nil {
		return fmt.Errorf("recording %s event: %w", e.Kind, err)
	}
	return nil
}
