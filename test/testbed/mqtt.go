package testbed

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// Deadlines of the MQTT broker.
const (
	mqttStartTimeout = 20 * time.Second
	mqttStopGrace    = 5 * time.Second
)

// MQTT CONNACK return codes (MQTT 3.1.1, 3.2.2.3).
const (
	mqttAccepted       byte = 0
	mqttBadCredentials byte = 4
	mqttNotAuthorized  byte = 5
)

// MQTTBroker is the bed's MQTT broker (Debian's mosquitto) as a test sees it:
// two listeners on 127.0.0.1 that both require Username and Password.
type MQTTBroker struct {
	// Addr is the plain MQTT listener, 127.0.0.1:port.
	Addr string
	// TLSAddr is the MQTT over TLS listener, 127.0.0.1:port; its certificate
	// is for 127.0.0.1, ::1 and localhost, signed by the CA in CAFile.
	TLSAddr string
	// Username and Password are the one user of the broker's password file.
	Username, Password string
	// CAFile is the PEM file of the CA that signed the TLS listener's certificate.
	CAFile string
}

// MQTT returns the bed's MQTT broker. When the bed has none (mosquitto is
// missing), the test fails when TIDEWATCH_TESTBED_REQUIRED=1 or CI=true and
// is skipped otherwise.
func (b *Bed) MQTT(t testing.TB) MQTTBroker {
	t.Helper()
	st := b.State
	if st.MQTTAddr == "" || st.MQTTTLSAddr == "" {
		why := errors.New("the test bed runs no MQTT broker (its state was written by an older bedctl): run go run ./test/bedctl up")
		if _, err := st.part(PartMosquitto); err != nil {
			why = err
		}
		MissingPart(t, PartMosquitto, why)
	}
	return MQTTBroker{Addr: st.MQTTAddr, TLSAddr: st.MQTTTLSAddr, Username: st.MQTTUser, Password: st.MQTTPassword, CAFile: st.MQTTCAFile}
}

// TLSConfig returns a TLS client config that trusts only the broker's CA.
func (m MQTTBroker) TLSConfig(t testing.TB) *tls.Config {
	t.Helper()
	conf, err := mqttTLSConfig(m.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	return conf
}

func mqttTLSConfig(caFile string) (*tls.Config, error) {
	pemBytes, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("reading the MQTT broker's CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		return nil, fmt.Errorf("reading the MQTT broker's CA %s: no certificate in it", caFile)
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

// startMQTT starts Debian's mosquitto on two free ports of 127.0.0.1: a plain
// listener (MQTTAddr) and a TLS one (MQTTTLSAddr, with a CA and a server
// certificate made here), both refusing clients without the user and password
// of the password file it writes. Without mosquitto (not installed, not
// root) it starts nothing and says so: the tests that need the broker fail or
// skip through Bed.MQTT.
func (st *State) startMQTT(ctx context.Context, log *slog.Logger) error {
	bin, err := st.part(PartMosquitto)
	if err == nil {
		_, err = st.part(PartMosquittoPasswd)
	}
	if err != nil {
		log.Warn("not starting the MQTT broker: mosquitto is missing", "err", err)
		return nil
	}
	passwdBin := st.Parts[PartMosquittoPasswd]
	st.MQTTData = filepath.Join(st.Dir, "mqtt")
	if err := os.MkdirAll(st.MQTTData, 0o755); err != nil {
		return fmt.Errorf("creating the MQTT folder: %w", err)
	}
	st.MQTTCAFile = filepath.Join(st.MQTTData, "ca.pem")
	certFile, keyFile := filepath.Join(st.MQTTData, "server.pem"), filepath.Join(st.MQTTData, "server-key.pem")
	if err := writeCAAndServer(st.MQTTCAFile, certFile, keyFile); err != nil {
		return err
	}
	st.MQTTUser, st.MQTTPassword = "tidewatch", "mq-"+newID()
	passwdFile := filepath.Join(st.MQTTData, "passwd")
	_ = os.Remove(passwdFile)
	if out, err := exec.CommandContext(ctx, passwdBin, "-c", "-b", passwdFile, st.MQTTUser, st.MQTTPassword).CombinedOutput(); err != nil {
		return fmt.Errorf("writing the MQTT password file with %s: %w\n%s", passwdBin, err, tail(out, 1000))
	}
	if err := os.Chmod(passwdFile, 0o600); err != nil {
		return fmt.Errorf("restricting the MQTT password file: %w", err)
	}
	logPath := filepath.Join(st.MQTTData, "mosquitto.log")
	var lastErr error
	for attempt := 1; attempt <= 3; attempt++ { // a free port may be taken before mosquitto binds it
		plain, err := freePort()
		if err != nil {
			return err
		}
		secure, err := freePort()
		if err != nil {
			return err
		}
		plainAddr, tlsAddr := fmt.Sprintf("127.0.0.1:%d", plain), fmt.Sprintf("127.0.0.1:%d", secure)
		confPath := filepath.Join(st.MQTTData, "mosquitto.conf")
		conf := mosquittoConfig(plain, secure, passwdFile, st.MQTTCAFile, certFile, keyFile)
		if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
			return fmt.Errorf("writing the mosquitto config: %w", err)
		}
		p, exited, err := startProcess([]string{bin, "-c", confPath}, logPath)
		if err != nil {
			return err
		}
		var exitedEarly bool
		var pingErr error
		up := waitFor(ctx, mqttStartTimeout, func() bool {
			select {
			case <-exited:
				exitedEarly = true
				return true
			default:
			}
			pingErr = pingMQTT(ctx, plainAddr, tlsAddr, st.MQTTCAFile, st.MQTTUser, st.MQTTPassword)
			return pingErr == nil
		})
		if up && !exitedEarly {
			st.MQTTAddr, st.MQTTTLSAddr, st.MQTTProcess = plainAddr, tlsAddr, p
			log.Info("started mosquitto", "mqtt", plainAddr, "mqtts", tlsAddr, "pid", p.PID, "log", logPath)
			return nil
		}
		_ = p.stop(context.WithoutCancel(ctx), mqttStopGrace)
		lastErr = fmt.Errorf("starting mosquitto on %s and %s (attempt %d): %v; its log ends:\n%s", plainAddr, tlsAddr, attempt, pingErr, logTail(logPath, 2000))
	}
	return lastErr
}

// mosquittoConfig is the broker's config: no anonymous clients, users from
// passwdFile, nothing kept on disk, a plain listener and a TLS listener on
// 127.0.0.1 only. mosquitto keeps running as the user that starts it (as
// root it would switch to the mosquitto user, which cannot read the bed's
// folder), and logs to stderr, which startProcess sends to its log file.
func mosquittoConfig(plainPort, tlsPort int, passwdFile, caFile, certFile, keyFile string) string {
	return fmt.Sprintf(`# written by the tidewatch test bed
user root
per_listener_settings false
allow_anonymous false
password_file %s
persistence false
log_dest stderr
log_type error
log_type warning
log_type notice
log_type information
connection_messages true

listener %d 127.0.0.1

listener %d 127.0.0.1
cafile %s
certfile %s
keyfile %s
tls_version tlsv1.2
`, passwdFile, plainPort, tlsPort, caFile, certFile, keyFile)
}

// pingMQTT checks that both listeners accept the user's CONNECT.
func pingMQTT(ctx context.Context, plainAddr, tlsAddr, caFile, user, password string) error {
	conf, err := mqttTLSConfig(caFile)
	if err != nil {
		return err
	}
	for _, l := range []struct {
		addr string
		tls  *tls.Config
	}{{plainAddr, nil}, {tlsAddr, conf}} {
		code, err := mqttConnect(ctx, l.addr, l.tls, user, password)
		if err != nil {
			return err
		}
		if code != mqttAccepted {
			return fmt.Errorf("MQTT broker %s refused the bed's user: CONNACK return code %d", l.addr, code)
		}
	}
	return nil
}

// mqttHealthy tells whether the broker of a recorded bed still runs and
// accepts its user.
func (st *State) mqttHealthy(ctx context.Context) bool {
	return st.MQTTProcess.alive() &&
		pingMQTT(ctx, st.MQTTAddr, st.MQTTTLSAddr, st.MQTTCAFile, st.MQTTUser, st.MQTTPassword) == nil
}

// stopMQTT stops the broker.
func (st *State) stopMQTT(ctx context.Context, log *slog.Logger) error {
	if st.MQTTProcess == nil {
		return nil
	}
	log.Info("stopping mosquitto", "pid", st.MQTTProcess.PID)
	return st.MQTTProcess.stop(ctx, mqttStopGrace)
}

// mqttConnect dials addr (over TLS when tlsConf is set), sends an MQTT 3.1.1
// CONNECT with a clean session and, when user is not "", the user name and
// password, and returns the CONNACK's return code: 0 accepted, 4 bad user
// name or password, 5 not authorized. A broker that closes the connection
// instead of answering gives an error.
func mqttConnect(ctx context.Context, addr string, tlsConf *tls.Config, user, password string) (byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var conn net.Conn
	var err error
	if tlsConf != nil {
		d := tls.Dialer{Config: tlsConf}
		conn, err = d.DialContext(ctx, "tcp", addr)
	} else {
		var d net.Dialer
		conn, err = d.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return 0, fmt.Errorf("connecting to MQTT broker %s: %w", addr, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	if _, err := conn.Write(mqttConnectPacket("tidewatch-bed-"+newID(), user, password)); err != nil {
		return 0, fmt.Errorf("sending CONNECT to MQTT broker %s: %w", addr, err)
	}
	var ack [4]byte
	if _, err := io.ReadFull(conn, ack[:]); err != nil {
		return 0, fmt.Errorf("reading CONNACK from MQTT broker %s: %w", addr, err)
	}
	if ack[0] != 0x20 || ack[1] != 0x02 {
		return 0, fmt.Errorf("reading CONNACK from MQTT broker %s: got % x, want a CONNACK (20 02 ...)", addr, ack)
	}
	return ack[3], nil
}

// mqttConnectPacket encodes an MQTT 3.1.1 CONNECT (keep-alive 30 s).
func mqttConnectPacket(clientID, user, password string) []byte {
	str := func(b []byte, s string) []byte {
		b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
		return append(b, s...)
	}
	flags := byte(0x02) // clean session
	if user != "" {
		flags |= 0x80 | 0x40 // user name, password
	}
	body := str(nil, "MQTT")
	body = append(body, 4, flags, 0, 30) // protocol level 4 (3.1.1), flags, keep-alive
	body = str(body, clientID)
	if user != "" {
		body = str(body, user)
		body = str(body, password)
	}
	pkt := []byte{0x10}
	for n := len(body); ; { // remaining length, 7 bits a byte
		b := byte(n % 128)
		n /= 128
		if n > 0 {
			b |= 0x80
		}
		pkt = append(pkt, b)
		if n == 0 {
			break
		}
	}
	return append(pkt, body...)
}

// writeCAAndServer writes a CA (caFile) and a server certificate for
// 127.0.0.1, ::1 and localhost that it signed (certFile, keyFile), each valid
// for a year.
func writeCAAndServer(caFile, certFile, keyFile string) error {
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("generating the MQTT CA key: %w", err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          serialNumber(),
		Subject:               pkix.Name{CommonName: "tidewatch test bed MQTT CA", Organization: []string{"tidewatch test bed"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return fmt.Errorf("creating the MQTT CA certificate: %w", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return fmt.Errorf("parsing the MQTT CA certificate: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("generating the MQTT server key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serialNumber(),
		Subject:      pkix.Name{CommonName: "127.0.0.1", Organization: []string{"tidewatch test bed"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return fmt.Errorf("creating the MQTT server certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("encoding the MQTT server key: %w", err)
	}
	for _, f := range []struct {
		path, typ string
		der       []byte
		mode      os.FileMode
	}{
		{caFile, "CERTIFICATE", caDER, 0o644},
		{certFile, "CERTIFICATE", der, 0o644},
		{keyFile, "PRIVATE KEY", keyDER, 0o600},
	} {
		if err := os.WriteFile(f.path, pem.EncodeToMemory(&pem.Block{Type: f.typ, Bytes: f.der}), f.mode); err != nil {
			return fmt.Errorf("writing %s: %w", f.path, err)
		}
	}
	return nil
}

// serialNumber returns a random 120-bit certificate serial.
func serialNumber() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return n
}
