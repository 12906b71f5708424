package triggers

import (
	"slices"

	"github.com/tidewatch/tidewatch/core"
)

// One rollout at a time per compose project: the loop fires a deploying
// trigger's delivery only while no other delivery of the same project (on
// the same Docker host, through any deploying instance) is in flight. The
// compose trigger's own lock serialises the rollouts of one plugin process,
// but a second delivery of the project would wait inside it, holding a Fire
// slot and spending its DEADLINE on the wait, and two instances (two
// processes) on one project would not be serialised at all; an Apply all
// (POST /api/updates/apply) enqueues many updates of a project at once.

// The labels compose puts on a service's containers (Docker's own names).
const (
	labelComposeProject    = "com.docker.compose.project"
	labelComposeWorkingDir = "com.docker.compose.project.working_dir"
)

// projectKey names the compose project of u for serialising its rollouts:
// host, project and working folder; "" for a container outside compose.
func projectKey(u core.Update) string {
	p := u.Labels[labelComposeProject]
	if p == "" {
		return ""
	}
	return u.Host + "\x00" + p + "\x00" + u.Labels[labelComposeWorkingDir]
}

// projects is the set of a group's compose projects, for a deploying
// instance's group; nil for a notifying one.
func (g group) projects() []string {
	if !g.in.Deploys {
		return nil
	}
	var keys []string
	for _, dl := range g.ds {
		if k := projectKey(dl.Update); k != "" && !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	return keys
}

// blocked reports whether one of g's projects has a rollout in flight.
func (st *state) blocked(g group) bool {
	for _, k := range g.projects() {
		if st.rolling[k] {
			return true
		}
	}
	return false
}

// roll marks g's projects as rolling out (on) or free (off).
func (st *state) roll(g group, on bool) {
	for _, k := range g.projects() {
		if on {
			st.rolling[k] = true
		} else {
			delete(st.rolling, k)
		}
	}
}
