package store

import (
	"context"
	"fmt"
	"strings"
)

// CountHistory counts the events f selects, ignoring its Limit and Offset:
// the total behind a page of History.
func (s *Store) CountHistory(ctx context.Context, f HistoryFilter) (int, error) {
	var (
		where []string
		args  []any
	)
	if f.Host != "" {
		where, args = append(where, "host = ?"), append(args, f.Host)
	}
	if f.Container != "" {
		where, args = append(where, "container = ?"), append(args, f.Container)
	}
	if len(f.Kinds) > 0 {
		where = append(where, "kind IN (?"+strings.Repeat(", ?", len(f.Kinds)-1)+")")
		for _, k := range f.Kinds {
			args = append(args, k)
		}
	}
	if !f.Since.IsZero() {
		where, args = append(where, "at >= ?"), append(args, f.Since.UTC().UnixNano())
	}
	if !f.Until.IsZero() {
		where, args = append(where, "at < ?"), append(args, f.Until.UTC().UnixNano())
	}
	q := `SELECT COUNT(*) FROM events`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	var n int
	if err := s.db.QueryRowContext(ctx, q, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("counting history: %w", err)
	}
	return n, nil
}
