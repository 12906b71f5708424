package gitsync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Record is what tidewatch remembers of one source: the commit deployed,
// and the last commit whose deploy failed, which is not tried again.
type Record struct {
	// Deployed is the commit last deployed successfully ("" before the first).
	Deployed string `json:"deployed,omitempty"`
	// Failed is the last commit whose deploy failed and was rolled back;
	// empty when the last deploy succeeded.
	Failed string `json:"failed,omitempty"`
	// FailedReason says why Failed failed.
	FailedReason string `json:"failed_reason,omitempty"`
	// At is when the record last changed.
	At time.Time `json:"at,omitzero"`
}

// State keeps a Record per source. The store implements it; FileState is a
// small one in a JSON file.
type State interface {
	// Get returns the source's record; the zero Record when there is none.
	Get(ctx context.Context, source string) (Record, error)
	// Put replaces the source's record.
	Put(ctx context.Context, source string, r Record) error
}

// Action is what to do with a fetched commit.
type Action int

// Actions of Next.
const (
	// InSync: the fetched commit is the one deployed.
	InSync Action = iota
	// Deploy: the fetched commit is new.
	Deploy
	// SkipFailed: the fetched commit already failed; wait for the next.
	SkipFailed
)

func (a Action) String() string {
	switch a {
	case InSync:
		return "in-sync"
	case Deploy:
		return "deploy"
	case SkipFailed:
		return "skip-failed"
	}
	return fmt.Sprintf("Action(%d)", int(a))
}

// Next decides what to do with the commit fetched, given the record.
func Next(fetched string, r Record) Action {
	switch fetched {
	case r.Deployed:
		return InSync
	case r.Failed:
		return SkipFailed
	}
	return Deploy
}

// Succeeded returns the record after commit deployed.
func (r Record) Succeeded(commit string, at time.Time) Record {
	return Record{Deployed: commit, At: at}
}

// Marked returns the record after commit failed: the deployed commit stays
// (the rollback restored it).
func (r Record) Marked(commit, reason string, at time.Time) Record {
	return Record{Deployed: r.Deployed, Failed: commit, FailedReason: reason, At: at}
}

// Status is what the API and UI show of a source.
type Status struct {
	// Source is the source's name.
	Source string `json:"source"`
	// Fetched is the commit last fetched; Deployed the one deployed;
	// Failed the last one that failed (if the newest).
	Fetched  string `json:"fetched"`
	Deployed string `json:"deployed"`
	Failed   string `json:"failed,omitempty"`
	// InSync reports that the deployed commit is the fetched one.
	InSync bool `json:"in_sync"`
}

// StatusOf builds the status of a source.
func StatusOf(source, fetched string, r Record) Status {
	return Status{Source: source, Fetched: fetched, Deployed: r.Deployed, Failed: r.Failed, InSync: fetched != "" && fetched == r.Deployed}
}

// FileState is a State kept in one JSON file, written atomically (temporary
// file, fsync, rename). Safe for concurrent use within one process.
type FileState struct {
	path string
	mu   sync.Mutex
}

var _ State = (*FileState)(nil)

// NewFileState returns a FileState in the file at path; the file is made on
// the first Put.
func NewFileState(path string) *FileState { return &FileState{path: path} }

// maxStateFile bounds the state file read.
const maxStateFile = 4 << 20

func (s *FileState) load() (map[string]Record, error) {
	b, err := readBounded(s.path, maxStateFile)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]Record{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading git state: %w", err)
	}
	m := map[string]Record{}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("reading git state %s: %w", s.path, err)
	}
	return m, nil
}

// Get returns the source's record.
func (s *FileState) Get(_ context.Context, source string) (Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, err := s.load()
	if err != nil {
		return Record{}, err
	}
	return m[source], nil
}

// Put replaces the source's record.
func (s *FileState) Put(_ context.Context, source string, r Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, err := s.load()
	if err != nil {
		return err
	}
	m[source] = r
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	dir := filepath.Dir(s.path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("writing git state: %w", err)
	}
	f, err := os.CreateTemp(dir, ".gitstate-*")
	if err != nil {
		return fmt.Errorf("writing git state: %w", err)
	}
	defer os.Remove(f.Name())
	_, werr := f.Write(append(b, '\n'))
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		return fmt.Errorf("writing git state: %w", err)
	}
	if err := os.Rename(f.Name(), s.path); err != nil {
		return fmt.Errorf("writing git state: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
