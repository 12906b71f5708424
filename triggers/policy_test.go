package triggers

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/tidewatch/tidewatch/core"
)

func TestThresholdPasses(t *testing.T) {
	kinds := []core.UpdateKind{core.KindMajor, core.KindMinor, core.KindPatch, core.KindPrerelease, core.KindDigest, "unknown"}
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
	if len(tests) != len(thresholds) {
		t.Fatalf("the table has %d thresholds, the package %d", len(tests), len(thresholds))
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
	web := core.Update{Host: "prod", ContainerName: "web-1", Kind: core.KindMinor}
	major := web
	major.Kind = core.KindMajor
	tests := []struct {
		name    string
		policy  func(*Policy)
		u       core.Update
		labels  map[string]string
		trigger string
		want    bool
	}{
		{"defaults", nil, web, nil, "webhook.ops", true},
		{"threshold minor lets minor through", func(p *Policy) { p.Threshold = ThresholdMinor }, web, nil, "webhook.ops", true},
		{"threshold minor stops major", func(p *Policy) { p.Threshold = ThresholdMinor }, major, nil, "webhook.ops", false},
		{"include by name", func(p *Policy) { p.Include = []string{"web-1"} }, web, nil, "webhook.ops", true},
		{"include by glob", func(p *Policy) { p.Include = []string{"db", "web-*"} }, web, nil, "webhook.ops", true},
		{"include by host/name glob", func(p *Policy) { p.Include = []string{"prod/*"} }, web, nil, "webhook.ops", true},
		{"include by another host", func(p *Policy) { p.Include = []string{"staging/*"} }, web, nil, "webhook.ops", false},
		{"not included", func(p *Policy) { p.Include = []string{"db*"} }, web, nil, "webhook.ops", false},
		{"excluded by glob", func(p *Policy) { p.Exclude = []string{"web-?"} }, web, nil, "webhook.ops", false},
		{"exclude wins over include", func(p *Policy) { p.Include, p.Exclude = []string{"*"}, []string{"prod/web-1"} }, web, nil, "webhook.ops", false},
		{"bad glob matches nothing", func(p *Policy) { p.Exclude = []string{"[web"} }, web, nil, "webhook.ops", true},
		{"label include by type.name", nil, web, map[string]string{core.LabelTriggerInclude: "email.me, webhook.ops"}, "webhook.ops", true},
		{"label include by name", nil, web, map[string]string{core.LabelTriggerInclude: "OPS"}, "webhook.ops", true},
		{"label include by type", nil, web, map[string]string{core.LabelTriggerInclude: "webhook"}, "webhook.ops", true},
		{"label include lists others", nil, web, map[string]string{core.LabelTriggerInclude: "email, sms.oncall"}, "webhook.ops", false},
		{"label include with empty entries", nil, web, map[string]string{core.LabelTriggerInclude: " , ,"}, "webhook.ops", false},
		{"label include with threshold passed", nil, web, map[string]string{core.LabelTriggerInclude: "webhook.ops:minor"}, "webhook.ops", true},
		{"label include with threshold not passed", nil, major, map[string]string{core.LabelTriggerInclude: "webhook.ops:minor"}, "webhook.ops", false},
		{"label exclude by type.name", nil, web, map[string]string{core.LabelTriggerExclude: "webhook.ops"}, "webhook.ops", false},
		{"label exclude of another", nil, web, map[string]string{core.LabelTriggerExclude: "webhook.dev"}, "webhook.ops", true},
		{"label exclude only majors", nil, web, map[string]string{core.LabelTriggerExclude: "webhook:major-only"}, "webhook.ops", true},
		{"label exclude only majors, major", nil, major, map[string]string{core.LabelTriggerExclude: "webhook:major-only"}, "webhook.ops", false},
		{"label include and exclude", nil, web, map[string]string{core.LabelTriggerInclude: "webhook", core.LabelTriggerExclude: "ops"}, "webhook.ops", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := DefaultPolicy()
			if tc.policy != nil {
				tc.policy(&p)
			}
			if got := p.Matches(tc.u, tc.labels, tc.trigger); got != tc.want {
				t.Errorf("Matches(%s/%s %s, %v, %s) = %v, want %v", tc.u.Host, tc.u.ContainerName, tc.u.Kind, tc.labels, tc.trigger, got, tc.want)
			}
		})
	}
}

func TestDefaultPolicyAndValidate(t *testing.T) {
	want := Policy{Threshold: ThresholdAll, Mode: ModeOnce, Auto: true, Once: true, Events: []string{"update-available"},
		Retries: DefaultRetries, Timeout: DefaultTimeout, Concurrency: DefaultConcurrency}
	if diff := cmp.Diff(want, DefaultPolicy()); diff != "" {
		t.Errorf("DefaultPolicy() (-want +got):\n%s", diff)
	}
	if err := DefaultPolicy().Validate(); err != nil {
		t.Errorf("DefaultPolicy().Validate() = %v, want nil", err)
	}
	bad := DefaultPolicy()
	bad.Threshold, bad.Mode, bad.Include, bad.Events = "big", "often", []string{"[x"}, []string{"update-exploded"}
	err := bad.Validate()
	if err == nil {
		t.Fatalf("Validate(bad policy) = nil, want errors")
	}
	for _, part := range []string{"THRESHOLD", "MODE", "INCLUDE", "EVENTS"} {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("Validate(bad policy) = %q, does not name %s", err, part)
		}
	}
}
