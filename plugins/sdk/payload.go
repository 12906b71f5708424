package sdk

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"time"
)

// EventMixed is a payload's event when its updates carry different events.
const EventMixed = "mixed"

// Payload is the JSON document that describes one message of a trigger:
// the trigger instance, the event, and the updates of the message (one, or
// several in batch mode). The webhook trigger sends it as its default body,
// the command trigger writes it to its program's stdin; a plugin that posts
// JSON somewhere can send it too, so that receivers see one shape.
type Payload struct {
	// Trigger is the trigger instance's name.
	Trigger string `json:"trigger"`
	// Event is the updates' event ("update-available", …), or EventMixed
	// when they differ.
	Event string `json:"event"`
	// Updates are the updates of the message, never empty.
	Updates []PayloadUpdate `json:"updates"`
}

// PayloadUpdate is one update in a Payload. Every field is always present:
// an unknown value is "" (labels: {}), so that receivers see a stable shape.
type PayloadUpdate struct {
	Key             string            `json:"key"`
	Event           string            `json:"event"`
	Host            string            `json:"host"`
	Container       string            `json:"container"`
	ContainerID     string            `json:"container_id"`
	Image           string            `json:"image"`
	Current         string            `json:"current"`
	CurrentDigest   string            `json:"current_digest"`
	Candidate       string            `json:"candidate"`
	CandidateDigest string            `json:"candidate_digest"`
	Kind            string            `json:"kind"`
	Link            string            `json:"link"`
	DetectedAt      time.Time         `json:"detected_at"`
	Labels          map[string]string `json:"labels"`
	Detail          string            `json:"detail"`
}

// NewPayload returns the payload for updates sent together by the trigger
// instance name.
func NewPayload(name string, updates []Update) Payload {
	p := Payload{Trigger: name, Updates: make([]PayloadUpdate, len(updates))}
	for i, u := range updates {
		labels := u.Labels
		if labels == nil {
			labels = map[string]string{}
		}
		p.Updates[i] = PayloadUpdate{
			Key: u.Key, Event: u.Event, Host: u.Host, Container: u.Container, ContainerID: u.ContainerID,
			Image: u.Image, Current: u.Current, CurrentDigest: u.CurrentDigest, Candidate: u.Candidate,
			CandidateDigest: u.CandidateDigest, Kind: u.Kind, Link: u.Link, DetectedAt: u.DetectedAt.UTC(),
			Labels: labels, Detail: u.Detail,
		}
		switch {
		case i == 0:
			p.Event = u.Event
		case p.Event != u.Event:
			p.Event = EventMixed
		}
	}
	return p
}

// Key is the idempotency key of a message carrying updates: the update's
// own key for one update; for several, "batch-" and the hex SHA-256 of their
// keys joined by newlines, so that the same batch fired again has the same key.
func Key(updates []Update) string {
	if len(updates) == 1 {
		return updates[0].Key
	}
	keys := make([]string, len(updates))
	for i, u := range updates {
		keys[i] = u.Key
	}
	sum := sha256.Sum256([]byte(strings.Join(keys, "\n")))
	return "batch-" + hex.EncodeToString(sum[:])
}
