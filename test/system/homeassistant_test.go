package system

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/tidewatch/tidewatch/test/hass"
	"github.com/tidewatch/tidewatch/test/testbed"
)

// TestHomeAssistantInstall is Home Assistant's view of tidewatch, against
// the real parts: the bed's mosquitto (tidewatch on its TLS listener with
// the CA file, user and password file; Home Assistant on the plain one),
// `tidewatch serve` with a compose trigger (AUTO=false) and an mqtt trigger
// whose API token is named mqtt, and a compose v2 project whose web service
// runs 1.0.0 while the registry has 1.1.0.
//
// Subscribed as Home Assistant is, it asserts: the discovery config of the
// web's update entity passes Home Assistant's MQTT update schema (every
// field known, each of its type) and points at the topics used below; the
// availability topic says online; the entity's state says installed 1.0.0,
// latest 1.1.0; a Home Assistant subscribing afresh gets config and state
// retained. Install, pressed as Home Assistant presses it (payload_install
// to command_topic, with the config's qos and retain), rolls the service
// out: the app answers 1.1.0, the entity reports in progress without
// flickering back until it reports installed 1.1.0, still so once the
// rollout has ended, and the history records the request (apply-requested)
// and the rollout (update-applied) by token:mqtt. Install on the
// db service, excluded from the compose trigger by its label, is refused:
// the reason comes back in the entity's install_result attribute, the
// history records the refusal by token:mqtt, and the db keeps 1.0.0.
// Stopped, serve's mqtt trigger leaves availability offline, retained, as a
// Home Assistant connecting afterwards sees it. (The last will, for a
// connection lost without a goodbye, is TestLastWill in triggers/mqtt.)
func TestHomeAssistantInstall(t *testing.T) {
	bed := testbed.Require(t)
	broker := bed.MQTT(t)
	repo := bed.Registry + "/" + unique("hass")
	for _, v := range []string{"1.0.0", "1.1.0"} {
		bed.BuildImage(t, repo+":"+v, testbed.AppOptions{Version: v, Healthcheck: true})
	}
	project := strings.ReplaceAll(unique("hass"), "-", "")
	appPort := freePort(t)
	dir := t.TempDir()
	// The bed's ID on the services too: another worktree's bed, coming down,
	// removes the test containers that carry no bed's ID.
	compose := fmt.Sprintf(`services:
  web:
    image: %[1]s:1.0.0
    ports:
      - "127.0.0.1:%[2]d:8080"
    labels:
      %[3]s: "1"
      %[4]s: "%[5]s"
      tidewatch.watch: "true"
  db:
    image: %[1]s:1.0.0
    labels:
      %[3]s: "1"
      %[4]s: "%[5]s"
      tidewatch.watch: "true"
      tidewatch.trigger.exclude: "compose"
`, repo, appPort, testbed.LabelTest, testbed.LabelBed, bed.State.ID)
	composeFile := filepath.Join(dir, "docker-compose.yml")
	if err := os.WriteFile(composeFile, []byte(compose), 0o644); err != nil {
		t.Fatal(err)
	}
	// Up with compose v2, whose container names (project-web-1) the
	// compose trigger's rollout keeps: the entity is the same before and
	// after Install. (A project brought up by docker-compose 1.x, named
	// project_web_1, is renamed by the rollout, and Home Assistant sees one
	// entity go and another come.)
	bed.ComposeUpWith(t, testbed.ComposeV2, dir, project)
	appURL := fmt.Sprintf("http://127.0.0.1:%d/", appPort)
	if got := bed.WaitHTTP(t, appURL); !strings.Contains(got, "1.0.0") {
		t.Fatalf("the app answers %q before the install, want 1.0.0", got)
	}
	web := strings.TrimPrefix(bed.ComposeContainer(t, project, "web").Name, "/")
	db := strings.TrimPrefix(bed.ComposeContainer(t, project, "db").Name, "/")

	// The mqtt trigger's secrets, in files; its own base topic, so that
	// what other runs left retained on the broker stays out of the way.
	secrets := t.TempDir()
	token := "canary-hass-token-" + randomHex(t, 6)
	sum := sha256.Sum256([]byte(token))
	tokenFile, passwordFile := filepath.Join(secrets, "token"), filepath.Join(secrets, "password")
	for f, v := range map[string]string{tokenFile: token + "\n", passwordFile: broker.Password + "\n"} {
		if err := os.WriteFile(f, []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	topic := "tw" + randomHex(t, 4)
	ha := newHomeAssistant(t, broker, "homeassistant/#", topic+"/#")

	apiPort := freePort(t)
	d := startServeOn(t, apiPort, envFor(t, bed.DockerHost,
		"TIDEWATCH_SERVER_API_TOKENS=mqtt:"+hex.EncodeToString(sum[:]),
		"TIDEWATCH_TRIGGER_COMPOSE_CD_AUTO=false",
		"TIDEWATCH_TRIGGER_COMPOSE_CD_DEADLINE=3m",
		"TIDEWATCH_TRIGGER_COMPOSE_CD_HEALTH_TIMEOUT=60s",
		"TIDEWATCH_TRIGGER_COMPOSE_CD_STABLE_FOR=2s",
		"TIDEWATCH_TRIGGER_MQTT_HA_BROKER=mqtts://"+broker.TLSAddr,
		"TIDEWATCH_TRIGGER_MQTT_HA_TLS_CAFILE="+broker.CAFile,
		"TIDEWATCH_TRIGGER_MQTT_HA_USERNAME="+broker.Username,
		"TIDEWATCH_TRIGGER_MQTT_HA_PASSWORD_FILE="+passwordFile,
		"TIDEWATCH_TRIGGER_MQTT_HA_TOPIC="+topic,
		fmt.Sprintf("TIDEWATCH_TRIGGER_MQTT_HA_API_URL=http://127.0.0.1:%d", apiPort),
		"TIDEWATCH_TRIGGER_MQTT_HA_API_TOKEN_FILE="+tokenFile,
		"TIDEWATCH_LOG_LEVEL=debug", // shown only when the test fails
	))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("what Home Assistant received:\n%s\ntidewatch serve's log:\n%s", ha.dump(), d.log.String())
			t.Logf("the history:\n%s\nthe containers:\n%s", apiText(d, token, "/api/history?limit=1000"), apiText(d, token, "/api/containers"))
		}
	})
	const wait = 2 * time.Minute

	// Discovery: the web's update entity, as Home Assistant reads it.
	cfgTopic := "homeassistant/update/tidewatch_ha/local_" + web + "/config"
	raw := ha.wait(t, cfgTopic, "the web's discovery config", wait, func(m mqttMessage) bool { return m.payload != "" })
	var cfg map[string]any
	if err := json.Unmarshal([]byte(raw.payload), &cfg); err != nil {
		t.Fatalf("%s: %v\n%s", cfgTopic, err, raw.payload)
	}
	for _, e := range hass.UpdateDiscoveryErrors(cfg) {
		t.Errorf("discovery config: %s\n%s", e, raw.payload)
	}
	str := func(k string) string { s, _ := cfg[k].(string); return s }
	stateTopic, commandTopic, availTopic := str("state_topic"), str("command_topic"), str("availability_topic")
	if stateTopic != topic+"/local/"+web+"/state" || commandTopic != topic+"/local/"+web+"/install" || availTopic != topic+"/status" {
		t.Fatalf("discovery config topics: state %q, command %q, availability %q; want under %s/ as the README says", stateTopic, commandTopic, availTopic, topic)
	}
	install := str("payload_install")
	if install == "" {
		t.Fatalf("discovery config has no payload_install: Home Assistant would offer no Install\n%s", raw.payload)
	}
	online, offline := orDefault(str("payload_available"), "online"), orDefault(str("payload_not_available"), "offline")

	ha.wait(t, availTopic, "availability "+online, wait, func(m mqttMessage) bool { return m.payload == online })
	st := ha.wait(t, stateTopic, "installed 1.0.0, latest 1.1.0", wait, func(m mqttMessage) bool {
		s := m.json()
		return s["installed_version"] == "1.0.0" && s["latest_version"] == "1.1.0"
	})
	for _, e := range hass.UpdateStateErrors(st.json()) {
		t.Errorf("state: %s\n%s", e, st.payload)
	}
	// Retained: the broker sets the flag only on what it hands a new
	// subscription, so a Home Assistant (re)starting now must get both.
	// (The first message it gets is the retained one, if any: one that
	// was published, maybe not the last seen here.)
	restarted := newHomeAssistant(t, broker, cfgTopic, stateTopic)
	for _, topic := range []string{cfgTopic, stateTopic} {
		restarted.wait(t, topic, "the retained message", 30*time.Second, func(mqttMessage) bool { return true })
		m := restarted.messages(topic)[0]
		published := slices.ContainsFunc(ha.messages(topic), func(p mqttMessage) bool { return p.payload == m.payload })
		if !m.retained || m.payload == "" || !published {
			t.Errorf("%s: a Home Assistant subscribing now reads first %q (retained %v), want a payload tidewatch published, retained: it would lose the entity when it restarts", topic, m.payload, m.retained)
		}
	}

	// Install, pressed as Home Assistant presses it, once the mqtt
	// trigger's own notice of the update is delivered: a delivery of any
	// trigger that ends during the rollout sets the applying update back to
	// pending (core/store's settle; reported), which this test would see
	// as the entity leaving in progress.
	waitUntil(t, wait, "the mqtt trigger's delivery of the web's update", func() bool {
		return slices.ContainsFunc(history(t, d, token, "delivered"), func(e map[string]any) bool {
			return e["container"] == web && e["trigger"] == "mqtt.ha"
		})
	})
	pressed := len(ha.messages(stateTopic))
	ha.press(t, cfg)
	final := ha.wait(t, stateTopic, "installed 1.1.0 after the install", 4*time.Minute, func(m mqttMessage) bool {
		s := m.json()
		return s["installed_version"] == "1.1.0" && s["latest_version"] == "1.1.0" && s["in_progress"] == false
	})
	if got := bed.WaitHTTP(t, appURL); !strings.Contains(got, "1.1.0") {
		t.Errorf("the app answers %q after the install, want 1.1.0", got)
	}
	// From the press to the first state of 1.1.0: in progress, and once
	// in progress, never not in progress.
	after := ha.messages(stateTopic)[pressed:]
	done := slices.IndexFunc(after, func(m mqttMessage) bool { return m == final })
	var seq []string
	first, flicker := -1, -1
	for i, m := range after[:done+1] {
		s := m.json()
		seq = append(seq, fmt.Sprintf("%v→%v in_progress=%v %v", s["installed_version"], s["latest_version"], s["in_progress"], s["release_summary"]))
		switch {
		case i == done:
		case s["in_progress"] == true && first < 0:
			first = i
		case first >= 0 && s["in_progress"] != true && flicker < 0:
			flicker = i
		}
	}
	if first < 0 {
		t.Errorf("the entity never reported in progress between Install and 1.1.0")
	}
	t.Logf("states after Install: %s", strings.Join(seq, "; "))
	if flicker >= 0 {
		// Say why. Known cause: any trigger's delivery of the update that
		// ends during the rollout (the mqtt trigger's own update-available,
		// retried) sets the applying update back to pending, then notified
		// (core/store's settle does not ask whether that trigger deploys).
		var why []string
		for _, kind := range []string{"delivered", "delivery-retry", "delivery-failed", "update-failed", "update-rolled-back", "refused"} {
			for _, e := range history(t, d, token, kind) {
				if e["container"] == web {
					why = append(why, fmt.Sprintf("%s %v: %v", kind, e["trigger"], e["detail"]))
				}
			}
		}
		t.Errorf("state %d after Install is not in progress before the rollout ended: Home Assistant offers Install again; the history of %s:\n%s", flicker, web, strings.Join(why, "\n"))
	}
	attrs := ha.wait(t, topic+"/local/"+web+"/attributes", "the install's result", wait, func(m mqttMessage) bool {
		r, _ := m.json()["install_result"].(string)
		return r != ""
	})
	if r, _ := attrs.json()["install_result"].(string); !strings.HasPrefix(r, "applying through compose.cd") {
		t.Errorf("install_result = %q, want it applied through compose.cd", r)
	}
	// The rollout's own end (the entity may say 1.1.0 earlier, once a run
	// sees the new container), and who asked for it.
	byMQTT := func(e map[string]any) bool {
		return e["container"] == web && e["principal"] == "token:mqtt" && e["to"] == "1.1.0" && e["trigger"] == "compose.cd"
	}
	waitUntil(t, wait, "the rollout's update-applied in the history", func() bool {
		return slices.ContainsFunc(history(t, d, token, "update-applied"), byMQTT)
	})
	if !slices.ContainsFunc(history(t, d, token, "apply-requested"), byMQTT) {
		t.Errorf("history has no apply-requested event of %s to 1.1.0 through compose.cd by token:mqtt:\n%v", web, history(t, d, token, "apply-requested"))
	}
	ha.wait(t, stateTopic, "installed 1.1.0 once the rollout ended", wait, func(m mqttMessage) bool {
		s := m.json()
		return s["installed_version"] == "1.1.0" && s["latest_version"] == "1.1.0" && s["in_progress"] == false
	})

	// Install on the db, which the compose trigger's policy excludes.
	const rule = "refused by label tidewatch.trigger.exclude=compose"
	dbCfgTopic := "homeassistant/update/tidewatch_ha/local_" + db + "/config"
	var dbCfg map[string]any
	if err := json.Unmarshal([]byte(ha.wait(t, dbCfgTopic, "the db's discovery config", wait, func(m mqttMessage) bool { return m.payload != "" }).payload), &dbCfg); err != nil {
		t.Fatalf("%s: %v", dbCfgTopic, err)
	}
	dbState, _ := dbCfg["state_topic"].(string)
	ha.wait(t, dbState, "the db's update", wait, func(m mqttMessage) bool { return m.json()["latest_version"] == "1.1.0" })
	ha.press(t, dbCfg)
	refusal := ha.wait(t, topic+"/local/"+db+"/attributes", "the refusal published back", wait, func(m mqttMessage) bool {
		r, _ := m.json()["install_result"].(string)
		return r != ""
	})
	if r, _ := refusal.json()["install_result"].(string); !strings.HasPrefix(r, "refused: compose.cd: ") || !strings.Contains(r, rule) {
		t.Errorf("db install_result = %q, want refused: compose.cd: …%s…", r, rule)
	}
	if !slices.ContainsFunc(history(t, d, token, "refused"), func(e map[string]any) bool {
		detail, _ := e["detail"].(string)
		return e["container"] == db && e["principal"] == "token:mqtt" && e["trigger"] == "compose.cd" && strings.Contains(detail, rule)
	}) {
		t.Errorf("history has no refusal of %s by token:mqtt naming the rule:\n%v", db, history(t, d, token, "refused"))
	}
	if s := ha.last(dbState).json(); s["installed_version"] != "1.0.0" || s["in_progress"] != false {
		t.Errorf("db state after the refusal = %v, want installed 1.0.0, not in progress", s)
	}
	data, _ := os.ReadFile(composeFile)
	if want := strings.Replace(compose, ":1.0.0", ":1.1.0", 1); string(data) != want {
		t.Errorf("compose file after both installs:\n%s\nwant only the web's tag changed:\n%s", data, want)
	}

	// Stopped: offline, retained, for whoever connects next.
	d.stop(t)
	ha.wait(t, availTopic, "availability "+offline, wait, func(m mqttMessage) bool { return m.payload == offline })
	later := newHomeAssistant(t, broker, availTopic)
	if m := later.wait(t, availTopic, "the retained availability", 30*time.Second, func(mqttMessage) bool { return true }); m.payload != offline || !m.retained {
		t.Errorf("a Home Assistant connecting after the stop reads %q (retained %v), want %q retained", m.payload, m.retained, offline)
	}
}

// history returns the events of kind in serve's history, read with token.
func history(t *testing.T, d *daemon, token, kind string) []map[string]any {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, d.base+"/api/history?limit=1000&kind="+kind, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var page struct {
		Events []map[string]any `json:"events"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &page) != nil {
		t.Fatalf("GET /api/history?kind=%s: %s %s", kind, resp.Status, b)
	}
	return page.Events
}

// apiText is the body of GET path, or why there is none: what a failed
// test shows of the daemon's state.
func apiText(d *daemon, token, path string) string {
	req, _ := http.NewRequest(http.MethodGet, d.base+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.Status + " " + string(b)
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// mqttMessage is one message Home Assistant received.
type mqttMessage struct {
	payload  string
	retained bool
	at       time.Time
}

// json decodes the payload as a JSON object; nil when it is none.
func (m mqttMessage) json() map[string]any {
	var v map[string]any
	_ = json.Unmarshal([]byte(m.payload), &v)
	return v
}

// homeAssistant is an MQTT client that subscribes as Home Assistant does
// (on the broker's plain listener, with the broker's user) and keeps every
// message of every topic, in order.
type homeAssistant struct {
	c    paho.Client
	mu   sync.Mutex
	msgs map[string][]mqttMessage
}

func newHomeAssistant(t *testing.T, b testbed.MQTTBroker, filters ...string) *homeAssistant {
	t.Helper()
	h := &homeAssistant{msgs: map[string][]mqttMessage{}}
	o := paho.NewClientOptions().AddBroker("tcp://" + b.Addr).SetClientID("hass-" + randomHex(t, 6)).
		SetUsername(b.Username).SetPassword(b.Password).SetOrderMatters(true)
	h.c = paho.NewClient(o)
	if tok := h.c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("Home Assistant connecting to %s: %v", b.Addr, tok.Error())
	}
	t.Cleanup(func() { h.c.Disconnect(100) })
	for _, f := range filters {
		tok := h.c.Subscribe(f, 1, func(_ paho.Client, m paho.Message) {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.msgs[m.Topic()] = append(h.msgs[m.Topic()], mqttMessage{payload: string(m.Payload()), retained: m.Retained(), at: time.Now()})
		})
		if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("Home Assistant subscribing to %s: %v", f, tok.Error())
		}
	}
	return h
}

// dump lists every message received, topic by topic, for a failure's log.
func (h *homeAssistant) dump() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var b strings.Builder
	for _, topic := range slices.Sorted(maps.Keys(h.msgs)) {
		for _, m := range h.msgs[topic] {
			fmt.Fprintf(&b, "%s %s retained=%v %s\n", m.at.Format("15:04:05.000"), topic, m.retained, m.payload)
		}
	}
	return b.String()
}

// messages returns topic's messages so far.
func (h *homeAssistant) messages(topic string) []mqttMessage {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.msgs[topic])
}

// last returns topic's last message, the zero one when none came.
func (h *homeAssistant) last(topic string) mqttMessage {
	ms := h.messages(topic)
	if len(ms) == 0 {
		return mqttMessage{}
	}
	return ms[len(ms)-1]
}

// wait waits until topic's last message satisfies ok, and returns it.
func (h *homeAssistant) wait(t *testing.T, topic, what string, timeout time.Duration, ok func(mqttMessage) bool) mqttMessage {
	t.Helper()
	var m mqttMessage
	waitUntil(t, timeout, topic+": "+what, func() bool {
		ms := h.messages(topic)
		if len(ms) == 0 {
			return false
		}
		m = ms[len(ms)-1]
		return ok(m)
	})
	return m
}

// press presses the entity's Install as Home Assistant does (MqttUpdate's
// async_install): payload_install to command_topic with the config's qos
// (default 0) and retain (default false).
func (h *homeAssistant) press(t *testing.T, cfg map[string]any) {
	t.Helper()
	topic, _ := cfg["command_topic"].(string)
	payload, _ := cfg["payload_install"].(string)
	qos, _ := cfg["qos"].(float64)
	retain, _ := cfg["retain"].(bool)
	if tok := h.c.Publish(topic, byte(qos), retain, payload); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("pressing Install (%s): %v", topic, tok.Error())
	}
}
