package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// FileName is the database file inside the store's folder.
const FileName = "tidewatch.db"

// BusyTimeout is how long a write waits for another writer before failing.
const BusyTimeout = 10 * time.Second

//go:embed migrations/*.sql
var migrations embed.FS

// Store keeps tidewatch's state in one SQLite database. It is safe for
// concurrent use; writes are serialised by SQLite (each transaction takes the
// write lock when it begins, and waits up to BusyTimeout for it).
type Store struct {
	db *sql.DB

	stmtMu sync.Mutex
	stmts  map[string]*sql.Stmt // prepared hot statements, by query text

	// writeMu serialises this process's writes, so that they queue in Go
	// rather than in SQLite's busy handler, which sleeps in steps of
	// milliseconds (another process still waits there, up to BusyTimeout).
	writeMu sync.Mutex
	version atomic.Uint64 // counts writes, for readers that cache (Version)

	// writeAll makes a run write every container's row, changed or not,
	// as before runs wrote only what changed: the tests compare the two.
	writeAll bool

	stop     chan struct{} // closed by Close
	stopOnce sync.Once
	wg       sync.WaitGroup // the checkpointer
}

// CheckpointInterval is how often the write-ahead log is copied back into
// the database, in the background.
const CheckpointInterval = 10 * time.Second

// checkpoints copies the write-ahead log into the database every
// CheckpointInterval until stop is closed. A PASSIVE checkpoint does not block
// writers, so its fsync never lands in a delivery's latency, as SQLite's
// automatic checkpoint (run by whichever commit crosses 1,000 pages) would.
func (s *Store) checkpoints() {
	defer s.wg.Done()
	t := time.NewTicker(CheckpointInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), CheckpointInterval)
			s.db.ExecContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`) // best effort; Close truncates
			cancel()
		}
	}
}

// beginWrite begins a write transaction, holding writeMu until done is called.
func (s *Store) beginWrite(ctx context.Context) (tx *sql.Tx, done func(), err error) {
	s.writeMu.Lock()
	tx, err = s.db.BeginTx(ctx, nil)
	if err != nil {
		s.writeMu.Unlock()
		return nil, nil, err
	}
	return tx, func() { s.version.Add(1); s.writeMu.Unlock() }, nil
}

// Version counts the store's writes: what was read at one version holds
// until it moves. A write by another process is not counted.
func (s *Store) Version() uint64 { return s.version.Load() }

// maxStmts bounds the prepared-statement cache (queries vary only by the
// arity of their IN lists).
const maxStmts = 128

// prepared returns the statement for q, prepared once per Store: SQLite
// spends more time parsing the outbox's queries than running them.
func (s *Store) prepared(ctx context.Context, q string) (*sql.Stmt, bool, error) {
	s.stmtMu.Lock()
	defer s.stmtMu.Unlock()
	if st, ok := s.stmts[q]; ok {
		return st, true, nil
	}
	if len(s.stmts) >= maxStmts || s.stmts == nil {
		return nil, false, nil // the caller runs q unprepared
	}
	st, err := s.db.PrepareContext(ctx, q)
	if err != nil {
		return nil, false, err
	}
	s.stmts[q] = st
	return st, true, nil
}

// query runs q through the statement cache.
func (s *Store) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	st, cached, err := s.prepared(ctx, q)
	if err != nil {
		return nil, err
	}
	if !cached {
		return s.db.QueryContext(ctx, q, args...)
	}
	return st.QueryContext(ctx, args...)
}

// exec runs the write q through the statement cache, under writeMu.
func (s *Store) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	defer s.version.Add(1)
	st, cached, err := s.prepared(ctx, q)
	if err != nil {
		return nil, err
	}
	if !cached {
		return s.db.ExecContext(ctx, q, args...)
	}
	return st.ExecContext(ctx, args...)
}

// writeRows runs the write q (one with RETURNING) through the statement
// cache, under writeMu, and calls scan for each row it returns.
func (s *Store) writeRows(ctx context.Context, scan func(*sql.Rows) error, q string, args ...any) (err error) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	defer s.version.Add(1)
	rows, err := s.query(ctx, q, args...)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, rows.Close()) }()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// row is a *sql.Row-like result of queryRow, whose statement may need closing.
type row struct {
	rows *sql.Rows
	err  error
}

// Scan reads the first row into dest, like (*sql.Row).Scan.
func (r row) Scan(dest ...any) error {
	if r.err != nil {
		return r.err
	}
	defer r.rows.Close()
	if !r.rows.Next() {
		if err := r.rows.Err(); err != nil {
			return err
		}
		return sql.ErrNoRows
	}
	if err := r.rows.Scan(dest...); err != nil {
		return err
	}
	return r.rows.Close()
}

// queryRow runs q through the statement cache, for one row.
func (s *Store) queryRow(ctx context.Context, q string, args ...any) row {
	rows, err := s.query(ctx, q, args...)
	return row{rows: rows, err: err}
}

// txStmt returns q's cached statement bound to tx; close it after use.
func (s *Store) txStmt(ctx context.Context, tx *sql.Tx, q string) (*sql.Stmt, error) {
	st, cached, err := s.prepared(ctx, q)
	if err != nil {
		return nil, err
	}
	if !cached {
		return tx.PrepareContext(ctx, q)
	}
	return tx.StmtContext(ctx, st), nil
}

// Open opens the database in dir, creating dir (mode 0750) and the database
// when they do not exist, and brings its schema up to date. Opening a folder
// that holds a database keeps its data.
func Open(ctx context.Context, dir string) (*Store, error) {
	if strings.ContainsAny(dir, "?\x00") {
		return nil, fmt.Errorf("opening store in %q: the folder name may not contain '?' or NUL", dir)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("creating store folder: %w", err)
	}
	path := filepath.Join(dir, FileName)
	dsn := path + "?" + strings.Join([]string{
		"_pragma=busy_timeout(" + strconv.FormatInt(BusyTimeout.Milliseconds(), 10) + ")",
		"_pragma=journal_mode(WAL)",
		// In WAL mode, NORMAL survives a crash of the process (kill -9): only
		// a power loss can take the last commits, which the outbox copes
		// with by firing again under the same idempotency key. FULL would
		// cost an fsync per commit, twice per delivery.
		"_pragma=synchronous(NORMAL)",
		// Checkpoints (which fsync) run in the background, not in the
		// commit that happens to cross the WAL's size: see checkpoints.
		"_pragma=wal_autocheckpoint(0)",
		"_pragma=foreign_keys(1)",
		"_txlock=immediate",
	}, "&")
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("opening store %s: %w", path, err)
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("opening store %s: %w", path, err)
	}
	if err := migrate(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("migrating store %s: %w", path, err)
	}
	s := &Store{db: db, stmts: map[string]*sql.Stmt{}, stop: make(chan struct{})}
	s.wg.Add(1)
	go s.checkpoints()
	return s, nil
}

// Close closes the database.
func (s *Store) Close() error {
	s.stopOnce.Do(func() { close(s.stop) })
	s.wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), BusyTimeout)
	s.db.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`) // best effort: an open reader elsewhere may hold it back
	cancel()
	s.stmtMu.Lock()
	for _, st := range s.stmts {
		st.Close()
	}
	s.stmts = nil
	s.stmtMu.Unlock()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("closing store: %w", err)
	}
	return nil
}

// migration is one embedded schema change, migrations/NNN_name.sql.
type migration struct {
	version int
	name    string
	sql     string
}

// loadMigrations reads the embedded migrations, ordered by version.
func loadMigrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrations, "migrations")
	if err != nil {
		return nil, fmt.Errorf("reading migrations: %w", err)
	}
	var ms []migration
	for _, e := range entries {
		num, name, ok := strings.Cut(strings.TrimSuffix(e.Name(), ".sql"), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: name is not NNN_name.sql", e.Name())
		}
		b, err := migrations.ReadFile("migrations/" + e.Name())
		if err != nil {
			return nil, fmt.Errorf("reading migration %s: %w", e.Name(), err)
		}
		ms = append(ms, migration{version: v, name: name, sql: string(b)})
	}
	slices.SortFunc(ms, func(a, b migration) int { return a.version - b.version })
	for i := 1; i < len(ms); i++ {
		if ms[i].version == ms[i-1].version {
			return nil, fmt.Errorf("migrations %s and %s share version %d", ms[i-1].name, ms[i].name, ms[i].version)
		}
	}
	return ms, nil
}

// migrate applies the migrations the database lacks, each in its own
// transaction together with its schema_migrations row. It refuses a database
// written by a newer tidewatch, whose schema it does not know.
func migrate(ctx context.Context, db *sql.DB) error {
	ms, err := loadMigrations()
	if err != nil {
		return err
	}
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		name       TEXT    NOT NULL,
		applied_at INTEGER NOT NULL
	)`); err != nil {
		return fmt.Errorf("creating schema_migrations: %w", err)
	}
	for _, m := range ms {
		if err := apply(ctx, db, m); err != nil {
			return err
		}
	}
	var latest int
	if err := db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&latest); err != nil {
		return fmt.Errorf("reading schema version: %w", err)
	}
	if known := ms[len(ms)-1].version; latest > known {
		return fmt.Errorf("database schema version %d is newer than this tidewatch knows (%d)", latest, known)
	}
	return nil
}

func apply(ctx context.Context, db *sql.DB, m migration) (err error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("applying migration %03d_%s: %w", m.version, m.name, err)
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, rollback(tx))
		}
	}()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE version = ?`, m.version).Scan(&n); err != nil {
		return fmt.Errorf("checking migration %03d_%s: %w", m.version, m.name, err)
	}
	if n > 0 {
		return tx.Commit()
	}
	if _, err := tx.ExecContext(ctx, m.sql); err != nil {
		return fmt.Errorf("applying migration %03d_%s: %w", m.version, m.name, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
		m.version, m.name, time.Now().UTC().UnixNano()); err != nil {
		return fmt.Errorf("recording migration %03d_%s: %w", m.version, m.name, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("committing migration %03d_%s: %w", m.version, m.name, err)
	}
	return nil
}

// rollback rolls tx back, ignoring a transaction already done.
func rollback(tx *sql.Tx) error {
	if err := tx.Rollback(); err != nil && !errors.Is(err, sql.ErrTxDone) {
		return fmt.Errorf("rolling back: %w", err)
	}
	return nil
}

// nanos and fromNanos convert times to and from their stored form: unix
// nanoseconds, UTC; the zero time is NULL.
func nanos(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().UnixNano()
}

func fromNanos(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return time.Unix(0, n.Int64).UTC()
}

// Ping checks that the database answers, for readiness probes.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("pinging store: %w", err)
	}
	var one int
	if err := s.db.QueryRowContext(ctx, `SELECT 1`).Scan(&one); err != nil {
		return fmt.Errorf("pinging store: %w", err)
	}
	return nil
}
