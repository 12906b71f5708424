// Package docker is tidewatch's one adapter over the Docker Engine API
// (github.com/docker/docker/client). No other package imports the Docker SDK.
//
// The API version is negotiated with the engine on first use, so one build
// talks to Debian's engine 20.10 (API 1.41) as well as to engines whose
// minimum API is 1.44. The host is a unix socket ("unix:///var/run/docker.sock",
// the default) or a TCP address with optional TLS files.
package docker
