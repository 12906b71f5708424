package testbed

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// StateFile is the name of the state file inside the state folder.
const StateFile = "state.json"

// Environment variables that tests and bedctl read.
const (
	// EnvState names the state file; default: .testbed/state.json under the module root.
	EnvState = "TIDEWATCH_TESTBED_STATE"
	// EnvRequired, set to 1, makes Require fail instead of skip when the bed is not up.
	EnvRequired = "TIDEWATCH_TESTBED_REQUIRED"
)

// Labels that the bed puts on every container it creates.
const (
	// LabelTest marks a container made by a test; its value is "1". Down removes
	// every container with it that was created while the bed was up.
	LabelTest = "tidewatch.test"
	// LabelBed holds the ID of the bed that made the container.
	LabelBed = "tidewatch.testbed"
)

// State is what Up started and where it listens; it is written to state.json.
type State struct {
	// ID tells this bed apart from others; containers carry it in LabelBed.
	ID string `json:"id"`
	// Dir is the state folder, absolute.
	Dir string `json:"dir"`
	// StartedAt is when Up began.
	StartedAt time.Time `json:"started_at"`
	// DockerHost is the engine's address, e.g. unix:///var/run/docker.sock.
	DockerHost string `json:"docker_host"`
	// StartedEngine tells whether Up started the engine (and Down stops it).
	StartedEngine bool `json:"started_engine"`
	// Engine is the dockerd that Up started; nil when it reused one.
	Engine *Process `json:"engine,omitempty"`
	// Registry is the registry's host and port, e.g. 127.0.0.1:41234.
	Registry string `json:"registry"`
	// RegistryProcess is the docker-registry that Up started.
	RegistryProcess *Process `json:"registry_process,omitempty"`
	// RegistryData is the registry's storage folder.
	RegistryData string `json:"registry_data"`

	// MailpitSMTP is the SMTP address (127.0.0.1:port) of a mailpit that
	// requires STARTTLS and auth (MailUser, MailPassword).
	MailpitSMTP string `json:"mailpit_smtp,omitempty"`
	// MailpitAPI is that mailpit's HTTP API, e.g. http://127.0.0.1:41235.
	MailpitAPI string `json:"mailpit_api,omitempty"`
	// MailpitProcess is that mailpit.
	MailpitProcess *Process `json:"mailpit_process,omitempty"`
	// MailpitTLSSMTP is the SMTP address of a second mailpit that speaks TLS
	// from the first byte (SMTPS, implicit TLS) and requires the same auth.
	MailpitTLSSMTP string `json:"mailpit_tls_smtp,omitempty"`
	// MailpitTLSAPI is the second mailpit's HTTP API.
	MailpitTLSAPI string `json:"mailpit_tls_api,omitempty"`
	// MailpitTLSProcess is the second mailpit.
	MailpitTLSProcess *Process `json:"mailpit_tls_process,omitempty"`
	// MailCert is the PEM certificate both mailpits present: self-signed for
	// 127.0.0.1 and localhost; trust it as a CA. MailKey is its key.
	MailCert string `json:"mail_cert,omitempty"`
	MailKey  string `json:"mail_key,omitempty"`
	// MailUser and MailPassword are the SMTP credentials both mailpits accept.
	MailUser     string `json:"mail_user,omitempty"`
	MailPassword string `json:"mail_password,omitempty"`
	// MailData is the folder of the mail servers' databases, logs and certificate.
	MailData string `json:"mail_data,omitempty"`

	// MQTTAddr is the plain listener (127.0.0.1:port) of Debian's mosquitto,
	// which requires MQTTUser and MQTTPassword.
	MQTTAddr string `json:"mqtt_addr,omitempty"`
	// MQTTTLSAddr is its TLS listener, with a certificate for 127.0.0.1, ::1
	// and localhost signed by the CA in MQTTCAFile; same user.
	MQTTTLSAddr string `json:"mqtt_tls_addr,omitempty"`
	// MQTTUser and MQTTPassword are the one user of the broker's password file.
	MQTTUser     string `json:"mqtt_user,omitempty"`
	MQTTPassword string `json:"mqtt_password,omitempty"`
	// MQTTCAFile is the PEM file of the CA of the TLS listener.
	MQTTCAFile string `json:"mqtt_ca_file,omitempty"`
	// MQTTProcess is the mosquitto that Up started.
	MQTTProcess *Process `json:"mqtt_process,omitempty"`
	// MQTTData is the broker's folder: config, password file, certificates, log.
	MQTTData string `json:"mqtt_data,omitempty"`

	// Parts maps each part the bed found or installed (the Part* constants)
	// to its path; Bed.Part returns them to tests.
	Parts map[string]string `json:"parts,omitempty"`
	// PartsMissing maps each part the bed could not install (not root) to why.
	PartsMissing map[string]string `json:"parts_missing,omitempty"`
}

// Process is a process that the bed started in its own process group.
type Process struct {
	// PID is its process ID (and its process group ID).
	PID int `json:"pid"`
	// Args is its argv, to start it again the same way.
	Args []string `json:"args"`
	// Log is the file its output goes to.
	Log string `json:"log"`
}

// ReadState reads the state file at path.
func ReadState(path string) (*State, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading test bed state: %w", err)
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("parsing test bed state %s: %w", path, err)
	}
	return &st, nil
}

// write stores the state atomically in its folder.
func (st *State) write() error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding test bed state: %w", err)
	}
	path := filepath.Join(st.Dir, StateFile)
	tmp, err := os.CreateTemp(st.Dir, StateFile+".*")
	if err != nil {
		return fmt.Errorf("writing test bed state: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("writing test bed state: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing test bed state: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("writing test bed state: %w", err)
	}
	return nil
}

// FindState returns the path of the state file: $TIDEWATCH_TESTBED_STATE, else
// .testbed/state.json in the module root above the working folder. It returns
// an error wrapping os.ErrNotExist when there is none.
func FindState() (string, error) {
	if p := os.Getenv(EnvState); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("finding test bed state from %s: %w", EnvState, err)
		}
		return p, nil
	}
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	p := filepath.Join(root, ".testbed", StateFile)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("finding test bed state: %w", err)
	}
	return p, nil
}

// ModuleRoot returns the nearest folder at or above the working folder that
// holds a go.mod.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("finding module root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("finding module root: no go.mod above the working folder: %w", os.ErrNotExist)
		}
		dir = parent
	}
}

// errNotStarted says that the bed did not start the engine, so it will not stop it.
var errNotStarted = errors.New("the engine was already running when the test bed came up; the bed does not stop an engine it did not start")
