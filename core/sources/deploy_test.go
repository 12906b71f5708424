package sources

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tidewatch/tidewatch/core"
	"github.com/tidewatch/tidewatch/core/gitsync"
	"github.com/tidewatch/tidewatch/core/gitsync/gittest"
	"github.com/tidewatch/tidewatch/core/store"
)

// outbox is the Outbox of these tests: it keeps the runs it was asked to
// deliver, in order, and answers each with the outcome its service is
// given (delivered by default).
type outbox struct {
	runs       []string
	declared   []store.NewDeclared
	failed     map[string]string // service → the error its delivery fails with
	refused    map[string]bool   // service → refused by the policy
	unfinished []int64
	awaited    []int64
}

func (o *outbox) Declare(_ context.Context, trigger string, nd store.NewDeclared) (store.Delivery, error) {
	if o.refused[nd.Declared.Service] {
		return store.Delivery{}, &core.RefusalError{Rule: "EXCLUDE=" + nd.Declared.Target(), Reason: "excluded"}
	}
	o.runs = append(o.runs, nd.Run)
	o.declared = append(o.declared, nd)
	return store.Delivery{ID: int64(len(o.runs)), Trigger: trigger, Run: nd.Run, Declared: &nd.Declared}, nil
}

func (o *outbox) Await(_ context.Context, id int64) (store.Delivery, error) {
	o.awaited = append(o.awaited, id)
	if id > int64(len(o.declared)) {
		return store.Delivery{ID: id, Status: store.DeliveryDelivered}, nil
	}
	nd := o.declared[id-1]
	if msg, ok := o.failed[nd.Declared.Service]; ok && !strings.HasSuffix(nd.Run, "/revert") {
		return store.Delivery{ID: id, Status: store.DeliveryFailed, LastError: msg}, nil
	}
	return store.Delivery{ID: id, Status: store.DeliveryDelivered}, nil
}

func (o *outbox) UnfinishedDeclared(_ context.Context, trigger, principal string) ([]int64, error) {
	if trigger != "compose.git" || principal != "git:prod" {
		return nil, errors.New("wrong trigger or principal " + trigger + " " + principal)
	}
	return o.unfinished, nil
}

// TestOutboxDeployer: a commit's services go out one delivery each, in
// order, the removed ones last and only with REMOVE_ORPHANS; a refused
// service is skipped; a failure brings the services deployed before it back
// (a revert delivery each, latest first, the previous files put back);
// Settle waits for the deliveries a stop left unfinished.
func TestOutboxDeployer(t *testing.T) {
	const commit, previous = "2222222222222222222222222222222222222222", "1111111111111111111111111111111111111111"
	run := func(target, suffix string) string { return "git:prod@" + commit + "/" + target + suffix }
	tests := []struct {
		name     string
		orphans  bool
		failed   map[string]string
		refused  map[string]bool
		wantRuns []string
		wantErr  string
	}{
		{name: "deployed, the removed service brought down last", orphans: true,
			wantRuns: []string{run("shop/web", ""), run("shop/worker", ""), run("shop/db", "")}},
		{name: "REMOVE_ORPHANS=false leaves it", orphans: false,
			wantRuns: []string{run("shop/web", ""), run("shop/worker", "")}},
		{name: "a refused service is skipped", orphans: true, refused: map[string]bool{"web": true},
			wantRuns: []string{run("shop/worker", ""), run("shop/db", "")}},
		{name: "a failure brings back what went before", orphans: true, failed: map[string]string{"worker": "rolled back: health failed"},
			wantRuns: []string{run("shop/web", ""), run("shop/worker", ""), "git:prod@" + previous + "/shop/web/revert"},
			wantErr:  "shop/worker: rolled back: health failed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir, backups := t.TempDir(), t.TempDir()
			gittest.WriteFiles(t, dir, map[string]string{
				"shop/compose.yaml": "services:\n  web:\n    image: reg.example/web:2\n  worker:\n    image: reg.example/worker:2\n",
			})
			gittest.WriteFiles(t, backups, map[string]string{
				"shop/compose.yaml": "services:\n  web:\n    image: reg.example/web:1\n  db:\n    image: reg.example/db:1\n    labels: {team: data}\n",
			})
			dep := Deploy{Source: "prod", Commit: commit, Previous: previous, Dir: dir, Backups: backups, RemoveOrphans: tc.orphans,
				Files: []gitsync.FileDiff{{Path: "shop/compose.yaml", Status: gitsync.Modified, Changed: []string{"web"}, Added: []string{"worker"}, Removed: []string{"db"}}}}
			out := &outbox{failed: tc.failed, refused: tc.refused}
			err := NewOutboxDeployer(out, map[string]string{"prod": "compose.git"}, nil).Deploy(t.Context(), dep)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("Deploy = %v, want %q", err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.wantRuns, out.runs); diff != "" {
				t.Errorf("deliveries (-want +got):\n%s", diff)
			}
			for _, nd := range out.declared {
				if nd.Labels[labelProject] != "shop" || nd.Labels[labelWorkingDir] != filepath.Join(dir, "shop") || nd.Principal != "git:prod" {
					t.Errorf("%s: labels %v, principal %q", nd.Run, nd.Labels, nd.Principal)
				}
			}
			if i := slices.IndexFunc(out.declared, func(nd store.NewDeclared) bool { return nd.Run == run("shop/db", "") }); i >= 0 {
				// Brought down: its image and labels as the files declared them before.
				if nd := out.declared[i]; nd.Image != "reg.example/db:1" || nd.Labels["team"] != "data" || len(nd.Declared.Files) != 1 {
					t.Errorf("the removed service's delivery = %+v", nd)
				}
			}
			if tc.wantErr != "" {
				if b, _ := os.ReadFile(filepath.Join(dir, "shop", "compose.yaml")); !strings.Contains(string(b), "web:1") {
					t.Errorf("after the revert the compose file holds\n%s\nwant the previous commit's", b)
				}
			}
		})
	}

	out := &outbox{unfinished: []int64{7, 9}}
	if err := NewOutboxDeployer(out, map[string]string{"prod": "compose.git"}, nil).Settle(t.Context(), "prod"); err != nil || !slices.Equal(out.awaited, []int64{7, 9}) {
		t.Errorf("Settle = %v, awaited %v; want 7 and 9 awaited", err, out.awaited)
	}
}
