package web

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/xmppd/xmppd/test/harness"
	"github.com/xmppd/xmppd/test/xmppclient"
)

// converseDist is where scripts/test-deps.sh unpacks Converse.js from the npm registry (git ignores it).
func converseDist(t *testing.T) string {
	dir, err := filepath.Abs(filepath.Join("testdata", "converse", "dist"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "converse.min.js")); err != nil {
		harness.ToolMissing(t, "converse.js", "test/web/testdata/converse/dist/converse.min.js (scripts/test-deps.sh fetches it with npm pack)")
	}
	return dir
}

// The page: Converse.js logging in as alice with XEP-0156 discovery (it fetches https://<domain>/.well-known/
// host-meta and takes the wss:// link), and a small plugin that opens a chat with bob and sends one message once
// connected. Everything else is Converse's own code and UI.
const conversePage = `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>xmppd + Converse.js</title>
<link rel="stylesheet" href="/dist/converse.min.css">
<script type="module" src="/dist/converse.min.js"></script>
</head><body class="converse-fullscreen">
<script type="module">
converse.plugins.add('xmppd-test', {
  initialize() {
    const api = this._converse.api;
    api.listen.on('connected', async () => {
      window.xmppdConnected = true;
      const chat = await api.chats.open('%[1]s', {}, true);
      await chat.sendMessage({ body: 'hello from converse' });
      window.xmppdSent = true;
    });
  }
});
converse.initialize({
  assets_path: '/dist/',
  discover_connection_methods: true,
  jid: '%[2]s', password: '%[3]s', auto_login: true,
  view_mode: 'fullscreen',
  whitelisted_plugins: ['xmppd-test'],
  allow_non_roster_messaging: true,
  play_sounds: false, show_desktop_notifications: false,
  persistent_store: 'IndexedDB',
  loglevel: 'info',
});
</script></body></html>`

// TestConverseInBrowser: Converse.js in headless Chromium finds the WebSocket endpoint through host-meta, logs
// in (SCRAM), sends a message that a TCP client receives, and shows the TCP client's reply; a screenshot is saved.
func TestConverseInBrowser(t *testing.T) {
	bin := harness.Chromium(t)
	dist := converseDist(t)
	// A domain of its own, served over HTTPS (Converse only takes wss:// links), that Chromium resolves to the
	// server's HTTP port with --host-resolver-rules.
	srv := harness.Start(t, harness.Options{Domains: []string{"xmppd.test"}, HTTPTLS: true})
	alice, apw := xmppclient.NewAccount(t, srv, "alice")
	bob, bpw := xmppclient.NewAccount(t, srv, "bob")
	b := xmppclient.Online(t, srv, bob, bpw, "desk")
	aliceJID := alice + "@" + srv.Domain

	mux := http.NewServeMux()
	mux.Handle("/dist/", http.StripPrefix("/dist/", http.FileServer(http.Dir(dist))))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, conversePage, bob+"@"+srv.Domain, aliceJID, apw)
	})
	page := httptest.NewServer(mux) // another origin than xmppd's: CORS and origin checks are exercised
	t.Cleanup(page.Close)

	_, httpPort, _ := net.SplitHostPort(srv.HTTPAddr)
	tab := startChromium(t, bin, page.URL+"/",
		"--host-resolver-rules=MAP xmppd.test:443 127.0.0.1:"+httpPort+", MAP xmppd.test 127.0.0.1",
		"--ignore-certificate-errors")

	got, err := b.Wait(xmppclient.IsMessageWithBody("hello from converse"), 30*time.Second)
	if err != nil {
		var state string
		tab.eval(t, `JSON.stringify({converse: typeof converse, connected: !!window.xmppdConnected, sent: !!window.xmppdSent, text: (document.querySelector('converse-root')||document.body).innerText.slice(0, 2000)})`, &state)
		t.Fatalf("no message from Converse: %v; page: %s", err, state)
	}
	from := got.Get("from")
	if !strings.HasPrefix(from, aliceJID+"/") {
		t.Fatalf("message from %q, want a resource of %s", from, aliceJID)
	}
	b.Send("<message type='chat' to='" + from + "'><body>reply from the tcp client</body></message>")
	deadline := time.Now().Add(30 * time.Second)
	for {
		var shown bool
		tab.eval(t, `document.querySelector('converse-root') !== null && (document.querySelector('converse-root').innerText || '').includes('reply from the tcp client')`, &shown)
		if shown {
			break
		}
		if time.Now().After(deadline) {
			var text string
			tab.eval(t, `(document.querySelector('converse-root')||document.body).innerText`, &text)
			t.Fatalf("Converse does not show the reply; page text:\n%s", text)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// The conn behind it is a WebSocket (found through host-meta, not configured).
	if tree := httpGet(t, "http://"+srv.DebugAddr+"/debug/actors?kind=conn&jid="+aliceJID); !strings.Contains(tree, `"transport":"websocket"`) {
		t.Errorf("Converse's conn is not a websocket:\n%s", tree)
	}
	shot := filepath.Join(t.TempDir(), "converse.png")
	png := tab.screenshot(t)
	if err := os.WriteFile(shot, png, 0o644); err != nil || len(png) < 5000 {
		t.Fatalf("screenshot %s: %d bytes, %v", shot, len(png), err)
	}
	t.Logf("screenshot: %s (%d bytes)", shot, len(png))
	if keep := os.Getenv("XMPPD_KEEP_SCREENSHOT"); keep != "" {
		_ = os.WriteFile(keep, png, 0o644)
	}
}

// tab is one page of a headless Chromium, driven over the DevTools protocol (a WebSocket of JSON calls).
type tab struct {
	c  *websocket.Conn
	id int
}

var devtoolsRe = regexp.MustCompile(`DevTools listening on (ws://\S+)`)

// startChromium runs headless Chromium on url with a fresh profile and a DevTools port, and attaches to the page.
func startChromium(t *testing.T, bin, url string, extra ...string) *tab {
	t.Helper()
	args := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
		"--user-data-dir=" + t.TempDir(), "--window-size=1280,900", "--remote-debugging-port=0",
		"--remote-allow-origins=*"}, extra...)
	args = append(args, url)
	cmd := exec.Command(bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	})
	found := make(chan string, 1)
	var log strings.Builder
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := devtoolsRe.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			} else if log.Len() < 4000 {
				log.WriteString(sc.Text() + "\n")
			}
		}
	}()
	var browserWS string
	select {
	case browserWS = <-found:
	case <-time.After(30 * time.Second):
		t.Fatalf("chromium printed no DevTools address")
	}
	hostport := strings.TrimPrefix(browserWS, "ws://")
	hostport = hostport[:strings.Index(hostport, "/")]
	var targets []struct{ Type, URL, WebSocketDebuggerURL string }
	deadline := time.Now().Add(20 * time.Second)
	pageWS := ""
	for pageWS == "" {
		res, err := http.Get("http://" + hostport + "/json/list")
		if err == nil {
			_ = json.NewDecoder(res.Body).Decode(&targets)
			res.Body.Close()
			for _, tg := range targets {
				if tg.Type == "page" && tg.WebSocketDebuggerURL != "" {
					pageWS = tg.WebSocketDebuggerURL
				}
			}
		}
		if pageWS == "" {
			if time.Now().After(deadline) {
				t.Fatalf("no page target in chromium: %v", err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, pageWS, nil)
	if err != nil {
		t.Fatalf("devtools: %v", err)
	}
	c.SetReadLimit(64 << 20)
	t.Cleanup(func() { _ = c.CloseNow() })
	return &tab{c: c}
}

// call sends one DevTools command and returns its result, skipping events.
func (p *tab) call(t *testing.T, method string, params any) json.RawMessage {
	t.Helper()
	p.id++
	msg, _ := json.Marshal(map[string]any{"id": p.id, "method": method, "params": params})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := p.c.Write(ctx, websocket.MessageText, msg); err != nil {
		t.Fatalf("devtools %s: %v", method, err)
	}
	for {
		_, b, err := p.c.Read(ctx)
		if err != nil {
			t.Fatalf("devtools %s: %v", method, err)
		}
		var r struct {
			ID     int             `json:"id"`
			Result json.RawMessage `json:"result"`
			Error  *struct{ Message string }
		}
		if json.Unmarshal(b, &r) == nil && r.ID == p.id {
			if r.Error != nil {
				t.Fatalf("devtools %s: %s", method, r.Error.Message)
			}
			return r.Result
		}
	}
}

// eval evaluates a JavaScript expression in the page into out.
func (p *tab) eval(t *testing.T, expr string, out any) {
	t.Helper()
	res := p.call(t, "Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true})
	var r struct {
		Result struct{ Value json.RawMessage }
	}
	if err := json.Unmarshal(res, &r); err != nil {
		t.Fatalf("eval %s: %v", expr, err)
	}
	if len(r.Result.Value) > 0 {
		_ = json.Unmarshal(r.Result.Value, out)
	}
}

func (p *tab) screenshot(t *testing.T) []byte {
	t.Helper()
	res := p.call(t, "Page.captureScreenshot", map[string]any{"format": "png"})
	var r struct{ Data string }
	if err := json.Unmarshal(res, &r); err != nil {
		t.Fatal(err)
	}
	png, err := base64.StdEncoding.DecodeString(r.Data)
	if err != nil {
		t.Fatal(err)
	}
	return png
}
