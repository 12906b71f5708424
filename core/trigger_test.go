package core

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestThresholdPasses(t *testing.T) {
	kinds := []UpdateKind{KindMajor, KindMinor, KindPatch, KindPrerelease, KindDigest, "unknown"}
	// One letter per kind above: y passes, n does not.
	tests := map[Threshold]string{
		ThresholdAll:       "yyyyyy",
		ThresholdMajor:     "yyyyyy",
		ThresholdMinor:     "nyyyyy",
		ThresholdPatch:     "nnyyyy",
		ThresholdDigest:    "nnnnyy",
		ThresholdMajorOnly: "ynnnyy",
		ThresholdMinorOnly: "nynnyy",
		ThresholdPatchOnly: "nnynyy",
	}
	if len(tests) != len(Thresholds) {
		t.Fatalf("the table has %d thresholds, the package %d", len(tests), len(Thresholds))
	}
	for th, want := range tests {
		for i, k := range kinds {
			if got := th.Passes(k); got != (want[i] == 'y') {
				t.Errorf("Threshold(%s).Passes(%s) = %v, want %v", th, k, got, want[i] == 'y')
			}
		}
	}
}

func TestParseThresholdAndMode(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Threshold
		err  bool
	}{
		{"", ThresholdAll, false}, {"MINOR", ThresholdMinor, false}, {" patch-only ", ThresholdPatchOnly, false},
		{"digest", ThresholdDigest, false}, {"minor-or-less", "", true}, {"semver", "", true},
	} {
		got, err := ParseThreshold(tc.in)
		if got != tc.want || (err != nil) != tc.err {
			t.Errorf("ParseThreshold(%q) = %q, %v; want %q, error %v", tc.in, got, err, tc.want, tc.err)
		}
	}
	for _, tc := range []struct {
		in   string
		want Mode
		err  bool
	}{
		{"", ModeOnce, false}, {"once", ModeOnce, false}, {"Simple", ModeOnce, false}, {"BATCH", ModeBatch, false}, {"digest", "", true},
	} {
		got, err := ParseMode(tc.in)
		if got != tc.want || (err != nil) != tc.err {
			t.Errorf("ParseMode(%q) = %q, %v; want %q, error %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestPolicyMatches(t *testing.T) {
	web := Update{Host: "prod", ContainerName: "web-1", Kind: KindMinor}
	major := web
	major.Kind = KindMajor
	tests := []struct {
		name    string
		policy  func(*TriggerPolicy)
		u       Update
		labels  map[string]string
		trigger string
		want    bool
	}{
		{"defaults", nil, web, nil, "webhook.ops", true},
		{"threshold minor lets minor through", func(p *TriggerPolicy) { p.Threshold = ThresholdMinor }, web, nil, "webhook.ops", true},
		{"threshold minor stops major", func(p *TriggerPolicy) { p.Threshold = ThresholdMinor }, major, nil, "webhook.ops", false},
		{"include by name", func(p *TriggerPolicy) { p.Include = []string{"web-1"} }, web, nil, "webhook.ops", true},
		{"include by glob", func(p *TriggerPolicy) { p.Include = []string{"db", "web-*"} }, web, nil, "webhook.ops", true},
		{"include by host/name glob", func(p *TriggerPolicy) { p.Include = []string{"prod/*"} }, web, nil, "webhook.ops", true},
		{"include by another host", func(p *TriggerPolicy) { p.Include = []string{"staging/*"} }, web, nil, "webhook.ops", false},
		{"not included", func(p *TriggerPolicy) { p.Include = []string{"db*"} }, web, nil, "webhook.ops", false},
		{"excluded by glob", func(p *TriggerPolicy) { p.Exclude = []string{"web-?"} }, web, nil, "webhook.ops", false},
		{"exclude wins over include", func(p *TriggerPolicy) { p.Include, p.Exclude = []string{"*"}, []string{"prod/web-1"} }, web, nil, "webhook.ops", false},
		{"bad glob matches nothing", func(p *TriggerPolicy) { p.Exclude = []string{"[web"} }, web, nil, "webhook.ops", true},
		{"label include by type.name", nil, web, map[string]string{LabelTriggerInclude: "email.me, webhook.ops"}, "webhook.ops", true},
		{"label include by name", nil, web, map[string]string{LabelTriggerInclude: "OPS"}, "webhook.ops", true},
		{"label include by type", nil, web, map[string]string{LabelTriggerInclude: "webhook"}, "webhook.ops", true},
		{"label include lists others", nil, web, map[string]string{LabelTriggerInclude: "email, sms.oncall"}, "webhook.ops", false},
		{"label include with empty entries", nil, web, map[string]string{LabelTriggerInclude: " , ,"}, "webhook.ops", false},
		{"label include with threshold passed", nil, web, map[string]string{LabelTriggerInclude: "webhook.ops:minor"}, "webhook.ops", true},
		{"label include with threshold not passed", nil, major, map[string]string{LabelTriggerInclude: "webhook.ops:minor"}, "webhook.ops", false},
		{"label exclude by type.name", nil, web, map[string]string{LabelTriggerExclude: "webhook.ops"}, "webhook.ops", false},
		{"label exclude of another", nil, web, map[string]string{LabelTriggerExclude: "webhook.dev"}, "webhook.ops", true},
		{"label exclude only majors", nil, web, map[string]string{LabelTriggerExclude: "webhook:major-only"}, "webhook.ops", true},
		{"label exclude only majors, major", nil, major, map[string]string{LabelTriggerExclude: "webhook:major-only"}, "webhook.ops", false},
		{"label include and exclude", nil, web, map[string]string{LabelTriggerInclude: "webhook", LabelTriggerExclude: "ops"}, "webhook.ops", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := DefaultTriggerPolicy()
			if tc.policy != nil {
				tc.policy(&p)
			}
			u := tc.u
			u.Labels = tc.labels
			if got := p.Matches(u, tc.trigger); got != tc.want {
				t.Errorf("Matches(%s/%s %s, %v, %s) = %v, want %v", u.Host, u.ContainerName, u.Kind, u.Labels, tc.trigger, got, tc.want)
			}
		})
	}
}

func TestRefusalNamesTheRule(t *testing.T) {
	u := Update{Host: "prod", ContainerName: "db-1", Kind: KindMajor}
	tests := []struct {
		name   string
		policy func(*TriggerPolicy)
		labels map[string]string
		manual bool
		want   string // "" for no refusal
	}{
		{"threshold, automatic", func(p *TriggerPolicy) { p.Threshold = ThresholdMinor }, nil, false, "refused by THRESHOLD=minor: a major update is beyond it"},
		{"threshold, asked by a person", func(p *TriggerPolicy) { p.Threshold = ThresholdMinor }, nil, true, ""},
		{"exclude", func(p *TriggerPolicy) { p.Exclude = []string{"web-*", "db-*"} }, nil, true, "refused by EXCLUDE=web-*,db-*: the container db-1 matches db-*"},
		{"include", func(p *TriggerPolicy) { p.Include = []string{"web-*"} }, nil, true, "refused by INCLUDE=web-*: the container db-1 is not in it"},
		{"label exclude", nil, map[string]string{LabelTriggerExclude: "compose"}, true, "refused by label tidewatch.trigger.exclude=compose: it lists compose.prod"},
		{"label include", nil, map[string]string{LabelTriggerInclude: "webhook"}, true, "refused by label tidewatch.trigger.include=webhook: it does not list compose.prod for a major update"},
		{"not watched", nil, map[string]string{LabelWatch: "false"}, true, "refused by label tidewatch.watch=false: the container is not watched"},
		{"watched", nil, map[string]string{LabelWatch: "true"}, true, ""},
		{"another host", func(p *TriggerPolicy) { p.Watchers = []string{"local"} }, nil, true, "refused by WATCHER=local: the update was found on prod, another host"},
		{"its host", func(p *TriggerPolicy) { p.Watchers = []string{"local", "prod"} }, nil, true, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := DefaultTriggerPolicy()
			if tc.policy != nil {
				tc.policy(&p)
			}
			v := u
			v.Labels = tc.labels
			err := p.Refusal(v, "compose.prod", tc.manual)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tc.want {
				t.Errorf("Refusal = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestTriggerPolicySet(t *testing.T) {
	p := DefaultTriggerPolicy()
	for _, set := range [][2]string{
		{"THRESHOLD", " Minor "}, {"MODE", "simple"}, {"AUTO", "no"}, {"ONCE", "0"}, {"INCLUDE", "web-*, ,db"},
		{"EVENTS", "update-applied,UPDATE-FAILED,update-applied"}, {"RETRIES", "3"}, {"DEADLINE", "2m"}, {"CONCURRENCY", "4"},
		{"LABELS", "com.example.*"}, {"WATCHER", " Local, edge_2 "},
	} {
		if err := p.Set(set[0], set[1]); err != nil {
			t.Fatalf("Set(%s, %q) = %v", set[0], set[1], err)
		}
	}
	want := TriggerPolicy{Threshold: ThresholdMinor, Mode: ModeOnce, Include: []string{"web-*", "db"},
		Events: []Event{EventUpdateApplied, EventUpdateFailed}, Retries: 3, Deadline: 2 * time.Minute, DeadlineSet: true,
		Concurrency: 4, Labels: []string{"com.example.*"}, Watchers: []string{"local", "edge_2"}}
	if diff := cmp.Diff(want, p); diff != "" {
		t.Errorf("after Set (-want +got):\n%s", diff)
	}
	for _, bad := range [][2]string{
		{"THRESHOLD", "huge"}, {"MODE", "daily"}, {"AUTO", "maybe"}, {"EVENTS", ","}, {"EVENTS", "update-exploded"},
		{"RETRIES", "0"}, {"RETRIES", "101"}, {"DEADLINE", "-1s"}, {"DEADLINE", "7h"}, {"CONCURRENCY", "65"},
		{"INCLUDE", "web-["}, {"LABELS", "["}, {"NOPE", "1"}, {"WATCHER", ","}, {"WATCHER", "lo cal"}, {"WATCHER", "a__b"},
	} {
		before := p
		err := p.Set(bad[0], bad[1])
		var ve *OptionValueError
		if !errors.As(err, &ve) || ve.Problem == "" || ve.Expected == "" {
			t.Errorf("Set(%s, %q) = %v, want an *OptionValueError saying what is wrong and expected", bad[0], bad[1], err)
		}
		if !cmp.Equal(before, p) {
			t.Errorf("Set(%s, %q) changed the policy", bad[0], bad[1])
		}
	}
}

func TestSharedLabels(t *testing.T) {
	labels := map[string]string{"tidewatch.watch": "true", "com.example.team": "web", "com.example.db.password": "hunter2", "traefik.http.routers.x": "y"}
	p := DefaultTriggerPolicy()
	if diff := cmp.Diff(map[string]string{"tidewatch.watch": "true"}, p.SharedLabels(labels)); diff != "" {
		t.Errorf("default (-want +got):\n%s", diff)
	}
	p.Labels = []string{"com.example.team", "traefik.*"}
	want := map[string]string{"tidewatch.watch": "true", "com.example.team": "web", "traefik.http.routers.x": "y"}
	if diff := cmp.Diff(want, p.SharedLabels(labels)); diff != "" {
		t.Errorf("with LABELS (-want +got):\n%s", diff)
	}
}

func TestIsLoopback(t *testing.T) {
	for host, want := range map[string]bool{
		"localhost": true, "LocalHost.": true, "localhost:8080": true, "127.0.0.1": true, "127.8.9.10:80": true,
		"[::1]": true, "[::1]:5000": true, "::1": true, "[::ffff:127.0.0.1]": true,
		"": false, "0.0.0.0": false, "10.0.0.1": false, "localhost.evil.example": false, "127.0.0.1.nip.io": false,
		"example.com:80": false, "[::]": false, "evil.localhost": false,
	} {
		if got := IsLoopback(host); got != want {
			t.Errorf("IsLoopback(%q) = %v, want %v", host, got, want)
		}
	}
}
