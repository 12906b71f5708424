package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// ImageCreated returns the creation time remembered under key
// ("repo@digest|platform"), and whether one was; a zero time remembered
// means the image's config held no usable one.
func (s *Store) ImageCreated(ctx context.Context, key string) (time.Time, bool, error) {
	var created sql.NullInt64
	err := s.queryRow(ctx, `SELECT created FROM image_created WHERE key = ?`, key).Scan(&created)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return time.Time{}, false, nil
	case err != nil:
		return time.Time{}, false, fmt.Errorf("reading the creation time of %s: %w", key, err)
	}
	return fromNanos(created), true, nil
}

// RememberImageCreated keeps the creation time of the image under key (the
// zero time: its config held none).
func (s *Store) RememberImageCreated(ctx context.Context, key string, created time.Time) error {
	if _, err := s.exec(ctx, `INSERT INTO image_created (key, created, read_at) VALUES (?, ?, ?)
		ON CONFLICT (key) DO UPDATE SET created = excluded.created, read_at = excluded.read_at`,
		key, nanos(created), time.Now().UTC().UnixNano()); err != nil {
		return fmt.Errorf("keeping the creation time of %s: %w", key, err)
	}
	return nil
}
