package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// A run writes only what changed. Most containers of a run look as they did
// the run before: the same image, labels and state, the same open update.
// Their rows are not written again; only their last_checked (and their open
// update's last_seen) move, in a few multi-row statements at the end of the
// run's transaction. What the store held is read at once for the whole host
// (readPriors), and each container's new columns are compared with it.

// prior is what the store held of a container before a run wrote it: its
// row and its open update (nil when none).
type prior struct {
	row                        int64
	name, containerID          string
	displayName, image         string
	imageID, repo              string
	currentTag, currentDigest  string
	repoDigests, labels, state string
	created                    sql.NullInt64
	note, lastError            string
	kind, service              string
	lastChecked                int64
	gone                       bool
	open                       *openUpdate // &update when there is one
	update                     openUpdate
}

// priorQuery reads containers with their open update; the caller adds the
// WHERE clause on c.
const priorQuery = `
	SELECT c.id, c.name, c.container_id, c.display_name, c.image, c.image_id, c.repo, c.current_tag, c.current_digest,
		c.repo_digests, c.labels, c.state, c.created_at, c.note, c.last_error, c.kind, c.service,
		c.last_checked, c.gone_at IS NOT NULL,
		COALESCE(u.id, 0), COALESCE(u.image, ''), COALESCE(u.current_tag, ''), COALESCE(u.current_digest, ''),
		COALESCE(u.candidate_tag, ''), COALESCE(u.candidate_digest, ''), COALESCE(u.kind, ''), COALESCE(u.link, ''),
		COALESCE(u.status, ''), u.first_seen, u.candidate_created
	FROM containers c LEFT JOIN updates u ON u.container = c.id AND u.closed_at IS NULL`

func scanPrior(rows *sql.Rows) (*prior, error) {
	p := &prior{}
	u := &p.update
	if err := rows.Scan(&p.row, &p.name, &p.containerID, &p.displayName, &p.image, &p.imageID, &p.repo, &p.currentTag, &p.currentDigest,
		&p.repoDigests, &p.labels, &p.state, &p.created, &p.note, &p.lastError, &p.kind, &p.service,
		&p.lastChecked, &p.gone,
		&u.id, &u.image, &u.current, &u.currentDigest, &u.candidate, &u.candidateDigest, &u.kind, &u.link,
		&u.status, &u.firstSeen, &u.candidateCreated); err != nil {
		return nil, err
	}
	if u.id != 0 {
		p.open = u
	}
	return p, nil
}

// readPriors reads every container of host the store holds (gone ones too),
// by name.
func readPriors(ctx context.Context, tx querier, host string) (map[string]*prior, error) {
	rows, err := tx.QueryContext(ctx, priorQuery+` WHERE c.host = ?`, host)
	if err != nil {
		return nil, fmt.Errorf("reading the containers: %w", err)
	}
	defer rows.Close()
	out := map[string]*prior{}
	for rows.Next() {
		p, err := scanPrior(rows)
		if err != nil {
			return nil, fmt.Errorf("reading the containers: %w", err)
		}
		out[p.name] = p
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading the containers: %w", err)
	}
	return out, nil
}

// readPrior reads container name of host; nil when the store never held it.
func readPrior(ctx context.Context, tx querier, host, name string) (*prior, error) {
	rows, err := tx.QueryContext(ctx, priorQuery+` WHERE c.host = ? AND c.name = ?`, host, name)
	if err != nil {
		return nil, fmt.Errorf("reading container: %w", err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("reading container: %w", err)
		}
		return nil, nil
	}
	p, err := scanPrior(rows)
	if err != nil {
		return nil, fmt.Errorf("reading container: %w", err)
	}
	return p, rows.Close()
}

// touches are the writes a run defers to its end: the last_checked of
// containers whose row did not change otherwise, the last_seen of open
// updates that did not change otherwise.
type touches struct {
	checked []int64 // pairs: row, last_checked
	seen    []int64 // update IDs, all seen at the run's time
}

// Statement sizes of the deferred writes, largest first: a run's touches go
// in as few statements as these make, each prepared once.
var touchChunks = []int{128, 16, 1}

// flush writes the touches in tx; seen is the run's time.
func (t *touches) flush(ctx context.Context, tx querier, seen int64) error {
	for rest := t.checked; len(rest) > 0; {
		n := chunk(len(rest) / 2)
		args := make([]any, 0, 2*n)
		for _, v := range rest[:2*n] {
			args = append(args, v)
		}
		if _, err := tx.ExecContext(ctx, touchCheckedQuery(n), args...); err != nil {
			return fmt.Errorf("saving when containers were checked: %w", err)
		}
		rest = rest[2*n:]
	}
	for rest := t.seen; len(rest) > 0; {
		n := chunk(len(rest))
		args := make([]any, 0, n+1)
		args = append(args, seen)
		for _, v := range rest[:n] {
			args = append(args, v)
		}
		if _, err := tx.ExecContext(ctx, touchSeenQuery(n), args...); err != nil {
			return fmt.Errorf("saving when updates were seen: %w", err)
		}
		rest = rest[n:]
	}
	t.checked, t.seen = t.checked[:0], t.seen[:0]
	return nil
}

// chunk is the largest statement size of touchChunks that n fills.
func chunk(n int) int {
	for _, c := range touchChunks {
		if n >= c {
			return c
		}
	}
	return n
}

func touchCheckedQuery(n int) string {
	return `UPDATE containers SET last_checked = v.column2
		FROM (VALUES ` + strings.TrimSuffix(strings.Repeat("(?, ?), ", n), ", ") + `) AS v
		WHERE containers.id = v.column1`
}

func touchSeenQuery(n int) string {
	return `UPDATE updates SET last_seen = ? WHERE id IN (` + strings.TrimSuffix(strings.Repeat("?, ", n), ", ") + `)`
}

// appendJSONObject appends m as a JSON object, keys sorted, exactly as
// encoding/json marshals a map[string]string (nil as {}); keys is a
// scratch slice, returned for reuse.
func appendJSONObject(dst []byte, m map[string]string, keys []string) ([]byte, []string) {
	keys = keys[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	dst = append(dst, '{')
	for i, k := range keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendJSONString(dst, k)
		dst = append(dst, ':')
		dst = appendJSONString(dst, m[k])
	}
	return append(dst, '}'), keys
}

// appendJSONArray appends s as a JSON array of strings, exactly as
// encoding/json marshals a []string (nil as []).
func appendJSONArray(dst []byte, s []string) []byte {
	dst = append(dst, '[')
	for i, v := range s {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendJSONString(dst, v)
	}
	return append(dst, ']')
}

// appendJSONString appends s as a JSON string, as encoding/json writes it:
// <, > and & escaped for HTML, control characters escaped, invalid UTF-8
// replaced by U+FFFD, U+2028 and U+2029 escaped.
func appendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' && b != '<' && b != '>' && b != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[b>>4], hex[b&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
