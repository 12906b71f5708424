// Package hass is Home Assistant's side of MQTT discovery, for tests: the
// MQTT update entity's discovery schema and state fields, as Home Assistant
// checks them (homeassistant/components/mqtt/update.py), so that the mqtt
// trigger's tests and the system tests hold its payloads to the same rules.
package hass

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// updateSchema is Home Assistant's MQTT update discovery schema
// (homeassistant/components/mqtt/update.py: PLATFORM_SCHEMA_MODERN, over
// MQTT_RO_SCHEMA, MQTT_ENTITY_COMMON_SCHEMA and the availability schema), as
// field → kind: the fields it takes and the type each must have. state_topic
// is required (MQTT_RO_SCHEMA).
var updateSchema = map[string]string{
	"state_topic": "subscribe_topic", "value_template": "string", "qos": "qos", "encoding": "string",
	"command_topic": "publish_topic", "device_class": "device_class", "display_precision": "uint",
	"latest_version_template": "string", "latest_version_topic": "subscribe_topic", "name": "string_or_null",
	"payload_install": "string", "release_summary": "string", "release_url": "string", "retain": "bool", "title": "string",
	"availability_topic": "subscribe_topic", "payload_available": "string", "payload_not_available": "string",
	"availability_template": "string", "availability": "availability_list", "availability_mode": "availability_mode",
	"device": "device", "origin": "origin", "enabled_by_default": "bool", "entity_category": "entity_category",
	"icon": "icon", "json_attributes_topic": "subscribe_topic", "json_attributes_template": "string",
	"object_id": "string", "default_entity_id": "string", "unique_id": "string", "entity_picture": "string",
}

var (
	iconShape    = regexp.MustCompile(`^[a-z0-9-]+:[a-z0-9-]+$`)
	topicInvalid = regexp.MustCompile("[\x00]")
)

// UpdateDiscoveryErrors checks an update entity's discovery config (the
// JSON decoded into a map) against Home Assistant's MQTT update schema:
// every field known (Home Assistant drops unknown ones silently, which
// hides typos), each of its type, the required ones there. It returns one
// line per problem, in field order; none for a valid config.
func UpdateDiscoveryErrors(d map[string]any) []string {
	var errs []string
	bad := func(f, format string, args ...any) { errs = append(errs, f+": "+fmt.Sprintf(format, args...)) }
	if _, ok := d["state_topic"]; !ok {
		bad("state_topic", "required")
	}
	if _, a := d["availability"]; a {
		if _, b := d["availability_topic"]; b {
			bad("availability", "exclusive with availability_topic")
		}
	}
	keys := make([]string, 0, len(d))
	for k := range d {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, f := range keys {
		v := d[f]
		kind, ok := updateSchema[f]
		if !ok {
			bad(f, "not a field of the MQTT update schema")
			continue
		}
		s, isString := v.(string)
		switch kind {
		case "string":
			if !isString {
				bad(f, "want a string, got %T", v)
			}
		case "string_or_null":
			if v != nil && !isString {
				bad(f, "want a string or null, got %T", v)
			}
		case "bool":
			if _, ok := v.(bool); !ok {
				bad(f, "want a boolean, got %T", v)
			}
		case "uint":
			if n, ok := v.(float64); !ok || n < 0 || n != float64(int(n)) {
				bad(f, "want a positive integer, got %v", v)
			}
		case "qos":
			if n, ok := v.(float64); !ok || (n != 0 && n != 1 && n != 2) {
				bad(f, "want 0, 1 or 2, got %v", v)
			}
		case "publish_topic":
			if !isString || s == "" || strings.ContainsAny(s, "+#") || topicInvalid.MatchString(s) || len(s) > 65535 {
				bad(f, "want a topic without wildcards, got %q", v)
			}
		case "subscribe_topic":
			if !isString || s == "" || topicInvalid.MatchString(s) || !validFilter(s) {
				bad(f, "want a topic filter, got %q", v)
			}
		case "device_class":
			if v != nil && s != "firmware" {
				bad(f, "want firmware or null, got %v", v)
			}
		case "entity_category":
			if s != "config" && s != "diagnostic" {
				bad(f, "want config or diagnostic, got %v", v)
			}
		case "availability_mode":
			if s != "all" && s != "any" && s != "latest" {
				bad(f, "want all, any or latest, got %v", v)
			}
		case "icon":
			if !iconShape.MatchString(s) {
				bad(f, "want prefix:name, got %v", v)
			}
		case "device":
			m, ok := v.(map[string]any)
			if !ok {
				bad(f, "want an object, got %T", v)
				continue
			}
			ids, _ := m["identifiers"].([]any)
			if len(ids) == 0 && m["connections"] == nil {
				bad(f, "needs identifiers or connections")
			}
			for _, id := range ids {
				if _, ok := id.(string); !ok {
					bad(f+".identifiers", "want strings, got %T", id)
				}
			}
			for k, x := range m {
				switch k {
				case "identifiers", "connections":
				case "manufacturer", "model", "model_id", "name", "hw_version", "serial_number", "sw_version", "via_device", "suggested_area", "configuration_url":
					if _, ok := x.(string); !ok {
						bad(f+"."+k, "want a string, got %T", x)
					}
				default:
					bad(f+"."+k, "not a device field")
				}
			}
		case "origin":
			m, ok := v.(map[string]any)
			if n, _ := m["name"].(string); !ok || n == "" {
				bad(f, "want an object with a name")
			}
			for k := range m {
				if k != "name" && k != "sw_version" && k != "support_url" {
					bad(f+"."+k, "not an origin field")
				}
			}
		case "availability_list":
			bad(f, "not used by tidewatch")
		}
	}
	return errs
}

// validFilter reports whether s is a valid MQTT topic filter: # only last
// and alone in its level, + alone in its level.
func validFilter(s string) bool {
	levels := strings.Split(s, "/")
	for i, l := range levels {
		if strings.Contains(l, "#") && (l != "#" || i != len(levels)-1) {
			return false
		}
		if strings.Contains(l, "+") && l != "+" {
			return false
		}
	}
	return true
}

// updateState are the fields Home Assistant reads from an update entity's
// JSON state, with their types.
var updateState = map[string]string{
	"installed_version": "string", "latest_version": "string", "title": "string", "release_summary": "string",
	"release_url": "string", "entity_picture": "string", "in_progress": "bool", "update_percentage": "number",
}

// UpdateStateErrors checks an update entity's JSON state (decoded into a
// map) against the fields Home Assistant reads from it, each of its type,
// and release_summary's 255 characters. It returns one line per problem,
// sorted; none for a valid state.
func UpdateStateErrors(s map[string]any) []string {
	if s == nil {
		return []string{"not a JSON object"}
	}
	var errs []string
	for k, v := range s {
		switch updateState[k] {
		case "string":
			if _, ok := v.(string); !ok {
				errs = append(errs, fmt.Sprintf("%s: want a string, got %T", k, v))
			}
		case "bool":
			if _, ok := v.(bool); !ok {
				errs = append(errs, fmt.Sprintf("%s: want a boolean, got %T", k, v))
			}
		case "number":
			if _, ok := v.(float64); !ok && v != nil {
				errs = append(errs, fmt.Sprintf("%s: want a number, got %T", k, v))
			}
		default:
			errs = append(errs, k+": not a field of the update state")
		}
	}
	if rs, _ := s["release_summary"].(string); len([]rune(rs)) > 255 {
		errs = append(errs, "release_summary: over 255 characters")
	}
	sort.Strings(errs)
	return errs
}
