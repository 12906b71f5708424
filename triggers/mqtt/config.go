package mqtt

import (
	"crypto/tls"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/tidewatch/tidewatch/plugins/sdk"
)

// Option names.
const (
	OptBroker          = "BROKER"
	OptUsername        = "USERNAME"
	OptPassword        = "PASSWORD"
	OptClientID        = "CLIENT_ID"
	OptTLSCAFile       = "TLS_CAFILE"
	OptTopic           = "TOPIC"
	OptDiscovery       = "DISCOVERY"
	OptDiscoveryPrefix = "DISCOVERY_PREFIX"
	OptInstall         = "INSTALL"
	OptDeployTriggers  = "DEPLOY_TRIGGERS"
	OptAPIURL          = "API_URL"
	OptAPIToken        = "API_TOKEN"
	OptAPICAFile       = "API_CAFILE"
	OptResync          = "RESYNC"
)

// Options are the mqtt trigger's options.
var Options = []sdk.Option{
	{Name: OptBroker, Required: true, Description: "the MQTT broker: mqtt://host:1883, or mqtts://host:8883 for TLS (tcp://, ssl:// and tls:// are accepted too); credentials go in USERNAME and PASSWORD"},
	{Name: OptUsername, Description: "the broker user"},
	{Name: OptPassword, Secret: true, Description: "the broker user's password"},
	{Name: OptClientID, Description: "the MQTT client ID; default tidewatch-<instance>"},
	{Name: OptTLSCAFile, Description: "a PEM file of CA certificates that sign the broker's certificate, instead of the system's"},
	{Name: OptTopic, Default: "tidewatch", Description: "the base of tidewatch's topics: <TOPIC>/status (online/offline), <TOPIC>/<host>/<container>/state, …/attributes, …/install"},
	{Name: OptDiscovery, Default: "true", Description: "publish Home Assistant MQTT discovery: an update entity per watched container"},
	{Name: OptDiscoveryPrefix, Default: "homeassistant", Description: "Home Assistant's discovery prefix"},
	{Name: OptInstall, Default: "true", Description: "give each entity an Install command that applies the update through tidewatch's API (POST /api/updates/{id}/apply); false for read-only entities"},
	{Name: OptDeployTriggers, Description: "the deploying trigger instances Install may use, in order, comma-separated (compose.prod); default: every deploying trigger tidewatch lists"},
	{Name: OptAPIURL, Default: "http://127.0.0.1:8080", Description: "tidewatch's own API, which the trigger reads the containers from and applies updates through"},
	{Name: OptAPIToken, Secret: true, Description: "a token of TIDEWATCH_SERVER_API_TOKENS (name it mqtt: the history then names token:mqtt); needed when the API asks for credentials"},
	{Name: OptAPICAFile, Description: "a PEM file of CA certificates for an https:// API_URL, instead of the system's"},
	{Name: OptResync, Default: "5m", Description: "how often every entity is read again from the API besides after each event, a Go duration"},
}

// Config is an mqtt trigger's parsed configuration.
type Config struct {
	// Broker is the broker's address for paho: tcp://host:port or ssl://host:port.
	Broker string
	// Username and Password log in to the broker; "" for none.
	Username, Password string
	// ClientID is the MQTT client ID; "" for tidewatch-<instance>.
	ClientID string
	// TLS is the TLS configuration of an ssl:// broker; nil for plain.
	TLS *tls.Config
	// Topic is the base of the topics; default "tidewatch".
	Topic string
	// Discovery publishes Home Assistant discovery configs; default true.
	Discovery bool
	// DiscoveryPrefix is Home Assistant's; default "homeassistant".
	DiscoveryPrefix string
	// Install gives entities an install command; default true.
	Install bool
	// DeployTriggers are the triggers Install may use, in order; nil for every deploying one.
	DeployTriggers []string
	// APIURL is tidewatch's API; APIToken its bearer token ("" for none).
	APIURL   *url.URL
	APIToken string
	// APITLS is the TLS configuration for an https API; nil for the system's.
	APITLS *tls.Config
	// Resync is how often everything is read again; default 5m.
	Resync time.Duration
}

// topicShape is what a base topic or prefix may be: no wildcards, no empty
// level, no leading or trailing slash.
var topicShape = regexp.MustCompile(`^[A-Za-z0-9_.\-]+(/[A-Za-z0-9_.\-]+)*$`)

// ParseConfig parses a Configure call's options, reporting every problem at
// once, each naming its option. Secret values never appear in errors.
func ParseConfig(options map[string]string) (Config, error) {
	o := sdk.NewOptions(options, Options)
	c := Config{Username: o.String(OptUsername), Password: o.String(OptPassword), ClientID: o.String(OptClientID), APIToken: o.String(OptAPIToken)}
	pool := o.CertPool(OptTLSCAFile)
	if raw := strings.TrimSpace(o.String(OptBroker)); raw != "" {
		u, err := url.Parse(raw)
		switch {
		case err != nil || u.Host == "":
			o.Add(OptBroker, "not a broker address; expected mqtt://host:1883 or mqtts://host:8883")
		case u.User != nil:
			o.Add(OptBroker, "holds credentials; set USERNAME and PASSWORD instead")
		default:
			host := u.Host
			switch strings.ToLower(u.Scheme) {
			case "mqtt", "tcp":
				if u.Port() == "" {
					host += ":1883"
				}
				c.Broker = "tcp://" + host
			case "mqtts", "ssl", "tls":
				if u.Port() == "" {
					host += ":8883"
				}
				c.Broker = "ssl://" + host
				c.TLS = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool, ServerName: u.Hostname()}
			default:
				o.Add(OptBroker, "scheme %q is not supported; expected mqtt:// or mqtts://", u.Scheme)
			}
		}
	}
	if pool != nil && c.Broker != "" && c.TLS == nil {
		o.Add(OptTLSCAFile, "set for a plain broker; use mqtts:// in BROKER")
	}
	if c.Password != "" && c.Username == "" {
		o.Add(OptPassword, "set without USERNAME")
	}
	for _, opt := range []struct {
		name string
		dst  *string
	}{{OptTopic, &c.Topic}, {OptDiscoveryPrefix, &c.DiscoveryPrefix}} {
		v := strings.TrimSpace(o.String(opt.name))
		if !topicShape.MatchString(v) {
			o.Add(opt.name, "not a topic of letters, digits, _ . - separated by /; expected e.g. tidewatch")
		}
		*opt.dst = v
	}
	c.Discovery = o.Bool(OptDiscovery)
	c.Install = o.Bool(OptInstall)
	c.DeployTriggers = o.List(OptDeployTriggers)
	if raw := strings.TrimSpace(o.String(OptAPIURL)); raw != "" {
		u, err := url.Parse(raw)
		switch {
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			o.Add(OptAPIURL, "not an http(s) address; expected http://127.0.0.1:8080")
		case u.User != nil:
			o.Add(OptAPIURL, "holds credentials; set API_TOKEN instead")
		default:
			u.Path = strings.TrimSuffix(u.Path, "/")
			c.APIURL = u
		}
	}
	if pool := o.CertPool(OptAPICAFile); pool != nil {
		c.APITLS = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}
	}
	c.Resync = o.Duration(OptResync)
	return c, o.Err()
}
