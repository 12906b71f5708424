package testbed

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"testing"
)

func TestMQTTConnectPacket(t *testing.T) {
	// MQTT 3.1.1, 3.1: CONNECT with clean session, user and password, keep-alive 30.
	got := mqttConnectPacket("c", "u", "p")
	want := []byte{0x10, 19, 0, 4, 'M', 'Q', 'T', 'T', 4, 0xC2, 0, 30, 0, 1, 'c', 0, 1, 'u', 0, 1, 'p'}
	if string(got) != string(want) {
		t.Errorf("mqttConnectPacket(c, u, p) = % x, want % x", got, want)
	}
	anon := mqttConnectPacket("c", "", "")
	if anon[9] != 0x02 || len(anon) != 15 {
		t.Errorf("mqttConnectPacket without user = % x, want flags 02 and no user or password", anon)
	}
	// A remaining length over 127 takes two bytes.
	long := mqttConnectPacket("c", "u", strings.Repeat("p", 200))
	if n := int(long[1]&0x7f) + int(long[2])*128; long[1]&0x80 == 0 || n != len(long)-3 {
		t.Errorf("remaining length bytes % x for a %d-byte packet", long[1:3], len(long))
	}
}

// TestMQTTBroker connects to the bed's mosquitto with a raw MQTT CONNECT: the
// user and password of the state are accepted on both listeners, over TLS
// with only the bed's CA trusted; no credentials, a wrong password, an
// unknown user, a client that does not trust the CA and a client that speaks
// plain MQTT to the TLS port are all refused.
func TestMQTTBroker(t *testing.T) {
	bed := Require(t)
	m := bed.MQTT(t)
	for _, addr := range []string{m.Addr, m.TLSAddr} {
		if h, _, err := net.SplitHostPort(addr); err != nil || h != "127.0.0.1" {
			t.Errorf("listener %q, want 127.0.0.1:port", addr)
		}
	}
	if info, err := os.Stat(m.CAFile); err != nil || info.Size() == 0 {
		t.Fatalf("CA file %s: %v", m.CAFile, err)
	}
	caOnly := m.TLSConfig(t)
	// What a CONNECT comes to.
	const (
		accepted  = "accepted"  // CONNACK 0
		refused   = "refused"   // CONNACK 4 or 5, or the broker closes the connection (a malformed CONNECT)
		untrusted = "untrusted" // the TLS handshake fails: unknown authority
		noAnswer  = "no answer" // no CONNACK at all
	)
	tests := []struct {
		name           string
		addr           string
		tls            *tls.Config
		user, password string
		want           string
	}{
		{name: "plain, the bed's user", addr: m.Addr, user: m.Username, password: m.Password, want: accepted},
		{name: "TLS, the bed's user", addr: m.TLSAddr, tls: caOnly, user: m.Username, password: m.Password, want: accepted},
		{name: "TLS, no credentials", addr: m.TLSAddr, tls: caOnly, want: refused},
		{name: "plain, no credentials", addr: m.Addr, want: refused},
		{name: "TLS, wrong password", addr: m.TLSAddr, tls: caOnly, user: m.Username, password: m.Password + "x", want: refused},
		{name: "TLS, empty password", addr: m.TLSAddr, tls: caOnly, user: m.Username, password: "", want: refused},
		{name: "TLS, unknown user with the password", addr: m.TLSAddr, tls: caOnly, user: "admin", password: m.Password, want: refused},
		{name: "TLS, the user's name with a NUL and hash syntax", addr: m.TLSAddr, tls: caOnly, user: m.Username + "\x00:$7$", password: m.Password, want: refused},
		{name: "TLS, the password's prefix", addr: m.TLSAddr, tls: caOnly, user: m.Username, password: m.Password[:len(m.Password)-1], want: refused},
		{name: "TLS without the bed's CA", addr: m.TLSAddr, tls: &tls.Config{RootCAs: x509.NewCertPool()}, user: m.Username, password: m.Password, want: untrusted},
		{name: "plain MQTT to the TLS port", addr: m.TLSAddr, user: m.Username, password: m.Password, want: noAnswer},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, err := mqttConnect(t.Context(), tc.addr, tc.tls, tc.user, tc.password)
			var got string
			var unknown x509.UnknownAuthorityError
			switch {
			case err == nil && code == mqttAccepted:
				got = accepted
			case err == nil && (code == mqttBadCredentials || code == mqttNotAuthorized):
				got = refused
			case err == nil:
				got = fmt.Sprintf("CONNACK code %d", code)
			case errors.As(err, &unknown):
				got = untrusted
			case tc.want == refused && errors.Is(err, io.EOF) && strings.Contains(err.Error(), "reading CONNACK"):
				got = refused // closed after a CONNECT that the TLS handshake let through
			default:
				got = noAnswer
			}
			if got != tc.want {
				t.Errorf("CONNECT to %s as %q: %s (code %d, err %v), want %s", tc.addr, tc.user, got, code, err, tc.want)
			}
		})
	}
}
