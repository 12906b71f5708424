package rollout

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/tidewatch/tidewatch/core"
	"github.com/tidewatch/tidewatch/core/docker"
)

// This file settles a replacement (Replace) cut short, from its record:
// whatever step it got to, Undo puts back what ran before and Cleanup
// finishes one that was applied. Both look at what is there now, so that
// running them again (after another interruption) does no harm.

// Reclaim is a rollback's first step once the containers a rollout created
// are gone: the previous container prev, inspected, under its own name again
// (it was set aside). Its state is returned as inspected before the rename
// (Name is where it was found); a previous container that is gone is an
// error that says there is nothing to roll back to.
func Reclaim(ctx context.Context, e *docker.Client, prev Container) (docker.State, error) {
	st, err := e.InspectState(ctx, prev.ID)
	if errors.Is(err, core.ErrNotFound) {
		return st, fmt.Errorf("the previous container %s (%s) is gone: there is nothing to roll back to", prev.Name, short(prev.ID))
	}
	if err != nil {
		return st, err
	}
	if st.Name != prev.Name {
		if err := e.Rename(ctx, prev.ID, prev.Name); err != nil {
			return st, err
		}
	}
	return st, nil
}

// Undo puts back what the replacement rec records changed: the containers
// it created removed (and any other under the previous container's name or
// a follower's), the previous container and its followers under their
// names again, a tag that a digest update moved pointed back, what ran
// started again (a container the replacement asked to stop that still runs
// the same process is killed first: its stop may still be under way); then
// it checks that the previous container runs under its name, healthy (or
// stable), and that nothing is kept aside.
func Undo(ctx context.Context, e *docker.Client, rec *Record, wait docker.WaitOptions) (string, error) {
	prev, ok := rec.Previous()
	if !ok {
		return "", fmt.Errorf("the rollout record of %s names no previous container: %w", rec.Target, ErrCorrupt)
	}
	var errs []error
	removed := 0
	remove := func(id string) {
		if err := e.Remove(ctx, id, true); err != nil && !errors.Is(err, core.ErrNotFound) {
			errs = append(errs, err)
		} else if err == nil {
			removed++
		}
	}
	keep := map[string]bool{prev.ID: true}
	for _, c := range rec.Containers {
		if c.Role == RoleFollower {
			keep[c.ID] = true
		}
	}
	for _, c := range rec.Containers {
		if c.Role == RoleNew && !keep[c.ID] {
			remove(c.ID)
		}
	}
	for _, c := range rec.Containers {
		if c.Role == RolePrevious || c.Role == RoleFollower {
			if st, err := e.InspectState(ctx, c.Name); err == nil && !keep[st.ID] {
				remove(st.ID)
			}
		}
	}
	st, err := Reclaim(ctx, e, prev)
	if err != nil {
		return "", errors.Join(append(errs, err)...)
	}
	var notes []string
	if !strings.Contains(prev.Image, "@") && prev.ImageID != "" {
		if id, err := e.ImageID(ctx, prev.Image); err == nil && id != prev.ImageID {
			if err := e.Tag(ctx, prev.ImageID, prev.Image); err != nil {
				errs = append(errs, err)
			} else {
				notes = append(notes, fmt.Sprintf("%s points at %s again", prev.Image, short(prev.ImageID)))
			}
		}
	}
	restarted := false
	if prev.Running {
		if st.Running && prev.StopRequested && (prev.StartedAt.IsZero() || st.StartedAt.Equal(prev.StartedAt)) {
			if err := e.Kill(ctx, prev.ID); err != nil {
				return "", errors.Join(append(errs, fmt.Errorf("killing the previous container, which the rollout asked to stop: %w", err))...)
			}
			st.Running = false
		}
		if !st.Running {
			if err := e.Start(ctx, prev.ID); err != nil {
				return "", errors.Join(append(errs, err)...)
			}
			restarted = true
		}
		if _, err := e.WaitHealthy(ctx, prev.ID, wait); err != nil {
			errs = append(errs, fmt.Errorf("the previous container does not come back: %w", err))
		}
	}
	for _, c := range rec.Containers {
		if c.Role != RoleFollower {
			continue
		}
		fst, err := e.InspectState(ctx, c.ID)
		if err != nil {
			errs = append(errs, fmt.Errorf("follower %s: %w", c.Name, err))
			continue
		}
		if fst.Name != c.Name {
			if err := e.Rename(ctx, c.ID, c.Name); err != nil {
				errs = append(errs, err)
				continue
			}
		}
		if !c.Running || (!restarted && fst.Running) {
			continue
		}
		// It lost the namespace it shared, or holds an old address.
		if fst.Running {
			if err := e.Stop(ctx, c.ID); err != nil {
				errs = append(errs, err)
				continue
			}
		}
		if err := e.Start(ctx, c.ID); err != nil {
			errs = append(errs, fmt.Errorf("starting %s again: %w", c.Name, err))
			continue
		}
		notes = append(notes, c.Name+" restarted")
	}
	if err := errors.Join(errs...); err != nil {
		return "", err
	}
	if err := verifyBack(ctx, e, rec); err != nil {
		return "", fmt.Errorf("checking that the previous version runs again: %w", err)
	}
	state := "runs again"
	if !prev.Running {
		state = "is back (not started: it did not run)"
	}
	return strings.Join(append([]string{fmt.Sprintf("removed %d new container(s); %s (%s) %s", removed, prev.Name, short(prev.ID), state)}, notes...), "; "), nil
}

// verifyBack checks what Undo promises: the previous container under its
// name, running (healthy, when it has a healthcheck) when it ran, stopped
// when it did not; its followers under their names; nothing kept aside.
func verifyBack(ctx context.Context, e *docker.Client, rec *Record) error {
	prev, _ := rec.Previous()
	st, err := e.InspectState(ctx, prev.Name)
	switch {
	case err != nil:
		return err
	case st.ID != prev.ID:
		return fmt.Errorf("%s is container %s, not the previous %s", prev.Name, short(st.ID), short(prev.ID))
	case prev.Running && !st.Running:
		return fmt.Errorf("%s is %s", prev.Name, st.Status)
	case !prev.Running && st.Running:
		return fmt.Errorf("%s runs; it did not before the rollout", prev.Name)
	case st.Running && st.Healthcheck && st.Health != docker.HealthHealthy:
		return fmt.Errorf("%s is %s, not healthy", prev.Name, st.Health)
	}
	for _, c := range rec.Containers {
		if c.Archive == "" {
			continue
		}
		if st, err := e.InspectState(ctx, c.Archive); err == nil {
			return fmt.Errorf("container %s (%s) is still kept aside", c.Archive, short(st.ID))
		} else if !errors.Is(err, core.ErrNotFound) {
			return err
		}
	}
	return nil
}

// Cleanup finishes a replacement that passed its checks (PhaseApplied):
// the containers it kept aside, stopped, are removed (their volumes stay).
func Cleanup(ctx context.Context, e *docker.Client, rec *Record) (string, error) {
	var removed []string
	for _, c := range rec.Containers {
		if c.Archive == "" {
			continue
		}
		st, err := e.InspectState(ctx, c.ID)
		if errors.Is(err, core.ErrNotFound) {
			continue
		}
		if err != nil {
			return strings.Join(removed, ", "), err
		}
		if st.Name != c.Archive || st.Running {
			continue // not aside any more: not the rollout's to remove
		}
		if err := e.Remove(ctx, c.ID, true); err != nil {
			return strings.Join(removed, ", "), err
		}
		removed = append(removed, c.Archive)
	}
	if len(removed) == 0 {
		return "nothing kept aside is left", nil
	}
	return "removed " + strings.Join(removed, ", "), nil
}
