// Package config turns tidewatch's environment variables into a typed,
// validated Config. Everything is configured by environment; nothing needs to
// be set, and with nothing set tidewatch watches the local Docker socket every
// hour, uses registries anonymously and keeps its state in ./data.
//
// Load reports every problem at once (errors.Join of *VarError), each naming
// its variable, what is wrong with the value and what was expected:
//
//	TIDEWATCH_WATCHER_LOCAL_PORT="abc": not a port number; expected an integer from 1 to 65535
//
// Secrets (passwords, tokens) never appear in errors, and core.Secret redacts
// them wherever a Config is printed.
//
// # Rules
//
//   - Names are case-insensitive: TIDEWATCH_WATCHER_Remote_HOST and
//     TIDEWATCH_WATCHER_REMOTE_HOST both set the watcher "remote". Setting
//     both is an error.
//   - A variable set to the empty string counts as unset.
//   - Instance names (<name>) are letters and digits, in parts joined by
//     single underscores, and are lower-cased. A name may hold underscores,
//     so the option is the longest known option that ends the variable, and
//     the rest is the name: TIDEWATCH_WATCHER_MY_HOST_SOCKET is the option
//     SOCKET of the watcher "my_host", and TIDEWATCH_REGISTRY_HUB_MY_TOKEN_FILE
//     the option TOKEN_FILE of the hub registry "my".
//   - Booleans accept true/false, 1/0 and yes/no, case-insensitively.
//   - Every secret option (PASSWORD, TOKEN) has a _FILE variant that names a
//     file holding the secret (Docker and Kubernetes secrets); its trailing
//     newlines are trimmed. Setting both the value and the _FILE variant is
//     an error, and so is a file that is missing, unreadable, empty, or larger
//     than 64 KiB.
//   - Unknown TIDEWATCH_ variables are errors, with the known options listed
//     and a near miss suggested, so typos do not go unnoticed. Variables of
//     features that later versions add are ignored: TIDEWATCH_TRIGGER_*,
//     TIDEWATCH_SERVER_*, TIDEWATCH_PLUGINS_DIR, TIDEWATCH_PLUGIN_* and
//     TIDEWATCH_TEST*.
//
// # Variables
//
// General:
//
//	TIDEWATCH_STORE_PATH     folder of the SQLite database              default ./data
//	TIDEWATCH_LOG_LEVEL      debug, info, warn or error                 default info
//	TIDEWATCH_LOG_FORMAT     text or json                               default text
//
// Watchers, one per Docker host, TIDEWATCH_WATCHER_<name>_<option>. With no
// watcher configured, one named "local" watches /var/run/docker.sock.
//
//	SOCKET          unix socket of a local engine           default /var/run/docker.sock (when HOST is unset)
//	HOST            hostname or IP of a remote engine (tcp), without scheme or port; exclusive with SOCKET
//	PORT            TCP port of the remote engine            default 2375, or 2376 with TLS files
//	CAFILE          PEM CA that verifies the remote engine (TLS)
//	CERTFILE        PEM client certificate (TLS); needs KEYFILE
//	KEYFILE         PEM client key (TLS); needs CERTFILE
//	CRON            when to watch: 5 fields or a descriptor  default "0 * * * *" (robfig/cron standard parser:
//	                "*/15 * * * *", "@hourly", "@daily", "@every 30m"; a "CRON_TZ=Europe/Paris " prefix sets the zone);
//	                one that never fires ("0 0 31 2 *") is refused; full runs start at least a minute apart
//	WATCHBYDEFAULT  watch containers without a tidewatch.watch label   default true
//	WATCHALL        also watch stopped and exited containers            default false
//	JITTER          most random delay of a scheduled run: "30s", or milliseconds ("60000"); 0 for none, up to 24h
//	                                                                    default 1m
//	WATCHEVENTS     follow engine events: check started containers, reconcile after a restart   default true
//	SWARM           on a swarm manager, watch each service (in place of its task containers)   default true
//
// TLS files must be readable regular files, and HOST must be set with PORT
// and the TLS files.
//
// Registries, TIDEWATCH_REGISTRY_<type>_<name>_<option>, where <type> is one
// of hub, ghcr, quay, gitlab, ecr, gcr, acr or custom. Registries that are not
// configured are used anonymously.
//
//	URL             registry host: "host", "host:port" or "https://host"; default per type (hub index.docker.io,
//	                ghcr ghcr.io, quay quay.io, gitlab registry.gitlab.com, gcr gcr.io); required for ecr, acr, custom
//	USERNAME        user name (alias LOGIN)
//	PASSWORD        password; or PASSWORD_FILE, a file holding it
//	TOKEN           access token; or TOKEN_FILE, a file holding it
//
// A PASSWORD needs a USERNAME, and a USERNAME needs a PASSWORD or TOKEN. How
// each cloud registry authenticates:
//
//   - ecr: URL=<account>.dkr.ecr.<region>.amazonaws.com, USERNAME=AWS and
//     PASSWORD from `aws ecr get-login-password` (valid 12 hours), or no
//     credentials and the docker credential helper in ~/.docker/config.json.
//   - gcr: USERNAME=_json_key and PASSWORD_FILE=/path/to/key.json (a service
//     account key).
//   - acr: URL=<name>.azurecr.io, the service principal's id as USERNAME and
//     its secret as PASSWORD.
package config
