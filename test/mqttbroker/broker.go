// Package mqttbroker gives tests a real MQTT broker (Debian's mosquitto):
// the test bed's when its state names one (mqtt_addr, mqtt_tls_addr,
// mqtt_user, mqtt_password, mqtt_ca_file in state.json), else one it starts
// itself for the test on free 127.0.0.1 ports, with a password file and a
// TLS listener whose certificate it makes. Without mosquitto the test is
// skipped, or fails under TIDEWATCH_TESTBED_REQUIRED=1 or CI=true. Tests
// never install it: `go run ./test/bedctl up` (or apt-get install
// mosquitto) does.
package mqttbroker

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/tidewatch/tidewatch/test/testbed"
)

// Broker is a broker a test can use.
type Broker struct {
	// Addr is the plain listener, 127.0.0.1:port; TLSAddr the TLS one, whose
	// certificate (for 127.0.0.1 and localhost) CAFile's CA signed.
	Addr, TLSAddr string
	// Username and Password are the one user of its password file.
	Username, Password string
	// CAFile is the PEM file of the TLS listener's CA.
	CAFile string
}

// Get returns the bed's broker, or starts one for t.
func Get(t testing.TB) Broker {
	t.Helper()
	if b, ok := fromBed(); ok {
		return b
	}
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		for _, p := range []string{"/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"} {
			if _, serr := os.Stat(p); serr == nil {
				bin, err = p, nil
			}
		}
	}
	pw, perr := exec.LookPath("mosquitto_passwd")
	if err != nil || perr != nil {
		msg := "mosquitto is not installed: run go run ./test/bedctl up"
		if os.Getenv(testbed.EnvRequired) == "1" || os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return start(t, bin, pw)
}

// fromBed reads the bed's broker from its state file, when it names one.
func fromBed() (Broker, bool) {
	path, err := testbed.FindState()
	if err != nil {
		return Broker{}, false
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return Broker{}, false
	}
	var st struct {
		Addr     string `json:"mqtt_addr"`
		TLSAddr  string `json:"mqtt_tls_addr"`
		User     string `json:"mqtt_user"`
		Password string `json:"mqtt_password"`
		CAFile   string `json:"mqtt_ca_file"`
	}
	if json.Unmarshal(data, &st) != nil || st.Addr == "" || st.TLSAddr == "" {
		return Broker{}, false
	}
	if c, err := net.DialTimeout("tcp", st.Addr, time.Second); err == nil {
		c.Close()
		return Broker{Addr: st.Addr, TLSAddr: st.TLSAddr, Username: st.User, Password: st.Password, CAFile: st.CAFile}, true
	}
	return Broker{}, false
}

func start(t testing.TB, bin, passwdBin string) Broker {
	t.Helper()
	dir := t.TempDir()
	b := Broker{Username: "tidewatch", Password: fmt.Sprintf("mq-%d", time.Now().UnixNano()), CAFile: filepath.Join(dir, "ca.pem")}
	cert, key := filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem")
	if err := writeCerts(b.CAFile, cert, key); err != nil {
		t.Fatal(err)
	}
	passwd := filepath.Join(dir, "passwd")
	if out, err := exec.Command(passwdBin, "-c", "-b", passwd, b.Username, b.Password).CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_passwd: %v\n%s", err, out)
	}
	for attempt := 0; attempt < 3; attempt++ {
		plain, secure := freePort(t), freePort(t)
		conf := filepath.Join(dir, "mosquitto.conf")
		os.WriteFile(conf, []byte(fmt.Sprintf(`user root
per_listener_settings false
allow_anonymous false
password_file %s
persistence false
log_dest stderr
listener %d 127.0.0.1
listener %d 127.0.0.1
cafile %s
certfile %s
keyfile %s
tls_version tlsv1.2
`, passwd, plain, secure, b.CAFile, cert, key)), 0o600)
		logf, _ := os.Create(filepath.Join(dir, "mosquitto.log"))
		cmd := exec.Command(bin, "-c", conf)
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Fatalf("starting mosquitto: %v", err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		b.Addr, b.TLSAddr = fmt.Sprintf("127.0.0.1:%d", plain), fmt.Sprintf("127.0.0.1:%d", secure)
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			select {
			case <-exited:
				deadline = time.Time{}
				continue
			default:
			}
			c1, e1 := net.DialTimeout("tcp", b.Addr, time.Second)
			c2, e2 := net.DialTimeout("tcp", b.TLSAddr, time.Second)
			if e1 == nil && e2 == nil {
				c1.Close()
				c2.Close()
				t.Cleanup(func() {
					cmd.Process.Kill()
					<-exited
				})
				return b
			}
			if c1 != nil {
				c1.Close()
			}
			if c2 != nil {
				c2.Close()
			}
			time.Sleep(50 * time.Millisecond)
		}
		cmd.Process.Kill()
		<-exited
	}
	log, _ := os.ReadFile(filepath.Join(dir, "mosquitto.log"))
	t.Fatalf("mosquitto did not start:\n%s", log)
	return Broker{}
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// writeCerts makes a CA and a server certificate for 127.0.0.1 and localhost.
func writeCerts(caFile, certFile, keyFile string) error {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "tidewatch test MQTT CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	srv := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"}}
	caCert, _ := x509.ParseCertificate(caDER)
	srvDER, err := x509.CreateCertificate(rand.Reader, srv, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalECPrivateKey(srvKey)
	if err != nil {
		return err
	}
	for _, f := range []struct {
		path, typ string
		der       []byte
	}{{caFile, "CERTIFICATE", caDER}, {certFile, "CERTIFICATE", srvDER}, {keyFile, "EC PRIVATE KEY", keyDER}} {
		if err := os.WriteFile(f.path, pem.EncodeToMemory(&pem.Block{Type: f.typ, Bytes: f.der}), 0o600); err != nil {
			return err
		}
	}
	return nil
}
