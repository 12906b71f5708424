package rollout

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/tidewatch/tidewatch/core"
	"github.com/tidewatch/tidewatch/core/docker"
	"github.com/tidewatch/tidewatch/plugins/sdk"
)

// Self-update: tidewatch cannot recreate the container it runs in from
// inside (stopping it stops tidewatch halfway). A trigger asked to update it
// starts a helper container from tidewatch's current image, with its
// volumes (the engine's socket, the store folder), that runs
// `tidewatch self-update`: it replaces tidewatch's container as Replace
// does (the health gate is tidewatch's own HEALTHCHECK), rolls back on
// failure, writes the outcome into the store folder, and exits. Stopping
// the old container cuts the delivery that started it short; the
// tidewatch that runs afterwards (the new one, or the old one back after a
// rollback) resumes that delivery with the same key, and the trigger, fired
// again, finds the helper's outcome and reports it: the history and the
// notifications come from the process that runs at the end.

// EnvSelfUpdate is the environment variable that carries the helper's
// request (JSON).
const EnvSelfUpdate = "TIDEWATCH_SELF_UPDATE"

// HelperSuffix is appended to tidewatch's container name to name the helper.
const HelperSuffix = "-tidewatch-update"

// Labels of a helper container.
const (
	// LabelSelfUpdate holds the ID of the container the helper updates.
	LabelSelfUpdate = "tidewatch.self-update"
	// LabelSelfUpdateKey holds KeyID of the delivery that started it.
	LabelSelfUpdateKey = "tidewatch.self-update.key"
)

// outcomeVersion is the version of the outcome file's format: the helper of
// one tidewatch version writes it, the next version reads it.
const outcomeVersion = 1

// SelfUpdateRequest is what the helper is asked to do.
type SelfUpdateRequest struct {
	// Key is the delivery's idempotency key.
	Key string `json:"key"`
	// Container is the ID of tidewatch's container.
	Container string `json:"container"`
	// Image is the new image's reference, pulled; ImageID its ID.
	Image   string `json:"image"`
	ImageID string `json:"image_id"`
	// Outcome is the file the helper writes its outcome to, in the store
	// folder, as both containers see it.
	Outcome string `json:"outcome"`
	// Engine says how to reach the engine.
	DockerHost string `json:"docker_host"`
	CAFile     string `json:"ca_file,omitempty"`
	CertFile   string `json:"cert_file,omitempty"`
	KeyFile    string `json:"key_file,omitempty"`
	// HealthTimeout and StableFor bound the health gate (Go durations).
	HealthTimeout string `json:"health_timeout"`
	StableFor     string `json:"stable_for"`
	// LogLines is how many log lines of a failed container to report.
	LogLines int `json:"log_lines"`
}

// SelfUpdateOutcome is what the helper writes when it is done.
type SelfUpdateOutcome struct {
	// Version is the format's version.
	Version int `json:"version"`
	// Key is the delivery's key.
	Key string `json:"key"`
	// Rollout is what the helper did.
	Rollout sdk.Rollout `json:"rollout"`
	// Error says what failed ("" when applied).
	Error string `json:"error,omitempty"`
	// At is when it ended.
	At time.Time `json:"at"`
}

// KeyID is a delivery key as a file name and label value: the first 32 hex
// digits of its SHA-256.
func KeyID(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:16])
}

// OutcomePath is where the outcome of the self-update started by the
// delivery key is written, under the store folder.
func OutcomePath(storeDir, key string) string {
	return filepath.Join(storeDir, "self-update", KeyID(key)+".json")
}

// StoreDir returns the store folder of the tidewatch that runs in a
// container told s, as its processes see it (TIDEWATCH_STORE_PATH, default
// ./data from the working folder). It must be on a volume or bind mount: a
// folder in the container's own layer goes with the container, and the
// helper would not see it.
func StoreDir(s docker.Settings) (string, error) {
	dir := "./data"
	for _, e := range s.Env {
		if v, ok := strings.CutPrefix(e, "TIDEWATCH_STORE_PATH="); ok && v != "" {
			dir = v
		}
	}
	if !path.IsAbs(dir) {
		wd := s.WorkingDir
		if wd == "" {
			wd = "/"
		}
		dir = path.Join(wd, dir)
	}
	dir = path.Clean(dir)
	for _, m := range s.Mounts {
		m = path.Clean(m)
		if dir == m || strings.HasPrefix(dir, strings.TrimSuffix(m, "/")+"/") {
			return dir, nil
		}
	}
	return "", fmt.Errorf("tidewatch's store folder %s is not on a volume or bind mount of its container: the history would go with the container, and a helper could not leave its outcome there; mount a volume at %s", dir, dir)
}

// ReadOutcome reads the outcome file at p for key; found is false when
// there is none yet.
func ReadOutcome(p, key string) (o SelfUpdateOutcome, found bool, err error) {
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return o, false, nil
	}
	if err != nil {
		return o, false, fmt.Errorf("reading the self-update outcome %s: %w", p, err)
	}
	if err := json.Unmarshal(b, &o); err != nil {
		return o, false, fmt.Errorf("reading the self-update outcome %s: %w", p, err)
	}
	if o.Key != key {
		return o, false, fmt.Errorf("the self-update outcome %s is for another delivery", p)
	}
	switch o.Rollout.Outcome {
	case sdk.OutcomeApplied, sdk.OutcomeRolledBack, sdk.OutcomeFailed:
	default:
		return o, false, fmt.Errorf("the self-update outcome %s says %q; expected applied, rolled-back or failed", p, o.Rollout.Outcome)
	}
	return o, true, nil
}

// writeOutcome writes o to p: a temporary file beside it, synced, renamed.
func writeOutcome(p string, o SelfUpdateOutcome) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return fmt.Errorf("writing the self-update outcome: %w", err)
	}
	b, err := json.MarshalIndent(o, "", "  ")
	if err != nil {
		return fmt.Errorf("writing the self-update outcome: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(p), ".outcome-*")
	if err != nil {
		return fmt.Errorf("writing the self-update outcome: %w", err)
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(b); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), p)
	}
	if err != nil {
		return fmt.Errorf("writing the self-update outcome %s: %w", p, err)
	}
	pruneOutcomes(filepath.Dir(p), 30*24*time.Hour)
	return nil
}

// pruneOutcomes removes the outcome files older than age.
func pruneOutcomes(dir string, age time.Duration) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if info, err := e.Info(); err == nil && strings.HasSuffix(e.Name(), ".json") && time.Since(info.ModTime()) > age {
			_ = os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

// ParseSelfUpdateRequest reads and checks the helper's request.
func ParseSelfUpdateRequest(raw string) (SelfUpdateRequest, error) {
	var r SelfUpdateRequest
	if strings.TrimSpace(raw) == "" {
		return r, fmt.Errorf("%s is not set; this command is started by tidewatch to update its own container", EnvSelfUpdate)
	}
	dec := json.NewDecoder(strings.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return r, fmt.Errorf("%s: not a self-update request: %w", EnvSelfUpdate, err)
	}
	var errs []error
	if r.Key == "" || r.Container == "" {
		errs = append(errs, errors.New("key and container are required"))
	}
	if _, err := core.ParseImageRef(r.Image); err != nil {
		errs = append(errs, fmt.Errorf("image: %w", err))
	}
	if !path.IsAbs(r.Outcome) || path.Clean(r.Outcome) != r.Outcome || !strings.HasSuffix(r.Outcome, ".json") {
		errs = append(errs, fmt.Errorf("outcome %q: expected an absolute, clean path of a .json file", r.Outcome))
	}
	for _, d := range []struct{ name, v string }{{"health_timeout", r.HealthTimeout}, {"stable_for", r.StableFor}} {
		if v, err := time.ParseDuration(d.v); err != nil || v <= 0 {
			errs = append(errs, fmt.Errorf("%s %q: expected a positive Go duration", d.name, d.v))
		}
	}
	if r.LogLines < 0 || r.LogLines > 1000 {
		errs = append(errs, fmt.Errorf("log_lines %d: expected 0 to 1000", r.LogLines))
	}
	if !strings.HasPrefix(r.DockerHost, "unix://") && !strings.HasPrefix(r.DockerHost, "tcp://") {
		errs = append(errs, fmt.Errorf("docker_host %q: expected unix:// or tcp://", r.DockerHost))
	}
	if err := errors.Join(errs...); err != nil {
		return r, fmt.Errorf("%s: %w", EnvSelfUpdate, err)
	}
	return r, nil
}

// RunSelfUpdate is the helper: `tidewatch self-update`, with the request in
// $TIDEWATCH_SELF_UPDATE (getenv reads it). It replaces tidewatch's
// container, writes the outcome, and returns the exit code: 0 when the
// outcome was written (whatever it is), 1 when it could not be.
func RunSelfUpdate(ctx context.Context, getenv func(string) string, stderr io.Writer) int {
	log := slog.New(slog.NewTextHandler(stderr, nil)).With("component", "self-update")
	req, err := ParseSelfUpdateRequest(getenv(EnvSelfUpdate))
	if err != nil {
		log.Error("refusing to start", "error", err)
		return 1
	}
	out := SelfUpdateOutcome{Version: outcomeVersion, Key: req.Key}
	out.Rollout, err = selfUpdate(ctx, req, log)
	if err != nil {
		out.Error = err.Error()
	}
	out.At = time.Now().UTC()
	if werr := writeOutcome(req.Outcome, out); werr != nil {
		log.Error("the outcome is lost", "outcome", out.Rollout.Outcome, "error", werr)
		return 1
	}
	log.Info("self-update finished", "outcome", out.Rollout.Outcome, "reason", out.Rollout.Reason, "file", req.Outcome)
	return 0
}

// selfUpdate replaces tidewatch's container as req says.
func selfUpdate(ctx context.Context, req SelfUpdateRequest, log *slog.Logger) (sdk.Rollout, error) {
	health, _ := time.ParseDuration(req.HealthTimeout)
	stable, _ := time.ParseDuration(req.StableFor)
	rep := sdk.Rollout{Method: "docker self-update", To: req.Image}
	engine, err := docker.New(docker.Options{Host: req.DockerHost, CAFile: req.CAFile, CertFile: req.CertFile, KeyFile: req.KeyFile})
	if err != nil {
		rep.Outcome, rep.FailedStep, rep.Reason = sdk.OutcomeFailed, "inspect", err.Error()
		return rep, err
	}
	defer engine.Close()
	var cur docker.State
	err = rep.Step("inspect", func() (string, error) {
		var err error
		cur, err = engine.InspectState(ctx, req.Container)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("%s (%s) runs %s", cur.Name, short(cur.ID), cur.Image), nil
	})
	if err != nil {
		rep.Outcome = sdk.OutcomeFailed
		return rep, err
	}
	rep.Target, rep.From = cur.Name, cur.Image
	// The whole replacement, with the time a rollback takes, is bounded:
	// twice the health gate (the new container's, the old one's) and room
	// for the stops and starts.
	ctx, cancel := context.WithTimeout(ctx, 2*health+5*time.Minute)
	defer cancel()
	fwd, cancelFwd, after := Split(ctx, health+2*time.Minute)
	defer cancelFwd()
	r := &Replace{Engine: engine, Log: log, Current: cur, Image: req.Image, ImageID: req.ImageID,
		Wait: docker.WaitOptions{Timeout: health, StableFor: stable}, LogLines: req.LogLines}
	err = r.Run(fwd, after, &rep)
	return rep, err
}

// SelfUpdater is the side of a self-update that runs in tidewatch's trigger.
type SelfUpdater struct {
	// Engine is the engine tidewatch's container runs on; Options how it
	// is reached (handed to the helper).
	Engine  *docker.Client
	Options docker.Options
	// Checks bound the helper's health gate.
	Checks Checks
	// Log gets a line per change.
	Log *slog.Logger
}

// Outcome returns the outcome of the self-update started by the delivery
// key: the one in its file, or, while the helper runs, the one it writes
// when it ends (waiting for it within ctx). found is false when no
// self-update was started for key. A helper that ended without writing its
// outcome is reported as failed with its last log lines. The helper
// container is removed once its outcome is read.
func (s SelfUpdater) Outcome(ctx context.Context, self docker.State, key string) (o SelfUpdateOutcome, found bool, err error) {
	settings, err := s.Engine.Settings(ctx, self.ID)
	if err != nil {
		return o, false, err
	}
	dir, err := StoreDir(settings)
	if err != nil {
		return o, false, sdk.Permanent(err)
	}
	file := OutcomePath(dir, key)
	helpers, err := s.Engine.FindContainers(ctx, map[string]string{LabelSelfUpdateKey: KeyID(key)})
	if err != nil {
		return o, false, err
	}
	for _, h := range helpers {
		if h.Running {
			s.Log.Info("waiting for the self-update helper", "helper", h.Name)
			if _, err := s.Engine.WaitExit(ctx, h.ID); err != nil {
				return o, false, fmt.Errorf("waiting for the self-update helper %s: %w", h.Name, err)
			}
		}
	}
	o, found, err = ReadOutcome(file, key)
	if err != nil {
		return o, false, sdk.Permanent(err)
	}
	if !found && len(helpers) > 0 {
		// The helper ended without an outcome: it crashed, or was killed.
		h := helpers[0]
		lines, _ := s.Engine.Logs(ctx, h.ID, 50)
		o = SelfUpdateOutcome{Version: outcomeVersion, Key: key, Rollout: sdk.Rollout{
			Outcome: sdk.OutcomeFailed, Method: "docker self-update", Target: self.Name, FailedStep: "helper", Logs: lines,
			Reason: fmt.Sprintf("the self-update helper %s ended without an outcome; check tidewatch's container and any %s%s left", h.Name, self.Name, ArchiveSuffix),
		}}
		o.Error, found = o.Rollout.Reason, true
	}
	if found {
		for _, h := range helpers {
			if err := s.Engine.Remove(ctx, h.ID, true); err != nil {
				s.Log.Warn("removing the self-update helper", "helper", h.Name, "error", err)
			}
		}
	}
	return o, found, nil
}

// Start starts the helper that updates tidewatch's container self to
// image (pulled, imageID) for the delivery key, and returns once it runs.
func (s SelfUpdater) Start(ctx context.Context, self docker.State, key, image, imageID string) error {
	settings, err := s.Engine.Settings(ctx, self.ID)
	if err != nil {
		return err
	}
	dir, err := StoreDir(settings)
	if err != nil {
		return sdk.Permanent(err)
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding tidewatch's own executable for the helper: %w", err)
	}
	req := SelfUpdateRequest{
		Key: key, Container: self.ID, Image: image, ImageID: imageID, Outcome: OutcomePath(dir, key),
		DockerHost: s.Options.Host, CAFile: s.Options.CAFile, CertFile: s.Options.CertFile, KeyFile: s.Options.KeyFile,
		HealthTimeout: s.Checks.HealthTimeout.String(), StableFor: s.Checks.StableFor.String(), LogLines: s.Checks.LogLines,
	}
	raw, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("writing the self-update request: %w", err)
	}
	// The helper carries tidewatch's own labels (tidewatch.*), is not
	// watched, and says what it is for.
	labels := map[string]string{}
	for k, v := range self.Labels {
		if strings.HasPrefix(k, "tidewatch.") {
			labels[k] = v
		}
	}
	maps.Copy(labels, map[string]string{core.LabelWatch: "false", LabelSelfUpdate: self.ID, LabelSelfUpdateKey: KeyID(key)})
	name := self.Name + HelperSuffix
	if old, err := s.Engine.InspectState(ctx, name); err == nil {
		if old.Running {
			return fmt.Errorf("a self-update helper %s runs for another delivery; trying again later", name)
		}
		if err := s.Engine.Remove(ctx, old.ID, true); err != nil {
			return err
		}
	}
	id, err := s.Engine.StartHelper(ctx, self.ID, docker.Helper{
		Name: name, Entrypoint: []string{exe, "self-update"}, Env: []string{EnvSelfUpdate + "=" + string(raw)}, Labels: labels,
	})
	if err != nil {
		return err
	}
	s.Log.Info("self-update helper started", "helper", name, "helper_id", short(id), "image", image)
	return nil
}
