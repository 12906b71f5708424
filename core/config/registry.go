package config

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/tidewatch/tidewatch/core"
)

// RegistryTypes are the known registry types, in the order errors list them.
var RegistryTypes = []string{"hub", "ghcr", "quay", "gitlab", "ecr", "gcr", "acr", "custom"}

// defaultRegistryURL is the registry host of each type that has a fixed one.
// ecr, acr and custom have none: their URL is required.
var defaultRegistryURL = map[string]string{
	"hub":    core.DockerHub,
	"ghcr":   "ghcr.io",
	"quay":   "quay.io",
	"gitlab": "registry.gitlab.com",
	"gcr":    "gcr.io",
}

// Registry options, as they end a TIDEWATCH_REGISTRY_<type>_<name>_<option>
// variable. LOGIN is an alias of USERNAME.
var registryOptions = []string{"URL", "USERNAME", "LOGIN", "PASSWORD", "PASSWORD_FILE", "TOKEN", "TOKEN_FILE", "INSECURE", "CONCURRENCY"}

// MaxRegistryConcurrency is the highest CONCURRENCY a registry can be pinned at.
const MaxRegistryConcurrency = 256

// Registry is the credentials and address of one registry, configured by the
// variables TIDEWATCH_REGISTRY_<type>_<name>_<option>. Registries that are not
// configured are used anonymously.
//
// Per type:
//   - hub: USERNAME and PASSWORD (an access token works as the password).
//   - ghcr: USERNAME and TOKEN (a personal access token with read:packages).
//   - quay: USERNAME (robot "org+name") and PASSWORD or TOKEN.
//   - gitlab: USERNAME and TOKEN (a deploy or personal token with read_registry).
//   - ecr: URL (<account>.dkr.ecr.<region>.amazonaws.com), USERNAME=AWS and
//     PASSWORD from `aws ecr get-login-password` (it expires after 12 hours),
//     or no credentials and the docker credential helper configured in
//     ~/.docker/config.json.
//   - gcr: USERNAME=_json_key and PASSWORD_FILE pointing to the service
//     account's key.json.
//   - acr: URL (<name>.azurecr.io), the service principal's id as USERNAME and
//     its secret as PASSWORD.
//   - custom: URL, and USERNAME with PASSWORD or TOKEN when it needs them.
type Registry struct {
	// Type is the lower-cased <type>, one of RegistryTypes.
	Type string
	// Name is the lower-cased <name>.
	Name string
	// URL is the registry host, with port when one is given ("ghcr.io",
	// "registry.example.com:5000") (URL). It accepts "https://host", "host"
	// and "host:port". Default per type: hub index.docker.io, ghcr ghcr.io,
	// quay quay.io, gitlab registry.gitlab.com, gcr gcr.io; required for ecr,
	// acr and custom.
	URL string
	// Username is the user name (USERNAME, or its alias LOGIN).
	Username string
	// Password is the password (PASSWORD, or PASSWORD_FILE: a file holding it).
	Password core.Secret
	// Token is an access token (TOKEN, or TOKEN_FILE: a file holding it).
	Token core.Secret
	// Insecure speaks plain HTTP to the registry (INSECURE, default false),
	// for a registry on a private network that has no TLS, as dockerd's
	// insecure-registries. Registries on loopback always use plain HTTP.
	Insecure bool
	// Concurrency pins how many requests the registry gets at once
	// (CONCURRENCY, 1 to MaxRegistryConcurrency). Default 0: it adapts,
	// from 8 up to 16 for public registries and 64 for the others.
	Concurrency int
}

// SetDefaults fills the URL of the types that have a fixed registry host.
func (r *Registry) SetDefaults() {
	if r.URL == "" {
		r.URL = defaultRegistryURL[r.Type]
	}
}

// variable returns the name of the variable that sets option.
func (r Registry) variable(option string) string {
	return "TIDEWATCH_REGISTRY_" + strings.ToUpper(r.Type) + "_" + strings.ToUpper(r.Name) + "_" + option
}

// Validate reports every problem with the registry, each naming its variable.
// It expects SetDefaults to have run. Secrets never appear in its errors.
func (r Registry) Validate() error { return r.validate(unset) }

// validate is Validate, told which variables were set even if their values
// were rejected, so that one mistake is not reported twice.
func (r Registry) validate(set func(variable string) bool) error {
	var es errs
	if !knownRegistryType(r.Type) {
		es.add("TIDEWATCH_REGISTRY_"+strings.ToUpper(r.Type)+"_*", "", "unknown registry type", "one of "+strings.Join(RegistryTypes, ", "))
	}
	if !validName(r.Name) {
		es.add("TIDEWATCH_REGISTRY_"+strings.ToUpper(r.Type)+"_"+strings.ToUpper(r.Name)+"_*", "", "invalid registry name", "letters and digits, in parts joined by single underscores")
	}
	if r.URL == "" && !set(r.variable("URL")) {
		es.add(r.variable("URL"), "", "not set", "the registry host for type "+r.Type+", like "+exampleURL(r.Type))
	} else if norm, p := normalizeRegistryURL(r.URL); r.URL != "" && (p != "" || norm != r.URL) {
		if p == "" {
			p = "not in normal form " + norm
		}
		es.add(r.variable("URL"), r.URL, p, `a registry host like "ghcr.io", "host:port" or "https://host"`)
	}
	hasPassword := r.Password != "" || set(r.variable("PASSWORD"))
	hasToken := r.Token != "" || set(r.variable("TOKEN"))
	if hasPassword && r.Username == "" && !set(r.variable("USERNAME")) {
		es.add(r.variable("USERNAME"), "", "not set, but a password is", "the user name that goes with "+r.variable("PASSWORD"))
	}
	if r.Username != "" && !hasPassword && !hasToken {
		es.add(r.variable("USERNAME"), r.Username, "set without a password or token", r.variable("PASSWORD")+" or "+r.variable("TOKEN")+" (or their _FILE variants) too")
	}
	return errors.Join(es...)
}

func exampleURL(typ string) string {
	switch typ {
	case "ecr":
		return "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
	case "acr":
		return "myregistry.azurecr.io"
	}
	return "registry.example.com:5000"
}

func knownRegistryType(t string) bool {
	for _, k := range RegistryTypes {
		if k == t {
			return true
		}
	}
	return false
}

// registrySlot is the field an option sets: aliases and _FILE variants share
// their option's slot, so that setting both is caught.
func registrySlot(option string) string {
	switch option {
	case "LOGIN":
		return "USERNAME"
	case "PASSWORD_FILE":
		return "PASSWORD"
	case "TOKEN_FILE":
		return "TOKEN"
	}
	return option
}

// set applies one option's raw value; it records a problem in es. Secret
// values never reach es.
func (r *Registry) set(es *errs, variable, option, value string) {
	switch option {
	case "URL":
		u, p := normalizeRegistryURL(value)
		if p != "" {
			es.add(variable, value, p, `a registry host like "ghcr.io", "host:port" or "https://host"`)
			return
		}
		r.URL = u
	case "USERNAME", "LOGIN":
		r.Username = value
	case "INSECURE":
		b, ok := parseBool(value)
		if !ok {
			es.add(variable, value, "not a boolean", "true or false")
			return
		}
		r.Insecure = b
	case "CONCURRENCY":
		n, err := strconv.Atoi(strings.TrimSpace(value))
		if err != nil || n < 1 || n > MaxRegistryConcurrency {
			es.add(variable, value, "not a concurrency", fmt.Sprintf("an integer from 1 to %d: requests in flight at once", MaxRegistryConcurrency))
			return
		}
		r.Concurrency = n
	case "PASSWORD":
		r.Password = core.Secret(value)
	case "TOKEN":
		r.Token = core.Secret(value)
	case "PASSWORD_FILE", "TOKEN_FILE":
		what := strings.ToLower(strings.TrimSuffix(option, "_FILE"))
		s, p := readSecretFile(value)
		if p != "" {
			es.add(variable, value, p, "a readable file holding the "+what)
			return
		}
		if option == "PASSWORD_FILE" {
			r.Password = core.Secret(s)
		} else {
			r.Token = core.Secret(s)
		}
	}
}
