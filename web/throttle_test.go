package web

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"github.com/tidewatch/tidewatch/core/credential"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"

	"github.com/tidewatch/tidewatch/core/config"
)

// withUser configures one user whose hash is h (an encoded hash).
func withUser(t *testing.T, name, h string) option {
	t.Helper()
	ph, problem := config.ParsePasswordHash(h)
	if problem != "" {
		t.Fatalf("ParsePasswordHash: %s", problem)
	}
	return func(_ *Deps, c *Config) { c.Users = append(c.Users, credential.User{Name: name, Hash: ph}) }
}

// argon2Hash returns the PHC string of password with m KiB and t passes.
func argon2Hash(password string, m, t uint32) string {
	salt := []byte("0123456789abcdef")
	key := argon2.IDKey([]byte(password), salt, t, m, 1, 32)
	return fmt.Sprintf("$argon2id$v=19$m=%d,t=%d,p=1$%s$%s", m, t, base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
}

// clock is a settable time for the authenticator.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// peakRSS reads the process's peak resident set (VmHWM), in MiB; -1 when unknown.
func peakRSS() int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return kb >> 10
		}
	}
	return -1
}

// TestLoginFloodIsBounded replays the review's flood on a real server: 24
// parallel wrong Basic logins for an argon2id (m = 64 MiB) user. At most
// MaxConcurrentHashes hashes run at once; the address gets LoginBurst
// checks (401), then 429 with Retry-After and no hash; its right password
// too waits for the allowance to come back, while another address is not
// held up.
func TestLoginFloodIsBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("hashes 64 MiB argon2id a dozen times")
	}
	e := newEnv(t, withUser(t, "bob", argon2Hash(password, 64<<10, 1)))
	a := e.srv.auth
	a.throttle.burst = LoginBurst
	a.hashWait = time.Minute // a dozen 64 MiB hashes queue on a busy machine; 503 has its own test
	clk := &clock{t: time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)}
	a.now = clk.Now
	l := e.serveLive(t)
	wrong := []string{"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte("bob:wrong"))}

	const n = 24
	rssBefore := peakRSS()
	start := time.Now()
	type answer struct {
		code  int
		retry string
	}
	answers := make(chan answer, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, _, h := l.send(t, "GET", "/api/containers", "", "", wrong...)
			answers <- answer{code, h.Get("Retry-After")}
		}()
	}
	wg.Wait()
	close(answers)
	took := time.Since(start)
	counts := map[int]int{}
	for ans := range answers {
		counts[ans.code]++
		if ans.code == http.StatusTooManyRequests {
			if s, err := strconv.Atoi(ans.retry); err != nil || s < 1 || s > int(LoginRefill/time.Second) {
				t.Errorf("429 with Retry-After %q, want 1 to %d seconds", ans.retry, int(LoginRefill/time.Second))
			}
		}
	}
	if counts[http.StatusUnauthorized] != LoginBurst || counts[http.StatusTooManyRequests] != n-LoginBurst {
		t.Errorf("%d parallel wrong logins answered %v, want %d × 401 and %d × 429", n, counts, LoginBurst, n-LoginBurst)
	}
	if got := a.peak.Load(); got > MaxConcurrentHashes {
		t.Errorf("%d hashes ran at once, want at most %d", got, MaxConcurrentHashes)
	}
	if got := a.hashed.Load(); got != LoginBurst {
		t.Errorf("%d hashes computed, want %d (none for a throttled login)", got, LoginBurst)
	}
	t.Logf("%d parallel wrong logins (argon2id m=64 MiB): %s, peak RSS %d → %d MiB, %d hashes, at most %d at once",
		n, took.Round(time.Millisecond), rssBefore, peakRSS(), a.hashed.Load(), a.peak.Load())

	// The right password from that address waits too: no hash is spent.
	if code, body, h := l.send(t, "GET", "/api/containers", "", "", asBob...); code != http.StatusTooManyRequests || h.Get("Retry-After") == "" {
		t.Errorf("right password from a throttled address = %d %s, want 429 with Retry-After", code, body)
	}
	// Another address is not held up.
	other := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}).DialContext}}
	req, _ := http.NewRequest("GET", l.base+"/api/containers", nil)
	req.Header.Set(asBob[0], asBob[1])
	resp, err := other.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("right password from 127.0.0.2 = %d, want 200", resp.StatusCode)
	}
	// One refill later the address may try once more.
	clk.Add(LoginRefill)
	if code, body, _ := l.send(t, "GET", "/api/containers", "", "", asBob...); code != http.StatusOK {
		t.Errorf("right password after %s = %d %s, want 200", LoginRefill, code, body)
	}
	if code, _, _ := l.send(t, "GET", "/api/containers", "", "", wrong...); code != http.StatusUnauthorized {
		t.Errorf("wrong password with one check left = %d, want 401", code)
	}
	if code, _, _ := l.send(t, "GET", "/api/containers", "", "", wrong...); code != http.StatusTooManyRequests {
		t.Errorf("wrong password with none left = %d, want 429", code)
	}
	// A remembered login costs no check.
	if code, _, _ := l.send(t, "GET", "/api/containers", "", "", asBob...); code != http.StatusOK {
		t.Errorf("remembered right password from a throttled address = %d, want 200", code)
	}
}

// TestHashSlotsBusy: a login that waits longer than hashWait for a slot is
// answered 503 with Retry-After, and costs the address nothing.
func TestHashSlotsBusy(t *testing.T) {
	e := newEnv(t, withAuth(t))
	a := e.srv.auth
	a.hashWait = 50 * time.Millisecond
	for range MaxConcurrentHashes {
		a.slots <- struct{}{}
	}
	w := e.do(t, "GET", "/api/containers", "", asAlice...)
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") != "1" || errorOf(t, w).Code != "busy" {
		t.Errorf("login with every slot busy = %d %s (Retry-After %q), want 503 busy", w.Code, w.Body.String(), w.Header().Get("Retry-After"))
	}
	for range MaxConcurrentHashes {
		<-a.slots
	}
	if w := e.do(t, "GET", "/api/containers", "", asAlice...); w.Code != http.StatusOK {
		t.Errorf("login with a free slot = %d, want 200", w.Code)
	}
}

func TestThrottleTableBounded(t *testing.T) {
	th := newThrottle()
	now := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	fail := func(client string) bool {
		a, _ := th.take(client, now)
		return a != nil
	}
	attacker := clientAddress("198.51.100.7:40000")
	for range LoginBurst {
		if !fail(attacker) {
			t.Fatal("the first failures were throttled")
		}
	}
	if fail(attacker) {
		t.Fatalf("failure %d was allowed", LoginBurst+1)
	}
	// A flood from 100,000 other addresses, each failing once.
	for i := range 100_000 {
		fail(fmt.Sprintf("10.%d.%d.%d", i>>16, (i>>8)&255, i&255))
	}
	if got := th.size(); got > MaxThrottledClients {
		t.Errorf("the table holds %d addresses, want at most %d", got, MaxThrottledClients)
	}
	if fail(attacker) {
		t.Error("the flood pushed the throttled address out of the table")
	}
	// Newcomers while the table is full share one allowance, spent by now.
	if fail("192.0.2.200") {
		t.Error("a newcomer to a full table of failing addresses got an allowance of its own")
	}
	// Once the addresses recover, they are swept and newcomers get their own.
	now = now.Add(LoginBurst * LoginRefill)
	if !fail("192.0.2.201") || th.size() > 2 {
		t.Errorf("after recovery: a newcomer throttled, or %d addresses kept", th.size())
	}
}

func TestClientAddress(t *testing.T) {
	for _, tc := range []struct{ remote, want string }{
		{"192.0.2.1:1234", "192.0.2.1"},
		{"[::ffff:192.0.2.1]:1234", "192.0.2.1"},
		{"[2001:db8:1:2:3:4:5:6]:1", "2001:db8:1:2::/64"},
		{"[2001:db8:1:2:ffff::9]:2", "2001:db8:1:2::/64"},
		{"[2001:db8:1:3::1]:2", "2001:db8:1:3::/64"},
		{"@", "@"},
	} {
		if got := clientAddress(tc.remote); got != tc.want {
			t.Errorf("clientAddress(%q) = %q, want %q", tc.remote, got, tc.want)
		}
	}
}

// TestFailedLoginTiming: a wrong login for an unknown name costs what one
// for a user costs, whatever the user's scheme and parameters: the unknown
// name is checked against a decoy with that user's scheme and parameters
// (asserted exactly), which takes as long (asserted loosely, for the
// machine is shared: the fastest of 9 each within a factor of 4; a bcrypt
// cost 6 user against the former fixed cost-10 decoy was 16 times faster).
func TestFailedLoginTiming(t *testing.T) {
	if testing.Short() {
		t.Skip("times password hashes")
	}
	bc, err := bcrypt.GenerateFromPassword([]byte(password), 6)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, hash string }{
		{"bcrypt cost 6", string(bc)},
		{"argon2id m=4 MiB", argon2Hash(password, 4<<10, 1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, withUser(t, "alice", tc.hash))
			a := e.srv.auth
			user, d := a.users["alice"], a.decoy("mallory")
			sameBcrypt := d.Scheme != "bcrypt" || d.Encoded.Reveal()[:7] == user.Encoded.Reveal()[:7] && len(d.Encoded.Reveal()) == len(user.Encoded.Reveal())
			if d.Scheme != user.Scheme || d.Cost != user.Cost || d.Memory != user.Memory || d.Time != user.Time || d.Threads != user.Threads ||
				len(d.Salt) != len(user.Salt) || len(d.Key) != len(user.Key) || !sameBcrypt {
				t.Errorf("the decoy (%s cost %d m=%d t=%d p=%d) has not the user's parameters", d.Scheme, d.Cost, d.Memory, d.Time, d.Threads)
			}
			// Interleaved, and the fastest of each: other work on the machine
			// only ever adds time.
			var known, unknown time.Duration
			for i := range 9 {
				for _, user := range []string{"alice", "mallory"} {
					start := time.Now()
					ok, err := a.password(context.Background(), "192.0.2.1", user, "wrong-"+strconv.Itoa(i))
					d := time.Since(start)
					if ok || err != nil {
						t.Fatalf("password(%s, wrong) = %v, %v", user, ok, err)
					}
					if p := map[string]*time.Duration{"alice": &known, "mallory": &unknown}[user]; *p == 0 || d < *p {
						*p = d
					}
				}
			}
			ratio := float64(unknown) / float64(known)
			t.Logf("failed login, fastest of 9: known user %s, unknown %s (ratio %.2f)", known, unknown, ratio)
			if ratio < 0.25 || ratio > 4 {
				t.Errorf("a failed login takes %s for an unknown user and %s for a known one (ratio %.2f), want the same", unknown, known, ratio)
			}
			if a.hashed.Load() != 18 {
				t.Errorf("%d hashes for 18 failed logins, want one each", a.hashed.Load())
			}
		})
	}
}

// TestDecoysFollowTheUsers: with users of several schemes, unknown names
// are checked against decoys of each (one name always the same), and no
// password matches a decoy.
func TestDecoysFollowTheUsers(t *testing.T) {
	bc, _ := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	e := newEnv(t, withUser(t, "alice", string(bc)), withUser(t, "bob", argon2Hash(password, 64, 1)))
	a := e.srv.auth
	seen := map[string]int{}
	for i := range 200 {
		name := "user" + strconv.Itoa(i)
		d := a.decoy(name)
		seen[d.Scheme]++
		if again := a.decoy(name); again.Scheme != d.Scheme || !bytes.Equal(again.Salt, d.Salt) || again.Encoded != d.Encoded {
			t.Fatalf("decoy(%s) changed between calls", name)
		}
		if verify(d, password) {
			t.Fatalf("the decoy of %s matches a user's password", name)
		}
	}
	if seen["bcrypt"] < 50 || seen["argon2id"] < 50 {
		t.Errorf("decoys by scheme over 200 names = %v, want both about half", seen)
	}
	if d := a.decoy("x"); d.Scheme == "bcrypt" && (d.Cost != bcrypt.MinCost || !strings.HasPrefix(d.Encoded.Reveal(), string(bc[:7]))) {
		t.Errorf("bcrypt decoy %q does not keep the user's cost", d.Encoded.Reveal()[:7])
	}
	if ok, _ := a.password(context.Background(), "192.0.2.1", "mallory", password); ok {
		t.Error("an unknown user logged in with a user's password")
	}
}
