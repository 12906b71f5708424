package store

import (
	"context"
	"fmt"
)

// CountHistory counts the events f selects, ignoring its Limit and Offset:
// the total behind a page of History.
func (s *Store) CountHistory(ctx context.Context, f HistoryFilter) (int, error) {
	where, args := f.where()
	q := `SELECT COUNT(*) FROM events` + where
	var n int
	if err := s.db.QueryRowContext(ctx, q, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("counting history: %w", err)
	}
	return n, nil
}
