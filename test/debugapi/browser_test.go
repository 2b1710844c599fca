package debugapi

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xmppd/xmppd/test/harness"
)

// chromium finds Debian's chromium (scripts/test-deps.sh installs it).
func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	harness.ToolMissing(t, "chromium", "no chromium, chromium-browser or google-chrome on PATH; the page is not checked in a browser")
	return ""
}

// runChromium runs one headless chromium job against url with a fresh profile and returns its stdout.
func runChromium(t *testing.T, bin, url string, extra ...string) []byte {
	t.Helper()
	profile := t.TempDir()
	args := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
		"--user-data-dir=" + profile, "--virtual-time-budget=5000"}, extra...)
	args = append(args, url)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %v: %v\nstderr:\n%s", extra, err, tail(errb.String(), 2000))
	}
	return out.Bytes()
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// TestPageInBrowser loads the page in headless chromium: the script must fetch the tree and render a node for
// every connected client's conn and session, with counts per kind; a screenshot is saved in the test's temp dir.
func TestPageInBrowser(t *testing.T) {
	bin := chromium(t)
	srv := start(t)
	alice, bob := uniq("alice"), uniq("bob")
	a := mustConnect(t, srv, alice, "phone", true, nil)
	b := mustConnect(t, srv, bob, "desk", true, nil)
	url := "http://" + srv.DebugAddr + "/debug/actors.html?live=0"

	dom := string(runChromium(t, bin, url, "--dump-dom"))
	for _, want := range []string{
		`data-kind="conn" data-jid="` + a.JID + `"`,
		`data-kind="session" data-jid="` + a.JID + `"`,
		`data-kind="conn" data-jid="` + b.JID + `"`,
		`data-kind="user" data-jid="` + bob + `@` + srv.Domain + `"`,
		`data-kind="listener"`, `data-kind="router"`,
		`data-nodes="13"`, // listener, router, caps, services, the pubsub, muc and upload services, 2 conns, 2 users, 2 sessions
		`>conn 2</span>`, `>session 2</span>`,
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("rendered page lacks %s", want)
		}
	}
	if t.Failed() {
		t.Logf("DOM:\n%s", tail(dom, 6000))
	}
	// The browser-side search keeps matching nodes and their ancestors only.
	dom = string(runChromium(t, bin, url+"&jid="+alice, "--dump-dom"))
	if !strings.Contains(dom, `data-jid="`+a.JID+`"`) || strings.Contains(dom, `data-jid="`+b.JID+`"`) {
		t.Errorf("search for %s: page still shows %s or lost %s", alice, b.JID, a.JID)
	}

	dir := t.TempDir()
	shot := filepath.Join(dir, "actors.png")
	runChromium(t, bin, url, "--screenshot="+shot, "--window-size=1280,800")
	st, err := os.Stat(shot)
	if err != nil || st.Size() < 1000 {
		t.Fatalf("screenshot %s: %v (size %v)", shot, err, st)
	}
	t.Logf("screenshot: %s (%d bytes)", shot, st.Size())
	if keep := os.Getenv("XMPPD_KEEP_SCREENSHOT"); keep != "" {
		b, _ := os.ReadFile(shot)
		_ = os.WriteFile(keep, b, 0o644)
	}
}
