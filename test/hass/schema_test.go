package hass

import (
	"encoding/json"
	"strings"
	"testing"
)

// valid is a discovery config Home Assistant takes, as JSON decodes it.
const valid = `{"name":"web","unique_id":"tidewatch_home_local_web","state_topic":"tidewatch/local/web/state",
"command_topic":"tidewatch/local/web/install","payload_install":"install","json_attributes_topic":"tidewatch/local/web/attributes",
"availability_topic":"tidewatch/status","payload_available":"online","payload_not_available":"offline","icon":"mdi:docker",
"entity_category":"diagnostic","qos":1,"device":{"identifiers":["tidewatch_home_local"],"name":"tidewatch local"},
"origin":{"name":"tidewatch"}}`

func decode(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestUpdateDiscoveryErrors: a valid config passes; each broken one fails,
// naming the field.
func TestUpdateDiscoveryErrors(t *testing.T) {
	if errs := UpdateDiscoveryErrors(decode(t, valid)); len(errs) != 0 {
		t.Fatalf("UpdateDiscoveryErrors(valid) = %v, want none", errs)
	}
	for _, tc := range []struct {
		name, field string
		edit        func(m map[string]any)
	}{
		{"no state_topic", "state_topic", func(m map[string]any) { delete(m, "state_topic") }},
		{"unknown field (a typo)", "payload_instal", func(m map[string]any) { m["payload_instal"] = "install" }},
		{"wildcard in command_topic", "command_topic", func(m map[string]any) { m["command_topic"] = "tidewatch/+/install" }},
		{"# inside a filter", "state_topic", func(m map[string]any) { m["state_topic"] = "tidewatch/#/state" }},
		{"NUL in a topic", "state_topic", func(m map[string]any) { m["state_topic"] = "tide\x00watch" }},
		{"qos 3", "qos", func(m map[string]any) { m["qos"] = 3.0 }},
		{"qos as a string", "qos", func(m map[string]any) { m["qos"] = "1" }},
		{"retain as a string", "retain", func(m map[string]any) { m["retain"] = "true" }},
		{"name as a number", "name", func(m map[string]any) { m["name"] = 7.0 }},
		{"icon without a prefix", "icon", func(m map[string]any) { m["icon"] = "docker" }},
		{"entity_category system", "entity_category", func(m map[string]any) { m["entity_category"] = "system" }},
		{"device_class sensor", "device_class", func(m map[string]any) { m["device_class"] = "sensor" }},
		{"device without identifiers", "device", func(m map[string]any) { m["device"] = map[string]any{"name": "x"} }},
		{"device with a numeric identifier", "device.identifiers", func(m map[string]any) {
			m["device"] = map[string]any{"identifiers": []any{1.0}}
		}},
		{"device with an unknown field", "device.colour", func(m map[string]any) {
			m["device"] = map[string]any{"identifiers": []any{"a"}, "colour": "blue"}
		}},
		{"origin without a name", "origin", func(m map[string]any) { m["origin"] = map[string]any{"sw_version": "1"} }},
		{"availability with availability_topic", "availability", func(m map[string]any) { m["availability"] = []any{} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := decode(t, valid)
			tc.edit(m)
			errs := UpdateDiscoveryErrors(m)
			found := false
			for _, e := range errs {
				found = found || strings.HasPrefix(e, tc.field+": ")
			}
			if !found {
				t.Errorf("UpdateDiscoveryErrors = %q, want an error for %s", errs, tc.field)
			}
		})
	}
}

// TestUpdateStateErrors: a valid state passes; each broken one fails.
func TestUpdateStateErrors(t *testing.T) {
	ok := `{"installed_version":"1.0.0","latest_version":"1.1.0","title":"web","release_summary":"minor","in_progress":false,"update_percentage":null}`
	if errs := UpdateStateErrors(decode(t, ok)); len(errs) != 0 {
		t.Fatalf("UpdateStateErrors(valid) = %v, want none", errs)
	}
	for _, tc := range []struct{ name, state, want string }{
		{"not an object", `null`, "not a JSON object"},
		{"in_progress as a string", `{"in_progress":"false"}`, "in_progress: "},
		{"a version as a number", `{"installed_version":1}`, "installed_version: "},
		{"unknown key", `{"installed":"1.0.0"}`, "installed: "},
		{"summary over 255", `{"release_summary":"` + strings.Repeat("é", 256) + `"}`, "release_summary: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var m map[string]any
			_ = json.Unmarshal([]byte(tc.state), &m)
			errs := UpdateStateErrors(m)
			if len(errs) == 0 || !strings.HasPrefix(errs[0], tc.want) {
				t.Errorf("UpdateStateErrors(%s) = %q, want an error starting %q", tc.state, errs, tc.want)
			}
		})
	}
}
