package rollout

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Phases of a rollout, in Record.Phase.
const (
	// PhasePrepared: what the rollout will change is recorded; nothing is
	// changed yet.
	PhasePrepared = "prepared"
	// PhaseApplying: the rollout is changing files and containers; what it
	// changed is found from the record and what is there now.
	PhaseApplying = "applying"
	// PhaseRollingBack: a step failed (Record.Failure says which and why);
	// what ran before is being put back.
	PhaseRollingBack = "rolling-back"
	// PhaseApplied: the target passed its checks; only the clean-up (the
	// previous container kept aside) is left.
	PhaseApplied = "applied"
)

// Roles of a container in Record.Containers.
const (
	// RolePrevious is the container that ran before the rollout: what a
	// rollback brings back.
	RolePrevious = "previous"
	// RoleNew is a container the rollout created.
	RoleNew = "new"
	// RoleFollower is a container that follows the previous one (runs in
	// its network namespace, links to it), recreated after it.
	RoleFollower = "follower"
)

// Record is what a rollout will change and has changed, written before it
// acts, so that a rollout resumed after a crash (or retried by another
// process) finishes or undoes exactly that rollout: the files it rewrote,
// each with the backup it wrote, the containers it replaced and created,
// the name it keeps the previous container under, the processes it started.
type Record struct {
	// Key is the idempotency key of the delivery that began the rollout
	// (sdk.Update.Key): a delivery fired again with it resumes this rollout.
	Key string `json:"key"`
	// Target names what is rolled out, for people: "project/service", a
	// container's name.
	Target string `json:"target"`
	// Method says how ("compose cli", "compose engine", "docker").
	Method string `json:"method,omitempty"`
	// From and To are the image references before and after; FromImage and
	// ToImage the local image IDs.
	From      string `json:"from,omitempty"`
	To        string `json:"to,omitempty"`
	FromImage string `json:"from_image,omitempty"`
	ToImage   string `json:"to_image,omitempty"`
	// Phase is one of the Phase* values.
	Phase string `json:"phase"`
	// Files are the files the rollout rewrites.
	Files []File `json:"files,omitempty"`
	// Containers are the containers it replaces and creates.
	Containers []Container `json:"containers,omitempty"`
	// Processes are the process groups it started (a compose CLI): a
	// rollout that resumes after its owner died stops those still running.
	Processes []Process `json:"processes,omitempty"`
	// Failure says what failed, once a rollback was decided.
	Failure *Failure `json:"failure,omitempty"`
	// Owner is the process that acts on the record.
	Owner Process `json:"owner"`
	// Began is when the rollout began; Updated when the record was last
	// written.
	Began   time.Time `json:"began"`
	Updated time.Time `json:"updated"`
}

// File is a file a rollout rewrites.
type File struct {
	// Path is the file.
	Path string `json:"path"`
	// Backup is the copy of its bytes before the rollout, written by the
	// rollout itself; "" until it is written.
	Backup string `json:"backup,omitempty"`
	// Old and New are the SHA-256 (hex) of its bytes before and after the
	// rewrite: a rollback restores Backup only over New, so that an edit
	// made since is never lost.
	Old string `json:"old_sha256"`
	New string `json:"new_sha256"`
}

// Container is a container a rollout replaces or creates.
type Container struct {
	// Role is RolePrevious or RoleNew.
	Role string `json:"role"`
	// ID and Name are the engine's; Archive the name a previous container
	// is kept under while it is aside (<name>-tidewatch-old).
	ID      string `json:"id"`
	Name    string `json:"name,omitempty"`
	Archive string `json:"archive,omitempty"`
	// Image and ImageID are what it was created with and runs.
	Image   string `json:"image,omitempty"`
	ImageID string `json:"image_id,omitempty"`
	// Running says whether it ran before the rollout; StartedAt when it
	// last started then.
	Running   bool      `json:"running,omitempty"`
	StartedAt time.Time `json:"started_at,omitzero"`
	// StopRequested is set before the rollout asks the engine to stop it:
	// a stop that outlives the rollout's deadline may still be pending.
	StopRequested bool `json:"stop_requested,omitempty"`
}

// Failure is why a rollout is rolled back.
type Failure struct {
	// Step is the step that failed; Reason why.
	Step   string `json:"step"`
	Reason string `json:"reason"`
	// Logs are the failed container's last log lines.
	Logs []string `json:"logs,omitempty"`
}

// Previous returns the container the record replaces, and false when none
// is recorded.
func (r *Record) Previous() (Container, bool) {
	for _, c := range r.Containers {
		if c.Role == RolePrevious {
			return c, true
		}
	}
	return Container{}, false
}

// markPrevious changes the previous container with fn.
func (r *Record) markPrevious(fn func(*Container)) {
	for i := range r.Containers {
		if r.Containers[i].Role == RolePrevious {
			fn(&r.Containers[i])
		}
	}
}

// AddContainer records c, or updates the recorded container of the same ID.
func (r *Record) AddContainer(c Container) {
	for i, have := range r.Containers {
		if have.ID == c.ID {
			r.Containers[i] = c
			return
		}
	}
	r.Containers = append(r.Containers, c)
}

// Journal keeps the records of rollouts, one file per key, and their
// locks, in a folder: one that every process that may roll the same target
// out sees (the compose project's folder, a state folder), and that
// survives them. Records are small JSON files written atomically and
// fsynced (.tidewatch-rollout-<key>.json); a lock file
// (.tidewatch-rollout-<key>.lock, empty) exists while a rollout holds it.
type Journal struct {
	dir string
}

// NewJournal returns the journal in dir, which must exist.
func NewJournal(dir string) (*Journal, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("opening the rollout journal: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("opening the rollout journal: %s is not a folder", dir)
	}
	return &Journal{dir: dir}, nil
}

// Dir is the journal's folder.
func (j *Journal) Dir() string { return j.dir }

// fileName turns a key into a file name stem: its safe characters, and a
// hash of the whole key so that keys differing only in unsafe characters
// stay apart.
func fileName(key string) string {
	var b strings.Builder
	for _, r := range key {
		if b.Len() >= 64 {
			break
		}
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	sum := sha256.Sum256([]byte(key))
	return ".tidewatch-rollout-" + strings.Trim(b.String(), ".") + "-" + hex.EncodeToString(sum[:4])
}

// RecordPath is the file of key's record.
func (j *Journal) RecordPath(key string) string {
	return filepath.Join(j.dir, fileName(key)+".json")
}

// LockPath is key's lock file.
func (j *Journal) LockPath(key string) string {
	return filepath.Join(j.dir, fileName(key)+".lock")
}

// ErrBusy is the error of TryLock when another rollout holds the lock.
var ErrBusy = errors.New("another rollout holds the lock")

// ErrCorrupt wraps the error of a record that cannot be read: a person must
// look (the error names the file).
var ErrCorrupt = errors.New("rollout record cannot be read")

// Load returns the open record of key, or nil when there is none.
func (j *Journal) Load(key string) (*Record, error) {
	path := j.RecordPath(key)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading rollout record %s: %w", path, err)
	}
	var r Record
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("reading rollout record %s: %w: %v; move it away once what it describes is sorted out", path, ErrCorrupt, err)
	}
	switch r.Phase {
	case PhasePrepared, PhaseApplying, PhaseRollingBack, PhaseApplied:
	default:
		return nil, fmt.Errorf("reading rollout record %s: %w: phase %q is none of prepared, applying, rolling-back, applied", path, ErrCorrupt, r.Phase)
	}
	return &r, nil
}

// Save writes r as key's record, durably: a temp file in the journal's
// folder, fsynced, renamed over the record, the folder fsynced. A crash
// leaves the previous record or this one, never a part.
func (j *Journal) Save(key string, r *Record) error {
	r.Updated = time.Now().UTC()
	if r.Began.IsZero() {
		r.Began = r.Updated
	}
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("writing rollout record of %s: %w", r.Target, err)
	}
	path := j.RecordPath(key)
	if err := writeDurably(path, append(data, '\n')); err != nil {
		return fmt.Errorf("writing rollout record %s: %w", path, err)
	}
	return nil
}

// Close removes key's record: the rollout it describes is over.
func (j *Journal) Close(key string) error {
	path := j.RecordPath(key)
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("closing rollout record %s: %w", path, err)
	}
	if err := syncDir(j.dir); err != nil {
		return fmt.Errorf("closing rollout record %s: %w", path, err)
	}
	return nil
}

// writeDurably replaces path with data through a temp file beside it.
func writeDurably(path string, data []byte) (err error) {
	dir, base := filepath.Split(path)
	f, err := os.CreateTemp(dir, base+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	if err := f.Chmod(0o600); err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(filepath.Clean(dir))
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return err
	}
	return nil
}

// SHA256 returns the hex SHA-256 of data, as File.Old and File.New hold it.
func SHA256(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}
