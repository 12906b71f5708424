package testbed

import (
	"errors"
	"fmt"
	"os"
	"testing"
)

// The parts of the bed: the programs the tests use, by name. State.Parts
// maps each name to the program's path; Bed.Part returns it to a test.
const (
	// PartDocker is the docker CLI (Debian's docker.io).
	PartDocker = "docker"
	// PartDockerd is the engine (Debian's docker.io); needed only when no engine answers.
	PartDockerd = "dockerd"
	// PartRegistry is Debian's docker-registry (CNCF distribution v2).
	PartRegistry = "docker-registry"
	// PartComposeV1 is Debian's docker-compose (1.29, Python).
	PartComposeV1 = "docker-compose"
	// PartComposeV2 is the compose v2 CLI plugin (ComposeV2Version), built
	// from the Go module proxy into DOCKER_CONFIG/cli-plugins (default
	// ~/.docker/cli-plugins), that `docker compose` runs.
	PartComposeV2 = "compose-v2"
	// PartChromium is Debian's chromium, or the file in TIDEWATCH_CHROMIUM.
	PartChromium = "chromium"
	// PartMosquitto is Debian's mosquitto broker.
	PartMosquitto = "mosquitto"
	// PartMosquittoPasswd is mosquitto's password file tool.
	PartMosquittoPasswd = "mosquitto_passwd"
	// PartGit is Debian's git.
	PartGit = "git"
	// PartCACerts is the CA bundle of Debian's ca-certificates, which the go
	// command needs to reach the module proxy.
	PartCACerts = "ca-certificates"
	// PartMailpit is mailpit (MailpitVersion), installed with go install.
	PartMailpit = "mailpit"
)

// EnvChromium names a chromium binary to use instead of Debian's.
const EnvChromium = "TIDEWATCH_CHROMIUM"

// Part returns the path of the bed's part name (one of the Part*
// constants). When the bed does not have it (bedctl could not install it:
// not root, or an older bedctl wrote the state), the test fails when
// TIDEWATCH_TESTBED_REQUIRED=1 or CI=true, and is skipped otherwise.
func (b *Bed) Part(t testing.TB, name string) string {
	t.Helper()
	p, err := b.State.part(name)
	if err != nil {
		MissingPart(t, name, err)
	}
	return p
}

// part returns the recorded path of name, or why there is none.
func (st *State) part(name string) (string, error) {
	if p := st.Parts[name]; p != "" {
		return p, nil
	}
	if why := st.PartsMissing[name]; why != "" {
		return "", errors.New(why)
	}
	return "", fmt.Errorf("not recorded in %s (written by an older bedctl?): run go run ./test/bedctl up", StateFile)
}

// MissingPart ends a test that needs a part the machine lacks: it fails
// the test when TIDEWATCH_TESTBED_REQUIRED=1 or CI=true (make test, CI), and
// skips it otherwise. Test packages never install parts themselves: bedctl
// up (or make test) installs them all, once, before any test starts.
func MissingPart(t testing.TB, name string, why error) {
	t.Helper()
	msg := fmt.Sprintf("test bed part %s is missing: %v (bedctl up installs every part, as root)", name, why)
	if Required() {
		t.Fatal(msg)
	} else {
		t.Skip(msg)
	}
}

// Required tells whether a missing test bed or part fails the test
// (TIDEWATCH_TESTBED_REQUIRED=1 or CI=true) instead of skipping it.
func Required() bool {
	return os.Getenv(EnvRequired) == "1" || os.Getenv("CI") == "true"
}
