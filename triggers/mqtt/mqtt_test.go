package mqtt

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/tidewatch/tidewatch/plugins/sdk"
	"github.com/tidewatch/tidewatch/test/hass"
	"github.com/tidewatch/tidewatch/test/testbed"
	"github.com/tidewatch/tidewatch/triggers/triggertest"
)

func TestMain(m *testing.M) {
	triggertest.Main(m, map[string]func() sdk.Trigger{"mqtt": func() sdk.Trigger { return New() }})
}

// fakeAPI is tidewatch's API as the trigger uses it: containers, triggers,
// apply, and the event stream, with a bearer token.
type fakeAPI struct {
	*httptest.Server
	mu         sync.Mutex
	containers []Container
	refuse     map[int64]string // update ID → why apply is refused (403)
	applied    []string         // "id trigger"
	triggers   string           // the answer of GET /api/triggers
	events     chan string
}

const apiToken = "mqtt-test-token-5d1e"

func newFakeAPI(t *testing.T, cs ...Container) *fakeAPI {
	f := &fakeAPI{containers: cs, refuse: map[int64]string{}, events: make(chan string, 16),
		triggers: `{"triggers":[{"name":"webhook.ops","deploys":false},{"name":"compose.prod","deploys":true}]}`}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/containers", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		json.NewEncoder(w).Encode(map[string]any{"containers": f.containers})
	})
	mux.HandleFunc("GET /api/triggers", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		w.Write([]byte(f.triggers))
	})
	mux.HandleFunc("POST /api/updates/{id}/apply", func(w http.ResponseWriter, r *http.Request) {
		var body struct{ Trigger string }
		json.NewDecoder(r.Body).Decode(&body)
		var id int64
		fmt.Sscan(r.PathValue("id"), &id)
		f.mu.Lock()
		defer f.mu.Unlock()
		if why, ok := f.refuse[id]; ok {
			w.WriteHeader(http.StatusForbidden)
			json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": "refused", "message": why}})
			return
		}
		f.applied = append(f.applied, fmt.Sprintf("%d %s", id, body.Trigger))
		w.WriteHeader(http.StatusAccepted)
		w.Write([]byte(`{"delivery":{"id":77}}`))
	})
	mux.HandleFunc("GET /api/events", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		for {
			select {
			case <-r.Context().Done():
				return
			case e := <-f.events:
				fmt.Fprintf(w, "event: %s\ndata: {}\n\n", e)
				w.(http.Flusher).Flush()
			}
		}
	})
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+apiToken {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

// set changes the containers and tells the trigger, as tidewatch does.
func (f *fakeAPI) set(edit func(cs []Container) []Container) {
	f.mu.Lock()
	f.containers = edit(f.containers)
	f.mu.Unlock()
	f.events <- "update"
}

// ha is a client that subscribes as Home Assistant does and keeps the last
// (retained or live) message of each topic.
type ha struct {
	c    paho.Client
	mu   sync.Mutex
	last map[string]string
}

func newHA(t *testing.T, b testbed.MQTTBroker) *ha {
	h := &ha{last: map[string]string{}}
	o := paho.NewClientOptions().AddBroker("tcp://" + b.Addr).SetClientID(fmt.Sprintf("ha-%d", time.Now().UnixNano())).
		SetUsername(b.Username).SetPassword(b.Password)
	h.c = paho.NewClient(o)
	if tok := h.c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("HA connecting: %v", tok.Error())
	}
	for _, f := range []string{"homeassistant/#", "tidewatch/#"} {
		if tok := h.c.Subscribe(f, 1, func(_ paho.Client, m paho.Message) {
			h.mu.Lock()
			h.last[m.Topic()] = string(m.Payload())
			h.mu.Unlock()
		}); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("HA subscribing: %v", tok.Error())
		}
	}
	t.Cleanup(func() { h.c.Disconnect(100) })
	return h
}

// wait waits until topic's last payload satisfies ok.
func (h *ha) wait(t *testing.T, topic, what string, ok func(payload string) bool) string {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		h.mu.Lock()
		p, seen := h.last[topic]
		h.mu.Unlock()
		if seen && ok(p) {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s never came; last payload %q (seen %v)", topic, what, p, seen)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func jsonField(p, field string) any {
	var m map[string]any
	json.Unmarshal([]byte(p), &m)
	return m[field]
}

// TestHomeAssistantEntities: against a real mosquitto (TLS listener,
// password), with tidewatch's API faked: Home Assistant sees an update
// entity per container whose discovery config passes the MQTT update schema,
// online availability, the state of each; Install applies through the
// deploying trigger (with the token), in progress until the API says the
// update is applied, then the new version; a refusal is published back in
// the attributes; a container that goes loses its entity; and offline when
// the trigger stops.
func TestHomeAssistantEntities(t *testing.T) {
	b := testbed.Require(t).MQTT(t)
	api := newFakeAPI(t,
		Container{Host: "local", Name: "web", DisplayName: "Web shop", Image: "registry.example/web", Current: "1.0.0", Candidate: "1.1.0", Kind: "minor", Link: "https://example.com/r/1.1.0", Status: "pending", UpdateID: 7},
		Container{Host: "local", Name: "db", Image: "registry.example/db", Current: "15.1", Candidate: "15.2", Kind: "minor", Status: "pending", UpdateID: 8},
		Container{Host: "local", Name: "cache", Image: "registry.example/cache", Current: "7.2"},
	)
	api.refuse[8] = "refused by label tidewatch.trigger.exclude=compose: it lists compose.prod"
	h := newHA(t, b)

	tr := NewWithLogger(slog.New(slog.DiscardHandler))
	err := tr.Configure(t.Context(), "home", map[string]string{
		OptBroker: "mqtts://" + b.TLSAddr, OptUsername: b.Username, OptPassword: b.Password, OptTLSCAFile: b.CAFile,
		OptAPIURL: api.URL, OptAPIToken: apiToken,
	})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			tr.Close()
		}
	}()

	h.wait(t, "tidewatch/status", "online", func(p string) bool { return p == Online })
	cfgTopic := "homeassistant/update/tidewatch_home/local_web/config"
	p := h.wait(t, cfgTopic, "the discovery config", func(p string) bool { return p != "" })
	var d map[string]any
	if err := json.Unmarshal([]byte(p), &d); err != nil {
		t.Fatalf("discovery config %s: %v", p, err)
	}
	for _, e := range hass.UpdateDiscoveryErrors(d) {
		t.Errorf("discovery config: %s", e)
	}
	if d["command_topic"] != "tidewatch/local/web/install" || d["payload_install"] != PayloadInstall || d["name"] != "Web shop" {
		t.Errorf("discovery config = %s", p)
	}
	for _, name := range []string{"web", "db", "cache"} {
		s := h.wait(t, "tidewatch/local/"+name+"/state", "the state", func(p string) bool { return p != "" })
		var m map[string]any
		json.Unmarshal([]byte(s), &m)
		for _, e := range hass.UpdateStateErrors(m) {
			t.Errorf("%s state: %s", name, e)
		}
	}
	h.wait(t, "tidewatch/local/web/state", "1.0.0 → 1.1.0", func(p string) bool {
		return jsonField(p, "installed_version") == "1.0.0" && jsonField(p, "latest_version") == "1.1.0" && jsonField(p, "release_url") == "https://example.com/r/1.1.0"
	})
	h.wait(t, "tidewatch/local/cache/state", "no update", func(p string) bool {
		return jsonField(p, "installed_version") == "7.2" && jsonField(p, "latest_version") == "7.2"
	})

	// Install, as Home Assistant publishes it.
	h.c.Publish("tidewatch/local/web/install", 1, false, PayloadInstall).Wait()
	h.wait(t, "tidewatch/local/web/attributes", "the apply's result", func(p string) bool {
		return jsonField(p, "install_result") == "applying through compose.prod (delivery 77)"
	})
	api.mu.Lock()
	applied := fmt.Sprint(api.applied)
	api.mu.Unlock()
	if applied != "[7 compose.prod]" {
		t.Errorf("applied = %s, want update 7 through compose.prod only (webhook.ops does not deploy)", applied)
	}
	api.set(func(cs []Container) []Container { cs[0].Status = "applying"; return cs })
	h.wait(t, "tidewatch/local/web/state", "in progress", func(p string) bool { return jsonField(p, "in_progress") == true })
	api.set(func(cs []Container) []Container {
		cs[0].Current, cs[0].Candidate, cs[0].Status, cs[0].UpdateID = "1.1.0", "", "", 0
		return cs
	})
	h.wait(t, "tidewatch/local/web/state", "the new version", func(p string) bool {
		return jsonField(p, "installed_version") == "1.1.0" && jsonField(p, "latest_version") == "1.1.0" && jsonField(p, "in_progress") == false
	})

	// Refused: the reason comes back.
	h.c.Publish("tidewatch/local/db/install", 1, false, PayloadInstall).Wait()
	h.wait(t, "tidewatch/local/db/attributes", "the refusal", func(p string) bool {
		r, _ := jsonField(p, "install_result").(string)
		return strings.HasPrefix(r, "refused: compose.prod: refused by label tidewatch.trigger.exclude=compose")
	})

	// A retained install left on the broker is not a press.
	h.c.Publish("tidewatch/local/cache/install", 1, true, PayloadInstall).Wait()
	defer h.c.Publish("tidewatch/local/cache/install", 1, true, "").Wait()

	// The container goes: its entity goes.
	api.set(func(cs []Container) []Container { return cs[:1] })
	h.wait(t, "homeassistant/update/tidewatch_home/local_db/config", "the removal", func(p string) bool { return p == "" })
	h.wait(t, "tidewatch/local/db/state", "the state cleared", func(p string) bool { return p == "" })

	tr.Close()
	stopped = true
	h.wait(t, "tidewatch/status", "offline", func(p string) bool { return p == Offline })
	api.mu.Lock()
	defer api.mu.Unlock()
	if len(api.applied) != 1 {
		t.Errorf("applied = %v; the retained install must not apply", api.applied)
	}
}
