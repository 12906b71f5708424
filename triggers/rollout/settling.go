package rollout

import (
	"errors"
	"fmt"

	"github.com/tidewatch/tidewatch/plugins/sdk"
)

// What the deploying triggers share to settle a failed rollout (fired again
// by tidewatch's repair loop with update-failed and the key of the delivery
// whose rollback failed): the start, up to the trigger's own resume path.

// ErrNothingToSettle is Settling's answer when no record of the delivery's
// rollout is left.
var ErrNothingToSettle = errors.New("no record of this delivery's rollout is left: nothing to settle")

// ErrUnreadable wraps Settling's error when the record cannot be read (the
// error says which file and why).
var ErrUnreadable = errors.New("settling the rollout")

// Settling loads the record under key for settling the failed rollout of
// delivery (the caller holds key's lock): ErrNothingToSettle when the record
// is gone or belongs to another delivery; an error wrapping ErrUnreadable
// when it cannot be read. A rollout the record shows still prepared or
// applying has ended with its delivery: it is marked rolling back (failed at
// step, "the rollout ended unfinished", unless it records a failure) and
// saved first; an error saving it is returned as is (to be tried again),
// with the record as read.
func (j *Journal) Settling(key, delivery, step string) (*Record, error) {
	rec, err := j.Load(key)
	switch {
	case err != nil:
		return nil, fmt.Errorf("%w: %w", ErrUnreadable, err)
	case rec == nil || rec.Key != delivery:
		return nil, ErrNothingToSettle
	}
	if rec.Phase == PhasePrepared || rec.Phase == PhaseApplying {
		rec.Phase = PhaseRollingBack
		if rec.Failure == nil {
			rec.Failure = &Failure{Step: step, Reason: "the rollout ended unfinished"}
		}
		if err := j.Save(key, rec); err != nil {
			return rec, err
		}
	}
	return rec, nil
}

// SettlingResult is what a settle that Settling stopped with err reports:
// its outcome (refused when nothing is left to settle, else failed), the
// reason to report (for a refusal), and the result: permanent, but for a
// record that could not be saved, which is tried again.
func SettlingResult(err error) (outcome, reason string, res sdk.Result) {
	switch {
	case errors.Is(err, ErrNothingToSettle):
		return sdk.OutcomeRefused, err.Error(), sdk.Result{Err: sdk.Permanent(err)}
	case errors.Is(err, ErrUnreadable):
		return sdk.OutcomeFailed, "", sdk.Result{Err: sdk.Permanent(err)}
	default:
		return sdk.OutcomeFailed, "", sdk.Retry(err)
	}
}
