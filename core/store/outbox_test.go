package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tidewatch/tidewatch/core"
)

// Due reads its limit into a query of a power-of-two class; whatever the
// limit, it returns that many of the due deliveries, oldest first.
func TestDueReturnsAtMostLimitOldestFirst(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	u := openUpdateOf(t, s, "web")
	now := time.Now()
	var nds []NewDelivery
	for i := range 20 {
		nds = append(nds, NewDelivery{UpdateID: u.ID, Trigger: "a.one", Candidate: "1.26.0", Event: core.EventUpdateAvailable,
			Run: fmt.Sprint(i), NotBefore: now.Add(time.Duration(i-30) * time.Second)})
	}
	ds := enqueue(t, s, nds...)
	for _, limit := range []int{0, 1, 7, 8, 9, 16, 17, 20, 21, 1000} {
		got, err := s.Due(ctx, now, limit, "a.one")
		if err != nil {
			t.Fatalf("Due(limit %d) error = %v", limit, err)
		}
		want := min(limit, len(ds))
		if len(got) != want {
			t.Errorf("Due(limit %d) returned %d deliveries, want %d", limit, len(got), want)
			continue
		}
		for i, d := range got {
			if d.ID != ds[i].ID {
				t.Errorf("Due(limit %d)[%d] = delivery %d, want %d (oldest first)", limit, i, d.ID, ds[i].ID)
				break
			}
		}
	}
	for _, limit := range []int{-1, 0} {
		if got, err := s.Due(ctx, now, limit, "a.one"); err != nil || len(got) != 0 {
			t.Errorf("Due(limit %d) = %d deliveries, %v; want none", limit, len(got), err)
		}
	}
}

// Claim claims pending and running deliveries and says which: a finished
// one, an unknown one and a repeated ID are not claimed (twice).
func TestClaimReturnsWhatItClaimed(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	u := openUpdateOf(t, s, "web")
	now := time.Now()
	ds := enqueue(t, s,
		NewDelivery{UpdateID: u.ID, Trigger: "a.one", Candidate: "1.26.0", Event: core.EventUpdateAvailable, Run: "1"},
		NewDelivery{UpdateID: u.ID, Trigger: "a.one", Candidate: "1.26.0", Event: core.EventUpdateAvailable, Run: "2"},
		NewDelivery{UpdateID: u.ID, Trigger: "a.one", Candidate: "1.26.0", Event: core.EventUpdateAvailable, Run: "3"},
	)
	if err := s.MarkDelivered(ctx, ds[1].ID, "", now); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkRunning(ctx, []int64{ds[2].ID}, now, now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	lease := now.Add(time.Hour)
	got, err := s.Claim(ctx, []int64{ds[0].ID, ds[1].ID, ds[2].ID, ds[0].ID, 999999}, now, lease)
	if err != nil {
		t.Fatalf("Claim error = %v", err)
	}
	if diff := cmp.Diff([]int64{ds[0].ID, ds[2].ID}, got); diff != "" {
		t.Errorf("Claim claimed (-want +got):\n%s", diff)
	}
	for _, want := range []struct {
		id     int64
		status DeliveryStatus
	}{{ds[0].ID, DeliveryRunning}, {ds[1].ID, DeliveryDelivered}, {ds[2].ID, DeliveryRunning}} {
		d, err := s.Delivery(ctx, want.id)
		if err != nil {
			t.Fatal(err)
		}
		if d.Status != want.status {
			t.Errorf("delivery %d is %s, want %s", want.id, d.Status, want.status)
		}
		if want.status == DeliveryRunning && !d.NextAttemptAt.Equal(lease.UTC()) {
			t.Errorf("delivery %d's lease ends %v, want %v", want.id, d.NextAttemptAt, lease.UTC())
		}
	}
	if got, err := s.Claim(ctx, nil, now, lease); err != nil || len(got) != 0 {
		t.Errorf("Claim(none) = %v, %v; want nothing", got, err)
	}
	// Release takes any number of IDs in one statement, too.
	if err := s.Release(ctx, []int64{ds[0].ID, ds[1].ID, ds[2].ID}, now); err != nil {
		t.Fatal(err)
	}
	pending, err := s.Deliveries(ctx, DeliveryFilter{Status: DeliveryPending})
	if err != nil {
		t.Fatal(err)
	}
	if len(pending) != 2 {
		t.Errorf("pending after Release = %d, want 2 (the delivered one stays delivered)", len(pending))
	}
}
