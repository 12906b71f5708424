package mqtt

import (
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"strings"
)

// Container is a watched container as tidewatch's API lists it
// (GET /api/containers), the fields the entities need.
type Container struct {
	Host            string `json:"host"`
	Name            string `json:"name"`
	DisplayName     string `json:"display_name"`
	Image           string `json:"image"`
	Current         string `json:"current"`
	CurrentDigest   string `json:"current_digest"`
	Candidate       string `json:"candidate"`
	CandidateDigest string `json:"candidate_digest"`
	Kind            string `json:"kind"`
	Link            string `json:"link"`
	Status          string `json:"status"`
	UpdateID        int64  `json:"update_id"`
}

// unsafe are the characters a topic level or an object ID does not keep.
var unsafe = regexp.MustCompile(`[^A-Za-z0-9_-]`)

// level returns s as one topic level and object ID part: letters, digits, _
// and -; anything else becomes _, and then a short hash of s keeps two
// names apart that differ only there.
func level(s string) string {
	clean := unsafe.ReplaceAllString(s, "_")
	if clean == s && s != "" {
		return s
	}
	sum := sha256.Sum256([]byte(s))
	return clean + "-" + hex.EncodeToString(sum[:4])
}

// entity is what the trigger publishes for one container.
type entity struct {
	base      string // <TOPIC>/<host>/<name>
	config    string // the discovery topic
	uniqueID  string
	container Container
}

func newEntity(cfg Config, instance string, c Container) entity {
	base := cfg.Topic + "/" + level(c.Host) + "/" + level(c.Name)
	node := "tidewatch_" + level(instance)
	obj := level(c.Host) + "_" + level(c.Name)
	return entity{
		base:      base,
		config:    cfg.DiscoveryPrefix + "/update/" + node + "/" + obj + "/config",
		uniqueID:  node + "_" + obj,
		container: c,
	}
}

func (e entity) stateTopic() string      { return e.base + "/state" }
func (e entity) attributesTopic() string { return e.base + "/attributes" }
func (e entity) installTopic() string    { return e.base + "/install" }

// PayloadInstall is what Home Assistant publishes to press Install.
const PayloadInstall = "install"

// Availability payloads of <TOPIC>/status.
const (
	Online  = "online"
	Offline = "offline"
)

// discovery is the Home Assistant discovery config of e: an update entity
// (https://www.home-assistant.io/integrations/update.mqtt/).
func (e entity) discovery(cfg Config, instance string) map[string]any {
	c := e.container
	name := c.DisplayName
	if name == "" {
		name = c.Name
	}
	d := map[string]any{
		"name":                  name,
		"unique_id":             e.uniqueID,
		"state_topic":           e.stateTopic(),
		"json_attributes_topic": e.attributesTopic(),
		"availability_topic":    cfg.Topic + "/status",
		"payload_available":     Online,
		"payload_not_available": Offline,
		"icon":                  "mdi:docker",
		"entity_category":       "diagnostic",
		"qos":                   1,
		"device": map[string]any{
			"identifiers":  []string{"tidewatch_" + level(instance) + "_" + level(c.Host)},
			"name":         "tidewatch " + c.Host,
			"manufacturer": "tidewatch",
			"model":        "container updates",
		},
		"origin": map[string]any{"name": "tidewatch"},
	}
	if cfg.Install {
		d["command_topic"] = e.installTopic()
		d["payload_install"] = PayloadInstall
	}
	return d
}

// version is a version as the entity shows it: the tag, and for a digest
// update (same tag, new image) the first 12 hex digits of the digest, so
// that Home Assistant sees two different versions.
func version(tag, digest string, withDigest bool) string {
	if !withDigest || digest == "" {
		return tag
	}
	d := strings.TrimPrefix(digest, "sha256:")
	if len(d) > 12 {
		d = d[:12]
	}
	return tag + "@" + d
}

// repository returns image without its tag or digest: the entity's title,
// the same before and after an update, whether the image comes from the
// API (nginx:1.25) or an update (the repository).
func repository(image string) string {
	image, _, _ = strings.Cut(image, "@")
	if i := strings.LastIndex(image, ":"); i > strings.LastIndex(image, "/") {
		image = image[:i]
	}
	return image
}

// maxSummary is Home Assistant's limit on release_summary.
const maxSummary = 255

// state is the entity's state: what runs, what is offered, whether a
// rollout runs.
func (e entity) state(installing bool) map[string]any {
	c := e.container
	digest := c.Kind == "digest"
	installed := version(c.Current, c.CurrentDigest, digest)
	if c.Status == "applied" && c.Candidate != "" {
		// Rolled out: the candidate runs, though the container's record
		// may still name the old version until the next run reads it.
		installed = version(c.Candidate, c.CandidateDigest, digest)
	}
	latest := installed
	open := c.UpdateID != 0 && c.Candidate != "" && (c.Status == "pending" || c.Status == "notified" || c.Status == "applying" || c.Status == "failed" || c.Status == "rolled-back")
	if open {
		latest = version(c.Candidate, c.CandidateDigest, digest)
	}
	s := map[string]any{
		"installed_version": installed,
		"latest_version":    latest,
		"title":             repository(c.Image),
		"in_progress":       installing || c.Status == "applying",
	}
	if c.Link != "" && open {
		s["release_url"] = c.Link
	}
	if open {
		summary := c.Kind + " update " + c.Current + " → " + c.Candidate
		if c.Status == "failed" || c.Status == "rolled-back" {
			summary += " (last rollout " + c.Status + ")"
		}
		if r := []rune(summary); len(r) > maxSummary {
			summary = string(r[:maxSummary])
		}
		s["release_summary"] = summary
	}
	return s
}

// attributes are the entity's attributes: where it runs and what became of
// the last Install.
func (e entity) attributes(install string) map[string]any {
	c := e.container
	a := map[string]any{
		"host": c.Host, "container": c.Name, "image": c.Image, "current": c.Current,
		"candidate": c.Candidate, "kind": c.Kind, "status": c.Status, "update_id": c.UpdateID,
	}
	if install != "" {
		a["install_result"] = install
	}
	return a
}
