package swarm

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	dockerswarm "github.com/docker/docker/api/types/swarm"

	"github.com/tidewatch/tidewatch/core"
	"github.com/tidewatch/tidewatch/plugins/sdk"
	"github.com/tidewatch/tidewatch/test/testbed"
)

func unique(prefix string) string {
	b := make([]byte, 4)
	rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// configured returns a swarm trigger on the bed's engine with options.
func configured(t *testing.T, bed *testbed.Bed, kv ...string) *Trigger {
	t.Helper()
	opts := map[string]string{OptDockerHost: bed.DockerHost, OptMonitor: "2s"}
	for i := 0; i+1 < len(kv); i += 2 {
		opts[kv[i]] = kv[i+1]
	}
	tr := NewWithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := tr.Configure(context.Background(), "test", opts); err != nil {
		t.Fatal(err)
	}
	return tr
}

// fire fires one update with a 3-minute deadline, as the dispatcher would.
func fire(t *testing.T, tr *Trigger, u sdk.Update) sdk.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res := tr.Fire(ctx, []sdk.Update{u})[0]
	if res.Rollout == nil {
		t.Fatalf("Fire returned no rollout report: %+v", res)
	}
	return res
}

func steps(r *sdk.Rollout) []string {
	var out []string
	for _, s := range r.Steps {
		out = append(out, s.Name)
	}
	return out
}

// update is the update a watch run records for a service: its ID, name,
// repository, labels, and the candidate.
func update(bed *testbed.Bed, id, name, repo, current, candidate string, kind core.UpdateKind) sdk.Update {
	ref, _ := core.ParseImageRef(repo + ":" + current)
	return sdk.Update{Key: unique("key"), Event: sdk.EventUpdateAvailable, Host: "local", Container: name, ContainerName: name,
		ContainerID: id, Image: ref.Repo(), Current: current, Candidate: candidate, Kind: string(kind)}
}

// TestRollouts runs the swarm trigger against the real engine in swarm
// mode, the scenarios side by side to keep the engine in swarm mode short.
func TestRollouts(t *testing.T) {
	bed := testbed.Require(t)
	repo := bed.Registry + "/" + unique("swarmtrig")
	digests := map[string]string{}
	for _, v := range []struct {
		tag  string
		fail testbed.FailMode
	}{{"1.0.0", ""}, {"1.1.0", ""}, {"2.0.0", testbed.FailExit}} {
		digests[v.tag] = bed.BuildImage(t, repo+":"+v.tag, testbed.AppOptions{Version: v.tag, Healthcheck: true, Fail: v.fail})
	}
	bed.Swarm(t)

	// A 2-replica service without update config goes to 1.1.0: applied, both
	// replicas on 1.1.0 pinned by digest, the trigger's defaults in its
	// spec; fired again, it is already applied.
	t.Run("applied", func(t *testing.T) {
		t.Parallel()
		name := unique("web")
		id := bed.CreateService(t, name, repo+":1.0.0", testbed.ServiceOptions{Replicas: 2})
		tr := configured(t, bed)
		u := update(bed, id, name, repo, "1.0.0", "1.1.0", core.KindMinor)
		res := fire(t, tr, u)
		r := res.Rollout
		if res.Err != nil || r.Outcome != sdk.OutcomeApplied || res.Event != sdk.EventUpdateApplied {
			t.Fatalf("Fire = %v, outcome %s (%s: %s), event %s; want applied", res.Err, r.Outcome, r.FailedStep, r.Reason, res.Event)
		}
		want := repo + ":1.1.0@" + digests["1.1.0"]
		if r.To != want || r.From != repo+":1.0.0@"+digests["1.0.0"] || r.Method != "swarm" || r.Target != name || r.Container != id {
			t.Errorf("report from %q to %q method %q target %q container %q; want %s → %s", r.From, r.To, r.Method, r.Target, r.Container, r.From, want)
		}
		if got, wantSteps := steps(r), []string{StepInspect, StepLock, StepResolve, StepUpdate, StepRollout}; !slices.Equal(got, wantSteps) {
			t.Errorf("steps = %v, want %v", got, wantSteps)
		}
		v := bed.Service(t, id)
		if v.Image() != want || !slices.Equal(v.Versions(), []string{"1.1.0", "1.1.0"}) || v.UpdateState() != "completed" {
			t.Errorf("service after: image %s, versions %v, update %s; want %s on both replicas, completed", v.Image(), v.Versions(), v.UpdateState(), want)
		}
		uc := v.Service.Spec.UpdateConfig
		if uc == nil || uc.FailureAction != "rollback" || uc.Order != "start-first" || uc.Monitor != 2*time.Second || uc.Parallelism != 1 {
			t.Errorf("update config after = %+v, want the trigger's defaults (rollback, start-first, 2s, 1)", uc)
		}
		if !strings.Contains(r.Steps[len(r.Steps)-1].Note, "2 running the new image") {
			t.Errorf("rollout step note = %q, want the 2 tasks on the new image", r.Steps[len(r.Steps)-1].Note)
		}

		again := fire(t, tr, u)
		if again.Err != nil || again.Rollout.Outcome != sdk.OutcomeAlreadyApplied || again.Event != sdk.EventUpdateApplied {
			t.Errorf("fired again = %v, outcome %s, event %s; want already-applied", again.Err, again.Rollout.Outcome, again.Event)
		}
	})

	// A broken 2.0.0 (its process exits at start): the engine rolls back by
	// itself (the trigger's FAILURE_ACTION=rollback), the trigger says so
	// with the failed task's error and logs, and the service runs 1.0.0.
	t.Run("rolled back by the engine", func(t *testing.T) {
		t.Parallel()
		name := unique("broken")
		id := bed.CreateService(t, name, repo+":1.0.0", testbed.ServiceOptions{Replicas: 2})
		res := fire(t, configured(t, bed), update(bed, id, name, repo, "1.0.0", "2.0.0", core.KindMajor))
		r := res.Rollout
		if r.Outcome != sdk.OutcomeRolledBack || res.Event != sdk.EventUpdateRolledBack || !sdk.IsPermanent(res.Err) {
			t.Fatalf("Fire = %v, outcome %s, event %s; want rolled-back, permanent", res.Err, r.Outcome, res.Event)
		}
		if r.FailedStep != StepRollout || !strings.Contains(r.Reason, "rolled the update back") || !strings.Contains(r.Reason, "exit") {
			t.Errorf("failed step %q reason %q; want the rollout, the engine's rollback and the task's exit", r.FailedStep, r.Reason)
		}
		if !strings.Contains(strings.Join(r.Logs, "\n"), "exit") {
			t.Errorf("logs of the failed task = %q, want the app's last words", r.Logs)
		}
		v := bed.WaitService(t, id, "back on 1.0.0 with 2 replicas", func(v testbed.ServiceView) bool {
			return slices.Equal(v.Versions(), []string{"1.0.0", "1.0.0"})
		})
		if v.Image() != repo+":1.0.0@"+digests["1.0.0"] || v.UpdateState() != "rollback_completed" {
			t.Errorf("service after: image %s, update %s; want 1.0.0 again, rollback_completed", v.Image(), v.UpdateState())
		}
	})

	// A service whose own update config pauses on failure (the CLI's
	// default): the engine pauses, the trigger asks it to roll back.
	t.Run("paused, rolled back on request", func(t *testing.T) {
		t.Parallel()
		name := unique("paused")
		own := &dockerswarm.UpdateConfig{Parallelism: 1, FailureAction: "pause", Monitor: 2 * time.Second, Order: "stop-first"}
		id := bed.CreateService(t, name, repo+":1.0.0", testbed.ServiceOptions{UpdateConfig: own})
		res := fire(t, configured(t, bed), update(bed, id, name, repo, "1.0.0", "2.0.0", core.KindMajor))
		r := res.Rollout
		if r.Outcome != sdk.OutcomeRolledBack || res.Event != sdk.EventUpdateRolledBack {
			t.Fatalf("Fire = %v, outcome %s (%s: %s), event %s; want rolled-back", res.Err, r.Outcome, r.FailedStep, r.Reason, res.Event)
		}
		if got := steps(r); !slices.Contains(got, StepRollback) || !strings.Contains(r.Reason, "paused") {
			t.Errorf("steps %v, reason %q; want a rollback step after a pause", got, r.Reason)
		}
		if !strings.Contains(r.Steps[3].Note, "its own update config") {
			t.Errorf("update step note = %q, want the service's own update config used", r.Steps[3].Note)
		}
		v := bed.WaitService(t, id, "back on 1.0.0", func(v testbed.ServiceView) bool { return slices.Equal(v.Versions(), []string{"1.0.0"}) })
		if uc := v.Service.Spec.UpdateConfig; uc == nil || uc.FailureAction != "pause" || uc.Order != "stop-first" {
			t.Errorf("update config after = %+v, want the service's own, untouched", uc)
		}
	})

	// With PAUSED=leave, a paused update is reported failed and left paused.
	t.Run("paused, left", func(t *testing.T) {
		t.Parallel()
		name := unique("left")
		own := &dockerswarm.UpdateConfig{Parallelism: 1, FailureAction: "pause", Monitor: 2 * time.Second}
		id := bed.CreateService(t, name, repo+":1.0.0", testbed.ServiceOptions{UpdateConfig: own})
		res := fire(t, configured(t, bed, OptPaused, PausedLeave), update(bed, id, name, repo, "1.0.0", "2.0.0", core.KindMajor))
		if res.Rollout.Outcome != sdk.OutcomeFailed || res.Event != sdk.EventUpdateFailed || !strings.Contains(res.Err.Error(), "a person must look") {
			t.Errorf("Fire = %v, outcome %s, event %s; want failed, left paused", res.Err, res.Rollout.Outcome, res.Event)
		}
		if v := bed.Service(t, id); v.UpdateState() != "paused" {
			t.Errorf("update state after = %q, want paused", v.UpdateState())
		}
	})

	// What is not the trigger's to roll out is refused, touching nothing.
	t.Run("refused", func(t *testing.T) {
		t.Parallel()
		name := unique("kept")
		id := bed.CreateService(t, name, repo+":1.0.0", testbed.ServiceOptions{})
		ctr := bed.RunContainer(t, unique("plain"), repo+":1.0.0", nil)
		tr := configured(t, bed)
		for _, tc := range []struct {
			name string
			u    sdk.Update
			want string
		}{
			{"a container", update(bed, ctr.ID, ctr.Name, repo, "1.0.0", "1.1.0", core.KindMinor), "not a Swarm service"},
			{"another repository", update(bed, id, name, bed.Registry+"/other", "1.0.0", "1.1.0", core.KindMinor), "runs " + strings.TrimPrefix(repo, "")},
			{"not an update", func() sdk.Update {
				u := update(bed, id, name, repo, "1.0.0", "1.1.0", core.KindMinor)
				u.Event = sdk.EventUpdateApplied
				return u
			}(), "not a rollout event"},
			{"a hostile tag", update(bed, id, name, repo, "1.0.0", "1.1.0;rm -rf /", core.KindMinor), "invalid tag"},
		} {
			res := fire(t, tr, tc.u)
			if res.Rollout.Outcome != sdk.OutcomeRefused || !sdk.IsPermanent(res.Err) || !strings.Contains(res.Err.Error(), tc.want) {
				t.Errorf("%s: Fire = %v, outcome %s; want refused, permanent, saying %q", tc.name, res.Err, res.Rollout.Outcome, tc.want)
			}
		}
		if v := bed.Service(t, id); v.Image() != repo+":1.0.0@"+digests["1.0.0"] || v.UpdateState() != "" {
			t.Errorf("service after the refusals: image %s, update %q; want it untouched", v.Image(), v.UpdateState())
		}
	})

	// A dry run says what it would do and touches nothing.
	t.Run("dry run", func(t *testing.T) {
		t.Parallel()
		name := unique("dry")
		id := bed.CreateService(t, name, repo+":1.0.0", testbed.ServiceOptions{NoReplicas: true})
		res := fire(t, configured(t, bed, OptDryRun, "true"), update(bed, id, name, repo, "1.0.0", "1.1.0", core.KindMinor))
		r := res.Rollout
		if res.Err != nil || r.Outcome != sdk.OutcomeDryRun || len(r.Plan) == 0 || !strings.Contains(r.Plan[0], repo+":1.1.0@"+digests["1.1.0"]) {
			t.Errorf("dry run = %v, outcome %s, plan %q; want the update to the pinned 1.1.0", res.Err, r.Outcome, r.Plan)
		}
		if v := bed.Service(t, id); v.Image() != repo+":1.0.0@"+digests["1.0.0"] {
			t.Errorf("service after the dry run: %s; want it untouched", v.Image())
		}
	})

	// Fired again while the update it started is still rolling (tidewatch
	// restarted meanwhile): the trigger does not update again, it waits.
	t.Run("fired again mid-update", func(t *testing.T) {
		t.Parallel()
		name := unique("resumed")
		id := bed.CreateService(t, name, repo+":1.0.0", testbed.ServiceOptions{Replicas: 2,
			UpdateConfig: &dockerswarm.UpdateConfig{Parallelism: 1, FailureAction: "rollback", Monitor: 3 * time.Second, Order: "start-first"}})
		ctx := context.Background()
		svc, _, err := bed.Docker().ServiceInspectWithRaw(ctx, id, dockerswarm.ServiceInspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		spec := svc.Spec
		spec.TaskTemplate.ContainerSpec.Image = repo + ":1.1.0@" + digests["1.1.0"]
		if _, err := bed.Docker().ServiceUpdate(ctx, id, svc.Version, spec, dockerswarm.ServiceUpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		bed.WaitService(t, id, "updating", func(v testbed.ServiceView) bool { return v.UpdateState() == "updating" })
		res := fire(t, configured(t, bed), update(bed, id, name, repo, "1.0.0", "1.1.0", core.KindMinor))
		r := res.Rollout
		if res.Err != nil || r.Outcome != sdk.OutcomeApplied || !strings.Contains(r.Steps[3].Note, "already being updated") {
			t.Fatalf("Fire = %v, outcome %s, steps %+v; want applied after waiting for the update under way", res.Err, r.Outcome, r.Steps)
		}
		if v := bed.Service(t, id); !slices.Equal(v.Versions(), []string{"1.1.0", "1.1.0"}) {
			t.Errorf("service after: versions %v", v.Versions())
		}
	})

	// A service of a stack whose file cannot be rewritten is updated all
	// the same: the outcome names no failed step (a stack file is not the
	// rollout), the history's detail says why the file was not rewritten,
	// and nothing is written. A stack name that is no name is not put into
	// a path. When the update is rolled back instead, its failed step and
	// reason are the engine's rollback, not the stack file's.
	varFile := filepath.Join(t.TempDir(), "docker-stack.yml")
	varSrc := "services:\n  web:\n    image: \"" + repo + ":${WEB_TAG}\"\n"
	if err := os.WriteFile(varFile, []byte(varSrc), 0o644); err != nil {
		t.Fatal(err)
	}
	anyStack := filepath.Join(t.TempDir(), "{stack}", "docker-stack.yml")
	stack := func(prefix string) string { return strings.ReplaceAll(unique(prefix), "-", "") }
	shopA, shopB, shopC := stack("shopa"), stack("shopb"), stack("shopc")
	for _, tc := range []struct {
		name, stack, candidate string
		options                []string
		outcome                string
		detail                 string
	}{
		{"stack without STACK_FILE", shopA, "1.1.0", nil, sdk.OutcomeApplied, "not rewritten: no STACK_FILE names the file of stack " + shopA},
		{"tag set by a variable", shopB, "1.1.0", []string{OptStackFile, shopB + "=" + varFile}, sdk.OutcomeApplied, "is the variable WEB_TAG"},
		{"hostile stack label", "../../etc", "1.1.0", []string{OptStackFile, anyStack}, sdk.OutcomeApplied, "is not a stack name"},
		{"tag set by a variable, rolled back", shopC, "2.0.0", []string{OptStackFile, shopC + "=" + varFile}, sdk.OutcomeRolledBack, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			name := tc.stack + "_web"
			if strings.Contains(tc.stack, "/") {
				name = stack("etc") + "_web" // a service name cannot hold the label's slashes
			}
			id := bed.CreateService(t, name, repo+":1.0.0", testbed.ServiceOptions{Labels: map[string]string{"com.docker.stack.namespace": tc.stack}})
			kind := core.KindMinor
			if tc.candidate == "2.0.0" {
				kind = core.KindMajor
			}
			res := fire(t, configured(t, bed, tc.options...), update(bed, id, name, repo, "1.0.0", tc.candidate, kind))
			r := res.Rollout
			if r.Outcome != tc.outcome {
				t.Fatalf("Fire = %v, outcome %s (%s: %s); want %s", res.Err, r.Outcome, r.FailedStep, r.Reason, tc.outcome)
			}
			switch tc.outcome {
			case sdk.OutcomeApplied:
				if res.Err != nil || r.FailedStep != "" || r.Reason != "" {
					t.Errorf("applied with error %v, failed step %q, reason %q; want none", res.Err, r.FailedStep, r.Reason)
				}
			default:
				if r.FailedStep != StepRollout || !strings.Contains(r.Reason, "rolled the update back") {
					t.Errorf("failed step %q reason %q; want the rollout and the engine's rollback", r.FailedStep, r.Reason)
				}
			}
			switch {
			case tc.detail == "" && strings.Contains(res.Detail, "stack file"):
				t.Errorf("detail = %q, want no word of the stack file (a rolled-back update leaves it as it was)", res.Detail)
			case !strings.Contains(res.Detail, tc.detail):
				t.Errorf("detail = %q, want it to say %q", res.Detail, tc.detail)
			}
			if b, _ := os.ReadFile(varFile); string(b) != varSrc {
				t.Errorf("the stack file was written:\n%s", b)
			}
			if files, _ := filepath.Glob(filepath.Join(filepath.Dir(filepath.Dir(anyStack)), "*", "*")); len(files) != 0 || len(r.Files) != 0 {
				t.Errorf("files written: %v, reported: %v; want none", files, r.Files)
			}
		})
	}

	// A service scaled to zero has no task to roll: its update completes
	// when its spec says the new image.
	t.Run("no replica", func(t *testing.T) {
		t.Parallel()
		name := unique("zero")
		id := bed.CreateService(t, name, repo+":1.0.0", testbed.ServiceOptions{NoReplicas: true})
		res := fire(t, configured(t, bed), update(bed, id, name, repo, "1.0.0", "1.1.0", core.KindMinor))
		if res.Err != nil || res.Rollout.Outcome != sdk.OutcomeApplied {
			t.Errorf("Fire = %v, outcome %s (%s); want applied", res.Err, res.Rollout.Outcome, res.Rollout.Reason)
		}
		if v := bed.Service(t, id); v.Image() != repo+":1.1.0@"+digests["1.1.0"] {
			t.Errorf("service after: %s; want 1.1.0 pinned", v.Image())
		}
	})
}
