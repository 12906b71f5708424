package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Resolution returns what resolving the digest named by key answered, and
// ok=false when it was never resolved.
func (s *Store) Resolution(ctx context.Context, key string) (same, ok bool, err error) {
	var v int
	err = s.db.QueryRowContext(ctx, `SELECT same FROM resolutions WHERE key = ?`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return false, false, nil
	}
	if err != nil {
		return false, false, fmt.Errorf("reading digest resolution: %w", err)
	}
	return v == 1, true, nil
}

// RememberResolution keeps what resolving the digest named by key answered.
func (s *Store) RememberResolution(ctx context.Context, key string, same bool) error {
	v := 0
	if same {
		v = 1
	}
	_, err := s.exec(ctx, `INSERT INTO resolutions (key, same, resolved_at) VALUES (?, ?, ?)
		ON CONFLICT (key) DO UPDATE SET same = excluded.same, resolved_at = excluded.resolved_at`, key, v, time.Now().UTC().UnixNano())
	if err != nil {
		return fmt.Errorf("keeping digest resolution: %w", err)
	}
	return nil
}
