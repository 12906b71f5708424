package mqtt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/tidewatch/tidewatch/plugins/sdk"
)

var _ sdk.Trigger = (*Trigger)(nil)

// apiTimeout bounds one API request; publishTimeout one publish.
const (
	apiTimeout     = 15 * time.Second
	publishTimeout = 10 * time.Second
)

// Trigger keeps Home Assistant update entities of every watched container
// on an MQTT broker. Configure starts its session (a broker connection and
// a follower of tidewatch's event stream), which runs until the process
// ends or Configure is called again.
type Trigger struct {
	log *slog.Logger

	mu   sync.Mutex
	sess *session
	stop context.CancelFunc
}

// New returns an mqtt trigger that logs with sdk.Logger: the one
// `tidewatch trigger serve mqtt` serves.
func New() *Trigger { return NewWithLogger(sdk.Logger()) }

// NewWithLogger returns an mqtt trigger that logs to log.
func NewWithLogger(log *slog.Logger) *Trigger { return &Trigger{log: log} }

// Describe returns the trigger's type and options.
func (t *Trigger) Describe(context.Context) sdk.Description {
	return sdk.Description{
		Type:        "mqtt",
		Description: "Home Assistant update entities over MQTT for every watched container, whose Install applies the update through tidewatch's API",
		Options:     Options,
	}
}

// Configure parses the options and (re)starts the session. The broker and
// the API need not be up: both are retried in the background.
func (t *Trigger) Configure(_ context.Context, name string, options map[string]string) error {
	cfg, err := ParseConfig(options)
	if err != nil {
		return err
	}
	t.Close()
	ctx, cancel := context.WithCancel(context.Background())
	s := newSession(cfg, name, t.log.With("trigger", name))
	t.mu.Lock()
	t.sess, t.stop = s, cancel
	t.mu.Unlock()
	s.start(ctx)
	return nil
}

// Close ends the session: offline is published and the broker left.
func (t *Trigger) Close() {
	t.mu.Lock()
	s, stop := t.sess, t.stop
	t.sess, t.stop = nil, nil
	t.mu.Unlock()
	if s != nil {
		stop()
		s.wait()
	}
}

// Fire publishes the state of each update's container at once (from the
// update, refined by the API when it answers) and asks for a full sync.
func (t *Trigger) Fire(ctx context.Context, updates []sdk.Update) []sdk.Result {
	t.mu.Lock()
	s := t.sess
	t.mu.Unlock()
	if s == nil {
		return sdk.All(len(updates), sdk.Fail(errors.New("mqtt: Fire before Configure")))
	}
	out := make([]sdk.Result, len(updates))
	for i, u := range updates {
		out[i] = s.publishUpdate(ctx, u)
	}
	s.kick()
	return out
}

// session is one configured connection: broker, API, entities.
type session struct {
	cfg      Config
	instance string
	log      *slog.Logger
	api      *api
	client   paho.Client
	resync   chan struct{}
	done     sync.WaitGroup

	mu           sync.Mutex
	entities     map[string]entity // by base topic
	published    map[string]string // topic → last payload published (retained)
	retained     map[string]bool   // our discovery topics seen on the broker
	installs     map[string]string // base topic → result of the last Install
	working      map[string]bool   // base topic → an Install is being asked for
	retainedBase map[string]string // discovery topic seen → its entity's base topic
}

func newSession(cfg Config, instance string, log *slog.Logger) *session {
	return &session{cfg: cfg, instance: instance, log: log, api: newAPI(cfg), resync: make(chan struct{}, 1),
		entities: map[string]entity{}, published: map[string]string{}, retained: map[string]bool{},
		installs: map[string]string{}, working: map[string]bool{}}
}

func (s *session) statusTopic() string { return s.cfg.Topic + "/status" }

func (s *session) discoveryFilter() string {
	return s.cfg.DiscoveryPrefix + "/update/tidewatch_" + level(s.instance) + "/+/config"
}

// start connects (retrying in the background) and runs the sync loop and
// the event follower until ctx ends.
func (s *session) start(ctx context.Context) {
	o := paho.NewClientOptions().AddBroker(s.cfg.Broker)
	id := s.cfg.ClientID
	if id == "" {
		id = "tidewatch-" + level(s.instance)
	}
	o.SetClientID(id).SetUsername(s.cfg.Username).SetPassword(s.cfg.Password).
		SetCleanSession(true).SetAutoReconnect(true).SetConnectRetry(true).
		SetConnectRetryInterval(2*time.Second).SetMaxReconnectInterval(30*time.Second).
		SetOrderMatters(false).SetWill(s.statusTopic(), Offline, 1, true)
	if s.cfg.TLS != nil {
		o.SetTLSConfig(s.cfg.TLS)
	}
	o.SetOnConnectHandler(func(c paho.Client) {
		s.mu.Lock()
		s.published = map[string]string{} // the broker may have lost what it kept
		s.mu.Unlock()
		c.Publish(s.statusTopic(), 1, true, Online)
		if s.cfg.Discovery {
			c.Subscribe(s.discoveryFilter(), 1, s.onDiscovery)
		}
		if s.cfg.Install {
			c.Subscribe(s.cfg.Topic+"/+/+/install", 1, s.onInstall)
		}
		s.log.Info("mqtt connected", "broker", s.cfg.Broker)
		s.kick()
	})
	o.SetConnectionLostHandler(func(_ paho.Client, err error) {
		s.log.Warn("mqtt connection lost; reconnecting", "broker", s.cfg.Broker, "error", err)
	})
	s.client = paho.NewClient(o)
	s.client.Connect() // retried in the background (ConnectRetry)

	s.done.Add(2)
	go func() {
		defer s.done.Done()
		s.loop(ctx)
	}()
	go func() {
		defer s.done.Done()
		s.follow(ctx)
	}()
}

func (s *session) wait() { s.done.Wait() }

// connected says whether the connection to the broker is up. Not paho's
// IsConnected, which with ConnectRetry is true while the first connection
// is still being tried: a message published then is stored and sent once
// connected, under a new token, so that the publisher's own token never
// completes and its wait ends in a timeout.
func (s *session) connected() bool { return s.client.IsConnectionOpen() }

// kick asks for a sync soon.
func (s *session) kick() {
	select {
	case s.resync <- struct{}{}:
	default:
	}
}

// loop syncs on demand and every Resync; at the end it says offline.
func (s *session) loop(ctx context.Context) {
	tick := time.NewTicker(s.cfg.Resync)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			if s.connected() {
				s.client.Publish(s.statusTopic(), 1, true, Offline).WaitTimeout(2 * time.Second)
			}
			s.client.Disconnect(250)
			return
		case <-s.resync:
		case <-tick.C:
		}
		if err := s.sync(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("mqtt sync", "error", err)
		}
	}
}

// follow follows the API's events, asking for a sync at each, and again
// after each reconnection.
func (s *session) follow(ctx context.Context) {
	wait := time.Second
	for ctx.Err() == nil {
		err := s.api.events(ctx, func() { wait = time.Second; s.kick() }, func(string) { s.kick() })
		if ctx.Err() != nil {
			return
		}
		s.log.Debug("mqtt: the API's event stream broke; following again", "error", err, "in", wait)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, 30*time.Second)
	}
}

// sync reads every container from the API and publishes what changed:
// discovery configs, states, attributes; the entities of containers that
// are gone are removed (an empty retained config).
func (s *session) sync(ctx context.Context) error {
	if !s.connected() {
		return errors.New("not connected to the broker yet")
	}
	rctx, cancel := context.WithTimeout(ctx, apiTimeout)
	defer cancel()
	cs, err := s.api.containers(rctx)
	if err != nil {
		return fmt.Errorf("reading the containers: %w", err)
	}
	want := map[string]entity{}
	list := make([]entity, 0, len(cs))
	for _, c := range cs {
		e := newEntity(s.cfg, s.instance, c)
		want[e.base] = e
		list = append(list, e)
	}
	s.mu.Lock()
	s.entities = want // Fire and Install write it too: read list below, not want
	var gone []string
	for topic := range s.retained {
		if _, ok := s.entityByConfig(topic); !ok {
			gone = append(gone, topic)
		}
	}
	s.mu.Unlock()
	for _, e := range list {
		if err := s.publishEntity(e); err != nil {
			return err
		}
	}
	for _, topic := range gone {
		base := s.baseOfConfig(topic)
		topics := []string{topic}
		if base != "" {
			topics = append(topics, base+"/state", base+"/attributes")
		}
		for _, t := range topics {
			if err := s.publish(t, "", true); err != nil {
				return err
			}
		}
		s.mu.Lock()
		delete(s.retained, topic)
		s.mu.Unlock()
		s.log.Info("mqtt entity removed", "topic", topic)
	}
	return nil
}

// entityByConfig finds the entity of a discovery topic; s.mu held.
func (s *session) entityByConfig(topic string) (entity, bool) {
	for _, e := range s.entities {
		if e.config == topic {
			return e, true
		}
	}
	return entity{}, false
}

// baseOfConfig returns the base topic an entity's config points at, from
// what was published or retained; "" when unknown.
func (s *session) baseOfConfig(topic string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok := s.published[topic]; ok {
		var d struct {
			State string `json:"state_topic"`
		}
		if json.Unmarshal([]byte(p), &d) == nil {
			return strings.TrimSuffix(d.State, "/state")
		}
	}
	return s.retainedBase[topic]
}

// publishEntity publishes e's config, state and attributes where they changed.
func (s *session) publishEntity(e entity) error {
	s.mu.Lock()
	installing, result := s.working[e.base], s.installs[e.base]
	s.mu.Unlock()
	if s.cfg.Discovery {
		if err := s.publishJSON(e.config, e.discovery(s.cfg, s.instance)); err != nil {
			return err
		}
		s.mu.Lock()
		s.retained[e.config] = true
		s.mu.Unlock()
	}
	if err := s.publishJSON(e.stateTopic(), e.state(installing)); err != nil {
		return err
	}
	return s.publishJSON(e.attributesTopic(), e.attributes(result))
}

func (s *session) publishJSON(topic string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return s.publish(topic, string(b), true)
}

// publish publishes payload at QoS 1, unless it is what was last published
// there, and waits for the broker's acknowledgement.
func (s *session) publish(topic, payload string, retain bool) error {
	s.mu.Lock()
	last, ok := s.published[topic]
	s.mu.Unlock()
	if ok && last == payload {
		return nil
	}
	tok := s.client.Publish(topic, 1, retain, payload)
	if !tok.WaitTimeout(publishTimeout) {
		return fmt.Errorf("publishing to %s: no acknowledgement in %s", topic, publishTimeout)
	}
	if err := tok.Error(); err != nil {
		return fmt.Errorf("publishing to %s: %w", topic, err)
	}
	s.mu.Lock()
	if payload == "" {
		delete(s.published, topic)
	} else {
		s.published[topic] = payload
	}
	s.mu.Unlock()
	return nil
}

// publishUpdate publishes the state an update gives its container.
func (s *session) publishUpdate(ctx context.Context, u sdk.Update) sdk.Result {
	if !s.connected() {
		return sdk.Retry(errors.New("not connected to the MQTT broker"))
	}
	c := Container{Host: u.Host, Name: u.ContainerName, DisplayName: u.Container, Image: u.Image, Current: u.Current,
		CurrentDigest: u.CurrentDigest, Candidate: u.Candidate, CandidateDigest: u.CandidateDigest, Kind: u.Kind, Link: u.Link, Status: "pending", UpdateID: -1}
	if c.Name == "" {
		c.Name = u.Container
	}
	switch u.Event {
	case sdk.EventUpdateApplied:
		c.Current, c.CurrentDigest, c.Status, c.UpdateID = u.Candidate, u.CandidateDigest, "applied", 0
	case sdk.EventUpdateFailed:
		c.Status = "failed"
	case sdk.EventUpdateRolledBack:
		c.Status = "rolled-back"
	}
	e := newEntity(s.cfg, s.instance, c)
	s.mu.Lock()
	if known, ok := s.entities[e.base]; ok && known.container.Image != "" {
		// The image as the API writes it (nginx:1.25), not as the update
		// normalises it (index.docker.io/library/nginx): the same title.
		c.Image = known.container.Image
		e.container = c
	}
	if known, ok := s.entities[e.base]; ok && known.container.UpdateID > 0 && c.UpdateID != 0 {
		c.UpdateID = known.container.UpdateID
		e.container = c
		if u.Event == sdk.EventUpdateAvailable && known.container.Candidate == u.Candidate {
			// The API already told of this update, and maybe that it is
			// being applied: a late (retried) notice must not set the
			// entity back to pending.
			e = known
		}
	}
	s.entities[e.base] = e
	s.mu.Unlock()
	done := make(chan error, 1)
	go func() { done <- s.publishEntity(e) }()
	select {
	case err := <-done:
		if err != nil {
			return sdk.Retry(err)
		}
		return sdk.OK("published to " + e.stateTopic())
	case <-ctx.Done():
		return sdk.Retry(fmt.Errorf("publishing to %s: %w", e.stateTopic(), ctx.Err()))
	}
}

// onDiscovery learns the discovery configs the broker keeps for this
// instance, so that those of containers that are gone are removed, even
// after a restart.
func (s *session) onDiscovery(_ paho.Client, m paho.Message) {
	if len(m.Payload()) == 0 {
		return
	}
	var d struct {
		State string `json:"state_topic"`
	}
	_ = json.Unmarshal(m.Payload(), &d)
	s.mu.Lock()
	s.retained[m.Topic()] = true
	if s.retainedBase == nil {
		s.retainedBase = map[string]string{}
	}
	s.retainedBase[m.Topic()] = strings.TrimSuffix(d.State, "/state")
	s.mu.Unlock()
}

// onInstall takes a press of Install: the update is applied through the
// first deploying trigger that accepts it, and the outcome published in
// the entity's attributes (install_result).
func (s *session) onInstall(_ paho.Client, m paho.Message) {
	if m.Retained() {
		return // a command left on the broker is not a press
	}
	base := strings.TrimSuffix(m.Topic(), "/install")
	if strings.TrimSpace(string(m.Payload())) != PayloadInstall {
		s.log.Warn("mqtt: install command with an unknown payload ignored", "topic", m.Topic())
		return
	}
	s.mu.Lock()
	e, ok := s.entities[base]
	busy := s.working[base]
	if ok && !busy {
		s.working[base] = true
	}
	s.mu.Unlock()
	if !ok || busy {
		return
	}
	go s.install(e)
}

func (s *session) install(e entity) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*apiTimeout)
	defer cancel()
	_ = s.publishEntity(e)
	result, started := s.apply(ctx, e.container)
	s.log.Info("mqtt install", "container", e.container.Name, "host", e.container.Host, "result", result)
	s.mu.Lock()
	delete(s.working, e.base)
	s.installs[e.base] = result
	if known, ok := s.entities[e.base]; ok && known.container.UpdateID == e.container.UpdateID {
		e = known // what the API said meanwhile
		if started && (e.container.Status == "pending" || e.container.Status == "notified") {
			// Applying, as the API will say: in progress until it says
			// more, not pending again in between.
			e.container.Status = "applying"
			s.entities[e.base] = e
		}
	}
	s.mu.Unlock()
	_ = s.publishEntity(e)
	s.kick()
}

// apply asks tidewatch to apply c's update and says what came of it, and
// whether a rollout was started.
func (s *session) apply(ctx context.Context, c Container) (string, bool) {
	if c.UpdateID <= 0 || c.Status == "applied" {
		return "nothing to install: " + c.Name + " runs the newest version tidewatch knows", false
	}
	triggers := s.cfg.DeployTriggers
	if len(triggers) == 0 {
		ts, err := s.api.deployers(ctx)
		if err != nil {
			return "not applied: reading tidewatch's triggers: " + err.Error(), false
		}
		triggers = ts
	}
	if len(triggers) == 0 {
		return "refused: no deploying trigger (a compose trigger, say) is configured in tidewatch", false
	}
	var refusals []string
	for _, tr := range triggers {
		id, err := s.api.apply(ctx, c.UpdateID, tr)
		if err == nil {
			return fmt.Sprintf("applying through %s (delivery %d)", tr, id), true
		}
		var ae *apiError
		if !errors.As(err, &ae) {
			return "not applied: " + err.Error(), false
		}
		refusals = append(refusals, tr+": "+ae.Message)
	}
	return "refused: " + strings.Join(refusals, "; "), false
}

// unwrapURL drops net/http's *url.Error wrapper (the API URL holds nothing
// secret, but its message repeats it).
func unwrapURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
