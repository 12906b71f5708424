// Package uitest drives Debian's headless chromium for the browser tests of
// tidewatch's web UI (web/ui) and for the system tests that open the real
// daemon's page.
//
// Browser starts a fresh chromium (its own user-data-dir, no sandbox, no GPU,
// no first-run, background networking and sync off) through chromedp and
// stops it when the test ends. It uses the path in TIDEWATCH_CHROMIUM, or
// Debian's /usr/bin/chromium. It never installs chromium: the test bed does,
// once, before any test starts (go run ./test/bedctl up, or make test). When
// chromium is missing the test fails under make test and CI
// (TIDEWATCH_TESTBED_REQUIRED=1 or CI=true) and is skipped otherwise.
package uitest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/chromedp/cdproto/accessibility"
	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// DefaultChromium is where Debian's chromium package puts the browser.
const DefaultChromium = "/usr/bin/chromium"

// EnvChromium names a chromium binary to use instead of Debian's.
const EnvChromium = "TIDEWATCH_CHROMIUM"

// Browser starts a headless chromium for t and returns a chromedp context
// on a fresh tab; the browser is stopped, and its profile removed, when t
// ends. The context has no deadline: bound single steps with
// context.WithTimeout on the returned context.
func Browser(t testing.TB) context.Context {
	t.Helper()
	exe := Chromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() {
		cancel()
		cancelAlloc() // waits for the browser to exit, before TempDir is removed
	})
	// Start the browser now, so that a broken install fails here.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting chromium %s: %v", exe, err)
	}
	return ctx
}

// Screenshot writes a PNG of the whole page of ctx to path, creating its
// folder.
func Screenshot(t testing.TB, ctx context.Context, path string) {
	t.Helper()
	buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("taking a screenshot: %v", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatalf("creating the screenshot folder: %v", err)
	}
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		t.Fatalf("writing the screenshot: %v", err)
	}
	t.Logf("screenshot: %s", path)
}

// cspScript turns every Content-Security-Policy violation of a page into a
// console error, which Problems records.
const cspScript = `document.addEventListener('securitypolicyviolation', (e) => {
  console.error('CSP violation: ' + e.violatedDirective + ' blocked ' + (e.blockedURI || 'inline') + ' at ' + e.sourceFile + ':' + e.lineNumber);
});`

// Problems records, from now on, what goes wrong in the pages of ctx:
// console errors and warnings of the page, uncaught exceptions, errors of the
// browser log (failed loads, refused resources) and Content-Security-Policy
// violations (securitypolicyviolation events). Call it before navigating; the
// returned func lists what was recorded so far.
func Problems(t testing.TB, ctx context.Context) func() []string {
	t.Helper()
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument,
		page.AddScriptToEvaluateOnNewDocumentParams{Source: cspScript}); err != nil {
		t.Fatalf("installing the CSP listener: %v", err)
	}
	var (
		mu  sync.Mutex
		got []string
	)
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			switch {
			case m.Type == chromedp.ConsoleError, m.Type == chromedp.ConsoleException,
				m.Type == chromedp.ConsoleWarning && m.Source == "",
				m.Source == "security":
				mu.Lock()
				got = append(got, fmt.Sprintf("%s (%s:%d)", m, m.URL, m.Line))
				mu.Unlock()
			}
		}
	}()
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), got...)
	}
}

// AnswerAuth answers the HTTP authentication challenges (Basic) of the
// pages of ctx from now on: with user and password, or, when user is "", by
// cancelling, as a person who closes the browser's sign-in prompt does.
// Headless chromium has no prompt; without AnswerAuth a challenged request
// waits. It pauses every request of the tab for a moment (Fetch domain).
func AnswerAuth(t testing.TB, ctx context.Context, user, password string) {
	t.Helper()
	paused := chromedp.Events(ctx, fetch.RequestPaused)
	challenges := chromedp.Events(ctx, fetch.AuthRequired)
	if _, err := chromedp.Call(ctx, fetch.Enable, fetch.EnableParams{HandleAuthRequests: ptr(true)}); err != nil {
		t.Fatalf("intercepting authentication: %v", err)
	}
	go func() {
		for ev, err := range paused {
			if err != nil {
				return
			}
			_, _ = chromedp.Call(ctx, fetch.ContinueRequest, fetch.ContinueRequestParams{RequestID: ev.RequestID})
		}
	}()
	answer := &fetch.AuthChallengeResponse{Response: fetch.AuthChallengeResponseResponseCancelAuth}
	if user != "" {
		answer = &fetch.AuthChallengeResponse{Response: fetch.AuthChallengeResponseResponseProvideCredentials,
			Username: user, Password: password}
	}
	go func() {
		for ev, err := range challenges {
			if err != nil {
				return
			}
			_, _ = chromedp.Call(ctx, fetch.ContinueWithAuth, fetch.ContinueWithAuthParams{RequestID: ev.RequestID, AuthChallengeResponse: answer})
		}
	}()
}

func ptr[T any](v T) *T { return &v }

// UnnamedControls lists the buttons, links and form fields of the page of
// ctx that have no accessible name, as chromium's accessibility tree computes
// it (role and DOM node id of each).
func UnnamedControls(t testing.TB, ctx context.Context) []string {
	t.Helper()
	tree, err := chromedp.Call(ctx, accessibility.GetFullAXTree, accessibility.GetFullAXTreeParams{})
	if err != nil {
		t.Fatalf("reading the accessibility tree: %v", err)
	}
	named := map[string]bool{"button": true, "link": true, "textbox": true, "combobox": true,
		"checkbox": true, "radio": true, "listbox": true, "spinbutton": true, "searchbox": true}
	var out []string
	for _, n := range tree.Nodes {
		if n.Ignored || n.Role == nil {
			continue
		}
		role := axString(n.Role)
		if !named[role] {
			continue
		}
		if n.Name == nil || axString(n.Name) == "" {
			out = append(out, fmt.Sprintf("%s (node %d)", role, n.BackendDOMNodeID))
		}
	}
	return out
}

// CountRole counts the nodes of role (e.g. "button") in the accessibility
// tree of the page of ctx, so that a test can tell that UnnamedControls
// looked at something.
func CountRole(t testing.TB, ctx context.Context, role string) int {
	t.Helper()
	tree, err := chromedp.Call(ctx, accessibility.GetFullAXTree, accessibility.GetFullAXTreeParams{})
	if err != nil {
		t.Fatalf("reading the accessibility tree: %v", err)
	}
	n := 0
	for _, node := range tree.Nodes {
		if !node.Ignored && node.Role != nil && axString(node.Role) == role {
			n++
		}
	}
	return n
}

func axString(v *accessibility.Value) string {
	if v == nil || len(v.Value) == 0 {
		return ""
	}
	var s string
	if err := json.Unmarshal(v.Value, &s); err != nil {
		return ""
	}
	return s
}

// Chromium returns the path of the chromium binary: TIDEWATCH_CHROMIUM, else
// Debian's /usr/bin/chromium. When it is missing the test fails when
// TIDEWATCH_TESTBED_REQUIRED=1 or CI=true, and is skipped otherwise.
func Chromium(t testing.TB) string {
	t.Helper()
	p, err := chromium()
	if err != nil {
		// The names are the test bed's (test/testbed EnvRequired), not imported so
		// that the UI's tests do not build the Docker client.
		msg := fmt.Sprintf("%v; the test bed installs chromium before the tests: go run ./test/bedctl up (as root), or make test", err)
		if os.Getenv("TIDEWATCH_TESTBED_REQUIRED") == "1" || os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return p
}

// chromium finds the chromium binary.
func chromium() (string, error) {
	if p := os.Getenv(EnvChromium); p != "" {
		if st, err := os.Stat(p); err != nil || st.IsDir() {
			return "", fmt.Errorf("%s=%q names no chromium binary", EnvChromium, p)
		}
		return p, nil
	}
	if _, err := os.Stat(DefaultChromium); err != nil {
		return "", fmt.Errorf("chromium is missing: %s not found and %s not set", DefaultChromium, EnvChromium)
	}
	return DefaultChromium, nil
}
