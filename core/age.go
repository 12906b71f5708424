package core

import (
	"errors"
	"strconv"
	"strings"
	"time"
)

// MaxMinAge is the longest cooldown tidewatch.update.min-age and a
// trigger's MIN_AGE accept: a year. A longer wait is a typo, not a policy.
const MaxMinAge = 365 * 24 * time.Hour

// MinAgeForm is what a minimum age looks like, for error messages.
const MinAgeForm = `a duration from 0 to 365d in days, hours or minutes, like "3d", "12h", "1d12h" or "90m"; 0 for none`

// ParseMinAge reads a minimum image age: a sequence of whole numbers, each
// followed by a unit, w (weeks), d (days), h, m or s, as in "3d", "12h",
// "1d12h", "90m" (Go durations such as "1h30m" read the same); "0" is no
// cooldown. It refuses what is negative, fractional, garbage or longer
// than MaxMinAge, with an error saying what was expected.
func ParseMinAge(s string) (time.Duration, error) {
	v := strings.TrimSpace(s)
	if v == "0" {
		return 0, nil
	}
	if v == "" {
		return 0, errors.New("empty")
	}
	if strings.HasPrefix(v, "-") {
		return 0, errors.New("negative")
	}
	var total time.Duration
	rest := v
	for rest != "" {
		i := 0
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		if i == 0 {
			return 0, errors.New("not a duration: " + Quote(v))
		}
		if i > 7 { // more digits than any unit needs to pass a year
			return 0, errors.New("longer than " + FormatMinAge(MaxMinAge))
		}
		n, _ := strconv.Atoi(rest[:i])
		rest = rest[i:]
		j := 0
		for j < len(rest) && (rest[j] < '0' || rest[j] > '9') {
			j++
		}
		var unit time.Duration
		switch rest[:j] {
		case "w":
			unit = 7 * 24 * time.Hour
		case "d":
			unit = 24 * time.Hour
		case "h":
			unit = time.Hour
		case "m":
			unit = time.Minute
		case "s":
			unit = time.Second
		case "":
			return 0, errors.New("a number without a unit: " + Quote(v))
		default:
			return 0, errors.New("unknown unit " + Quote(rest[:j]) + " in " + Quote(v))
		}
		rest = rest[j:]
		if time.Duration(n) > MaxMinAge/unit {
			return 0, errors.New("longer than " + FormatMinAge(MaxMinAge))
		}
		total += time.Duration(n) * unit
		if total > MaxMinAge {
			return 0, errors.New("longer than " + FormatMinAge(MaxMinAge))
		}
	}
	return total, nil
}

// FormatMinAge writes d as ParseMinAge reads it: "3d", "1d12h", "90m".
func FormatMinAge(d time.Duration) string {
	if d <= 0 {
		return "0"
	}
	var b strings.Builder
	for _, u := range []struct {
		name string
		d    time.Duration
	}{{"d", 24 * time.Hour}, {"h", time.Hour}, {"m", time.Minute}, {"s", time.Second}} {
		if n := d / u.d; n > 0 {
			b.WriteString(strconv.FormatInt(int64(n), 10) + u.name)
			d -= n * u.d
		}
	}
	if b.Len() == 0 {
		return d.String()
	}
	return b.String()
}

// MinAge returns the container's cooldown from its tidewatch.update.min-age
// label: 0 when the label is absent or empty, an error for a value
// ParseMinAge refuses.
func MinAge(labels map[string]string) (time.Duration, error) {
	v, ok := labels[LabelUpdateMinAge]
	if !ok || strings.TrimSpace(v) == "" {
		return 0, nil
	}
	return ParseMinAge(v)
}

// AgeFrom is when the candidate's age counts from: its creation time, read
// from its image config, or, when that is unknown (not read, or a config
// without a usable time, as reproducible builds write 1970), when tidewatch
// first saw the candidate, which is never earlier.
func (u Update) AgeFrom() time.Time {
	if !u.CandidateCreated.IsZero() {
		return u.CandidateCreated
	}
	return u.FirstSeen
}

// ReadyAt is when u's candidate is old enough for a cooldown of minAge:
// AgeFrom plus minAge; the zero time when minAge is 0.
func (u Update) ReadyAt(minAge time.Duration) time.Time {
	if minAge <= 0 {
		return time.Time{}
	}
	return u.AgeFrom().Add(minAge)
}

// WaitUntil is when u's candidate is old enough for the container's own
// cooldown (tidewatch.update.min-age): the zero time when it has none or the
// time has passed at now. A label that does not parse holds the update
// back for ever (MaxMinAge from now), as the watcher shows its error.
func (u Update) WaitUntil(now time.Time) time.Time {
	minAge, err := MinAge(u.Labels)
	if err != nil {
		return now.Add(MaxMinAge)
	}
	if at := u.ReadyAt(minAge); at.After(now) {
		return at
	}
	return time.Time{}
}

// PlausibleCreated returns t when it can be an image's creation time, and
// the zero time otherwise: before 2013 (Docker's birth: reproducible
// builds write 1970-01-01 or 0001-01-01) or more than a day in the future.
func PlausibleCreated(t, now time.Time) time.Time {
	if t.Before(time.Date(2013, 1, 1, 0, 0, 0, 0, time.UTC)) || t.After(now.Add(24*time.Hour)) {
		return time.Time{}
	}
	return t.UTC()
}
