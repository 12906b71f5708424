package mqtt

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/tidewatch/tidewatch/plugins/sdk"
	"github.com/tidewatch/tidewatch/test/testbed"
)

// TestRepository: the entity's title is the image without tag or digest,
// whatever the image looks like.
func TestRepository(t *testing.T) {
	for _, tc := range []struct{ image, want string }{
		{"nginx:1.25", "nginx"},
		{"nginx", "nginx"},
		{"registry.example:5000/team/app", "registry.example:5000/team/app"},
		{"registry.example:5000/team/app:1.0.0", "registry.example:5000/team/app"},
		{"app:1.0@sha256:" + strings.Repeat("a", 64), "app"},
		{"app@sha256:" + strings.Repeat("b", 64), "app"},
		{"[::1]:5000/app:2", "[::1]:5000/app"},
		{"", ""},
		{":", ""},
		{"@", ""},
		{"a/b:c:d", "a/b:c"},
	} {
		if got := repository(tc.image); got != tc.want {
			t.Errorf("repository(%q) = %q, want %q", tc.image, got, tc.want)
		}
	}
}

// TestState: what the update entity's state says for each status of a
// container's update.
func TestState(t *testing.T) {
	web := Container{Host: "local", Name: "web", Image: "registry.example/web:1.0.0", Current: "1.0.0", Candidate: "1.1.0", Kind: "minor", UpdateID: 3}
	with := func(edit func(c *Container)) Container { c := web; edit(&c); return c }
	for _, tc := range []struct {
		name                string
		c                   Container
		installing          bool
		installed, latest   string
		inProgress, summary bool
	}{
		{"pending", with(func(c *Container) { c.Status = "pending" }), false, "1.0.0", "1.1.0", false, true},
		{"install pressed", with(func(c *Container) { c.Status = "notified" }), true, "1.0.0", "1.1.0", true, true},
		{"applying", with(func(c *Container) { c.Status = "applying" }), false, "1.0.0", "1.1.0", true, true},
		// Rolled out, before the next run reads the container again.
		{"applied, record stale", with(func(c *Container) { c.Status = "applied" }), false, "1.1.0", "1.1.0", false, false},
		{"applied, record read", with(func(c *Container) { c.Status, c.Current = "applied", "1.1.0" }), false, "1.1.0", "1.1.0", false, false},
		{"rolled back", with(func(c *Container) { c.Status = "rolled-back" }), false, "1.0.0", "1.1.0", false, true},
		{"no update", Container{Host: "local", Name: "cache", Image: "cache:7.2", Current: "7.2"}, false, "7.2", "7.2", false, false},
		{"digest applied", with(func(c *Container) {
			c.Kind, c.Candidate, c.Status = "digest", "1.0.0", "applied"
			c.CurrentDigest, c.CandidateDigest = "sha256:"+strings.Repeat("1", 64), "sha256:"+strings.Repeat("2", 64)
		}), false, "1.0.0@222222222222", "1.0.0@222222222222", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newEntity(Config{Topic: "tidewatch", DiscoveryPrefix: "homeassistant"}, "home", tc.c).state(tc.installing)
			if s["installed_version"] != tc.installed || s["latest_version"] != tc.latest || s["in_progress"] != tc.inProgress {
				t.Errorf("state = %v, want installed %s, latest %s, in progress %v", s, tc.installed, tc.latest, tc.inProgress)
			}
			if _, ok := s["release_summary"]; ok != tc.summary {
				t.Errorf("state = %v: release_summary there %v, want %v", s, ok, tc.summary)
			}
			if want := repository(tc.c.Image); s["title"] != want {
				t.Errorf("title = %v, want %s", s["title"], want)
			}
		})
	}
}

// TestFireBeforeConnected: a broker that takes the TCP connection and never
// answers CONNECT. Fire fails at once, to be retried, instead of queueing
// the publish in paho's store (whose token then never completes) and
// waiting out the publish timeout.
func TestFireBeforeConnected(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	api := newFakeAPI(t)
	tr := NewWithLogger(slog.New(slog.DiscardHandler))
	if err := tr.Configure(t.Context(), "mute", map[string]string{OptBroker: "mqtt://" + ln.Addr().String(), OptAPIURL: api.URL, OptAPIToken: apiToken}); err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	start := time.Now()
	res := tr.Fire(t.Context(), []sdk.Update{{Event: sdk.EventUpdateAvailable, Host: "local", Container: "web", ContainerName: "web", Image: "registry.example/web", Current: "1.0.0", Candidate: "1.1.0", Kind: "minor"}})
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Fire took %s against a broker that never answers, want an at-once retry", took)
	}
	if len(res) != 1 || res[0].Err == nil || sdk.IsPermanent(res[0].Err) {
		t.Errorf("Fire = %+v, want one retryable failure", res)
	}
}

// TestLateNoticeKeepsInstall: the API says web's update is being applied;
// a notice of that same update that comes late (a retried delivery) does
// not set the entity back to pending, and its title stays the API's.
func TestLateNoticeKeepsInstall(t *testing.T) {
	b := testbed.Require(t).MQTT(t)
	api := newFakeAPI(t, Container{Host: "local", Name: "web", Image: "registry.example/web:1.0.0", Current: "1.0.0", Candidate: "1.1.0", Kind: "minor", Status: "applying", UpdateID: 7})
	h := newHA(t, b)
	tr := configured(t, b, b.Addr, "late", api)
	const state = "tidewatch/late/local/web/state"
	h.wait(t, state, "in progress", func(p string) bool { return jsonField(p, "in_progress") == true })
	// Every state from now on.
	var mu sync.Mutex
	var states []string
	o := paho.NewClientOptions().AddBroker("tcp://" + b.Addr).SetClientID(fmt.Sprintf("late-%d", time.Now().UnixNano())).
		SetUsername(b.Username).SetPassword(b.Password).SetOrderMatters(true)
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connecting: %v", tok.Error())
	}
	defer c.Disconnect(100)
	for _, topic := range []string{state, "tidewatch/late/marker"} {
		if tok := c.Subscribe(topic, 1, func(_ paho.Client, m paho.Message) {
			mu.Lock()
			states = append(states, m.Topic()+" "+string(m.Payload()))
			mu.Unlock()
		}); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("subscribing: %v", tok.Error())
		}
	}

	res := tr.Fire(t.Context(), []sdk.Update{{Event: sdk.EventUpdateAvailable, Host: "local", Container: "web", ContainerName: "web", Image: "registry.example/web", Current: "1.0.0", Candidate: "1.1.0", Kind: "minor"}})
	if len(res) != 1 || res[0].Err != nil {
		t.Fatalf("Fire = %+v, want delivered", res)
	}
	// What Fire published reached the broker before its acknowledgement:
	// a marker published now arrives after it.
	c.Publish("tidewatch/late/marker", 1, false, "m").Wait()
	waitFor(t, "the marker", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(states) > 0 && states[len(states)-1] == "tidewatch/late/marker m"
	})
	mu.Lock()
	defer mu.Unlock()
	for _, m := range states {
		p, ok := strings.CutPrefix(m, state+" ")
		if ok && (jsonField(p, "in_progress") != true || jsonField(p, "title") != "registry.example/web") {
			t.Errorf("state after a late notice = %s, want still in progress, titled registry.example/web", p)
		}
	}
}

// waitFor polls cond until it holds, for up to 15 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s never came", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestLastWill: the trigger's connection to the broker (through a TCP relay)
// is cut without a DISCONNECT, as when its process dies or the network goes.
// The broker then publishes the trigger's last will: offline, retained, as a
// Home Assistant subscribing afterwards reads it. Once the relay lets it
// through again, the trigger reconnects and says online.
func TestLastWill(t *testing.T) {
	b := testbed.Require(t).MQTT(t)
	relay := newRelay(t, b.Addr)
	api := newFakeAPI(t)
	configured(t, b, relay.addr, "will", api)
	h := newHA(t, b)
	const status = "tidewatch/will/status"
	h.wait(t, status, "online", func(p string) bool { return p == Online })

	relay.cut()
	h.wait(t, status, "offline, the last will", func(p string) bool { return p == Offline })
	later := newHA(t, b)
	later.wait(t, status, "offline, retained", func(p string) bool { return p == Offline })

	relay.resume()
	h.wait(t, status, "online again", func(p string) bool { return p == Online })
}

// relay passes TCP connections to a broker until cut, which closes them
// all, and refuses new ones until resume.
type relay struct {
	addr   string
	broker string
	mu     sync.Mutex
	open   []net.Conn
	closed bool
}

func newRelay(t *testing.T, broker string) *relay {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &relay{addr: ln.Addr().String(), broker: broker}
	t.Cleanup(func() { ln.Close(); r.cut() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go r.serve(c)
		}
	}()
	return r
}

func (r *relay) serve(c net.Conn) {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		c.Close()
		return
	}
	up, err := net.Dial("tcp", r.broker)
	if err != nil {
		r.mu.Unlock()
		c.Close()
		return
	}
	r.open = append(r.open, c, up)
	r.mu.Unlock()
	go func() { io.Copy(up, c); up.Close() }()
	io.Copy(c, up)
	c.Close()
}

func (r *relay) cut() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	for _, c := range r.open {
		c.Close()
	}
	r.open = nil
}

func (r *relay) resume() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = false
}

// TestInstallWithoutDeployingTrigger: tidewatch has triggers, none of which
// deploys. Install is refused with the reason published back, and nothing
// is asked of the API.
func TestInstallWithoutDeployingTrigger(t *testing.T) {
	b := testbed.Require(t).MQTT(t)
	api := newFakeAPI(t, Container{Host: "local", Name: "web", Image: "registry.example/web:1.0.0", Current: "1.0.0", Candidate: "1.1.0", Kind: "minor", Status: "pending", UpdateID: 7})
	api.triggers = `{"triggers":[{"name":"webhook.ops","deploys":false},{"name":"notify.chat","deploys":false}]}`
	h := newHA(t, b)
	configured(t, b, b.Addr, "nodeploy", api)
	h.wait(t, "tidewatch/nodeploy/local/web/state", "the update", func(p string) bool { return jsonField(p, "latest_version") == "1.1.0" })
	h.c.Publish("tidewatch/nodeploy/local/web/install", 1, false, PayloadInstall).Wait()
	h.wait(t, "tidewatch/nodeploy/local/web/attributes", "the refusal", func(p string) bool {
		return jsonField(p, "install_result") == "refused: no deploying trigger (a compose trigger, say) is configured in tidewatch"
	})
	h.wait(t, "tidewatch/nodeploy/local/web/state", "not in progress", func(p string) bool { return jsonField(p, "in_progress") == false })
	api.mu.Lock()
	defer api.mu.Unlock()
	if len(api.applied) != 0 {
		t.Errorf("applied = %v, want nothing asked", api.applied)
	}
}

// configured returns an mqtt trigger configured as instance name, against
// the bed's broker (user and password) at addr, with tidewatch/<name> as
// its base topic and api as tidewatch's API; it is closed when the test ends.
func configured(t *testing.T, b testbed.MQTTBroker, addr, name string, api *fakeAPI) *Trigger {
	t.Helper()
	tr := NewWithLogger(slog.New(slog.DiscardHandler))
	err := tr.Configure(t.Context(), name, map[string]string{
		OptBroker: "mqtt://" + addr, OptUsername: b.Username, OptPassword: b.Password, OptTopic: "tidewatch/" + name,
		OptAPIURL: api.URL, OptAPIToken: apiToken,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.Close)
	return tr
}
