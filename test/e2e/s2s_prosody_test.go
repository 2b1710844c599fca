package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/xmppd/xmppd/test/harness"
	"github.com/xmppd/xmppd/test/xmppclient"
)

// Interop with Prosody (Debian's prosody, configured by the test): xmppd serves xmppd.example, Prosody
// prosody.example. xmppd reaches Prosody by its static route; Prosody has no static routes, so it resolves
// xmppd.example through a small DNS server the test runs on loopback (an SRV record
// _xmpp-server._tcp.xmppd.example → the xmppd s2s port), which Prosody's libunbound is told to forward to.
// (Not .test: unbound answers NXDOMAIN for the RFC 6761 special-use names itself.)

// fakeDNS answers SRV _xmpp-server._tcp.<domain> and A <domain> for the domains it is given, NXDOMAIN otherwise.
type fakeDNS struct {
	pc    net.PacketConn
	ports map[string]uint16 // domain → s2s port on 127.0.0.1
}

func startFakeDNS(t testing.TB, ports map[string]uint16) *fakeDNS {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d := &fakeDNS{pc: pc, ports: ports}
	t.Cleanup(func() { pc.Close() })
	go d.serve()
	return d
}

func (d *fakeDNS) addr() string { return d.pc.LocalAddr().String() }

func (d *fakeDNS) serve() {
	buf := make([]byte, 1500)
	for {
		n, from, err := d.pc.ReadFrom(buf)
		if err != nil {
			return
		}
		var p dnsmessage.Parser
		h, err := p.Start(buf[:n])
		if err != nil {
			continue
		}
		q, err := p.Question()
		if err != nil {
			continue
		}
		rh := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired,
			RecursionAvailable: true}
		name := strings.ToLower(strings.TrimSuffix(q.Name.String(), "."))
		b := dnsmessage.NewBuilder(nil, rh)
		b.EnableCompression()
		_ = b.StartQuestions()
		_ = b.Question(q)
		_ = b.StartAnswers()
		found := false
		for dom, port := range d.ports {
			switch {
			case name == "_xmpp-server._tcp."+dom && q.Type == dnsmessage.TypeSRV:
				found = true
				target, _ := dnsmessage.NewName(dom + ".")
				_ = b.SRVResource(dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 5},
					dnsmessage.SRVResource{Priority: 0, Weight: 0, Port: port, Target: target})
			case name == dom && q.Type == dnsmessage.TypeA:
				found = true
				_ = b.AResource(dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 5},
					dnsmessage.AResource{A: [4]byte{127, 0, 0, 1}})
			case name == dom || strings.HasSuffix(name, "."+dom):
				found = true // the name exists, without records of that type (NODATA)
			}
		}
		msg, err := b.Finish()
		if err != nil {
			continue
		}
		if !found {
			msg[3] = msg[3]&^0x0f | byte(dnsmessage.RCodeNameError)
		}
		_, _ = d.pc.WriteTo(msg, from)
	}
}

type prosody struct {
	dir, cfg string
	c2s, s2s string
	cmd      *exec.Cmd
}

// startProsody runs Prosody for domain. cafile, when not "", is what it trusts for peers' certificates (then
// it requires a valid one: s2s_secure_auth, and authenticates by SASL EXTERNAL).
func startProsody(t testing.TB, domain, certFile, keyFile, dnsAddr, cafile string) *prosody {
	t.Helper()
	return startProsodyLog(t, domain, certFile, keyFile, dnsAddr, cafile, "debug")
}

// startProsodyLog is startProsody logging from level minLevel on (the benchmark's Prosody logs warnings only: a
// debug line per stanza would be most of what it measures).
func startProsodyLog(t testing.TB, domain, certFile, keyFile, dnsAddr, cafile, minLevel string) *prosody {
	t.Helper()
	if _, err := exec.LookPath("prosody"); err != nil {
		harness.ToolMissing(t, "prosody", err.Error())
	}
	dir := t.TempDir()
	p := &prosody{dir: dir, cfg: filepath.Join(dir, "prosody.cfg.lua"), c2s: freeAddr(t)}
	s2s := freeAddr(t)
	_, c2sPort, _ := net.SplitHostPort(p.c2s)
	_, s2sPort, _ := net.SplitHostPort(s2s)
	host, port, _ := net.SplitHostPort(dnsAddr)
	caLine := ""
	if cafile != "" {
		caLine = fmt.Sprintf("ssl = { cafile = %q }", cafile)
	}
	cfg := fmt.Sprintf(`-- written by xmppd's s2s interop test
run_as_root = true
pidfile = %[1]q
data_path = %[2]q
plugin_paths = { }
interfaces = { "127.0.0.1" }
c2s_ports = { %[3]s }
c2s_direct_tls_ports = { }
s2s_ports = { %[4]s }
modules_enabled = { "roster"; "saslauth"; "tls"; "dialback"; "disco"; "ping"; "presence"; "message"; "offline"; "smacks" }
authentication = "internal_plain"
storage = "internal"
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
s2s_require_encryption = true
s2s_secure_auth = %[10]s
%[11]s
unbound = { resolvconf = false; hoststxt = false; forward = %[5]q }
log = { { levels = { min = %[12]q }, to = "file", filename = %[6]q } }
VirtualHost %[7]q
    ssl = { certificate = %[8]q; key = %[9]q }
Component "conference.%[7]s" "muc"
    ssl = { certificate = %[8]q; key = %[9]q }
`, filepath.Join(dir, "prosody.pid"), filepath.Join(dir, "data"), c2sPort, s2sPort, host+"@"+port,
		filepath.Join(dir, "prosody.log"), domain, certFile, keyFile, strconv.FormatBool(cafile != ""), caLine, minLevel)
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p.cfg, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command("prosody", "-F", "--config", p.cfg)
	p.cmd.Dir = dir
	out, err := os.Create(filepath.Join(dir, "stdout.log"))
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stdout, p.cmd.Stderr = out, out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = p.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		out.Close()
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "prosody.log"))
			lines := strings.Split(string(b), "\n")
			t.Logf("prosody log (last 60 lines):\n%s", strings.Join(lines[max(0, len(lines)-60):], "\n"))
		}
	})
	waitListening(t, p.c2s)
	waitListening(t, s2s)
	p.s2s = s2s
	return p
}

func (p *prosody) register(t testing.TB, user, domain, password string) {
	t.Helper()
	out, err := exec.Command("prosodyctl", "--config", p.cfg, "register", user, domain, password).CombinedOutput()
	if err != nil {
		t.Fatalf("prosodyctl register: %v\n%s", err, out)
	}
}

// Over TLS with dialback: xmppd's certificate is self-signed, Prosody cannot verify it.
func TestS2SProsodyInterop(t *testing.T) { prosodyInterop(t, false) }

// With SASL EXTERNAL: both certificates from the test's CA, which both trust; Prosody with s2s_secure_auth.
func TestS2SProsodyInteropExternal(t *testing.T) { prosodyInterop(t, true) }

func prosodyInterop(t *testing.T, external bool) {
	certs := newFedCA(t)
	aS2S := freeAddr(t)
	_, ap, _ := net.SplitHostPort(aS2S)
	aPort, _ := strconv.Atoi(ap)
	dns := startFakeDNS(t, map[string]uint16{"xmppd.example": uint16(aPort)})
	pCert, pKey := certs.leaf(t, "prosody.example", false)
	prosCA := ""
	if external {
		prosCA = certs.caFile
	}
	pros := startProsody(t, "prosody.example", pCert, pKey, dns.addr(), prosCA)

	aCert, aKey := certs.leaf(t, "xmppd.example", !external) // self-signed: Prosody cannot verify it (dialback)
	aCA, trust := aCert+".ca", ""                            // dialback: xmppd does not trust Prosody's CA either
	if external {
		aCA, trust = certs.caFile, certs.caFile
	}
	a := own(t, harness.Options{Domains: []string{"xmppd.example"}, CertFile: aCert, KeyFile: aKey, CAFile: aCA,
		Sections:  map[string]string{"s2s": fmt.Sprintf("listen = %q\nca_file = %q\nconnect_timeout = \"15s\"", aS2S, trust)},
		ExtraTOML: fmt.Sprintf("[s2s.routes]\n\"prosody.example\" = %q\n\"conference.prosody.example\" = %q\n", pros.s2s, pros.s2s)})
	waitListening(t, aS2S)

	al, apw := a.user(t, "alice")
	pros.register(t, "paul", "prosody.example", "paul-secret")
	A, P := a.bare(al), "paul@prosody.example"
	alice := xmppclient.Online(t, a.Server, al, apw, "home")
	alice.IQ(`<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>`)
	paul := xmppclient.MustLogin(t, xmppclient.Target{Domain: "prosody.example", C2SAddr: pros.c2s,
		TLS: xmppclient.TrustTLS("prosody.example", certs.pool(t))}, "paul", "paul-secret", xmppclient.Options{Resource: "desk"})
	paul.IQ(`<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>`)
	paul.Send("<presence/>")

	alice.Send(`<presence to='` + P + `' type='subscribe'/>`)
	waitFor(t, paul, "subscribe from alice (xmppd → Prosody)", xmppclient.IsPresence(A, "subscribe"))
	paul.Send(`<presence to='` + A + `' type='subscribed'/>`)
	waitFor(t, alice, "roster push subscription=to", func(e *xmppclient.Elem) bool {
		return xmppclient.IsRosterPush(P)(e) && e.Child(xmppclient.NSRoster, "query").Child(xmppclient.NSRoster, "item").Get("subscription") == "to"
	})
	waitFor(t, alice, "paul's presence (Prosody → xmppd)", func(e *xmppclient.Elem) bool {
		return e.Name.Local == "presence" && e.Get("type") == "" && strings.HasPrefix(e.Get("from"), P+"/")
	})
	paul.Send(`<presence to='` + A + `' type='subscribe'/>`)
	waitFor(t, alice, "subscribe from paul", xmppclient.IsPresence(P, "subscribe"))
	alice.Send(`<presence to='` + P + `' type='subscribed'/>`)
	waitFor(t, paul, "alice's presence", xmppclient.IsPresence(alice.JID.String(), ""))

	alice.Send(`<message to='` + P + `' type='chat'><body>hello prosody</body></message>`)
	waitFor(t, paul, "alice's message", xmppclient.IsMessageWithBody("hello prosody"))
	paul.Send(`<message to='` + alice.JID.String() + `' type='chat'><body>hello xmppd</body></message>`)
	waitFor(t, alice, "paul's message", xmppclient.IsMessageWithBody("hello xmppd"))
	// XEP-0313 on our side: the chat with the Prosody user is in alice's archive, both ways, in order.
	page := mustMAM(t, alice, "pros", mamForm("with", P), "", "")
	if got := strings.Join(page.bodies, "|"); got != "hello prosody|hello xmppd" {
		t.Errorf("alice's archive with %s: %q", P, got)
	}

	// XEP-0045: paul creates a room on Prosody's MUC component, alice enters it from xmppd; groupchat both ways.
	room := "interop@conference.prosody.example"
	isSelf := func(nick string) func(*xmppclient.Elem) bool {
		return func(e *xmppclient.Elem) bool {
			if e.Name.Local != "presence" || e.Get("from") != room+"/"+nick || e.Get("type") != "" {
				return false
			}
			for _, st := range e.Child(nsMUC+"#user", "x").Children(nsMUC+"#user", "status") {
				if st.Get("code") == "110" {
					return true
				}
			}
			return false
		}
	}
	paul.Send("<presence to='" + room + "/paul'><x xmlns='" + nsMUC + "'/></presence>")
	waitFor(t, paul, "paul in his room", isSelf("paul"))
	if r := paul.IQ("<iq type='set' to='" + room + "'><query xmlns='" + nsMUC + "#owner'><x xmlns='jabber:x:data' type='submit'/></query></iq>"); r.Get("type") != "result" {
		t.Fatalf("instant room at Prosody: %s", r)
	}
	alice.Send("<presence to='" + room + "/alice'><x xmlns='" + nsMUC + "'/></presence>")
	waitFor(t, alice, "alice in the Prosody room", isSelf("alice"))
	alice.Send("<message to='" + room + "' type='groupchat'><body>xmppd in the room</body></message>")
	waitFor(t, paul, "alice's groupchat", xmppclient.IsMessageWithBody("xmppd in the room"))
	waitFor(t, alice, "alice's groupchat reflected", xmppclient.IsMessageWithBody("xmppd in the room"))
	paul.Send("<message to='" + room + "' type='groupchat'><body>prosody in the room</body></message>")
	m := waitFor(t, alice, "paul's groupchat", xmppclient.IsMessageWithBody("prosody in the room"))
	if m.Get("from") != room+"/paul" || m.Get("type") != "groupchat" {
		t.Errorf("groupchat from Prosody's room: %s", m)
	}

	mech := "dialback"
	if external {
		mech = "EXTERNAL"
	}
	// Both directions: our outgoing stream (its log line has mechanism, tls, verified) and Prosody's incoming one.
	wants := []string{`"mechanism":"` + mech + `","tls":true,"verified":` + strconv.FormatBool(external),
		`"mechanism":"` + mech + `","tls":true,"time"`}
	if external {
		// XEP-0198 both ways with Prosody's mod_smacks (smacks_enabled_s2s, on by default in 0.12): it offers SM
		// after SASL EXTERNAL and enables it on its own outgoing stream when we offer it. Dialback streams go
		// without (XEP-0198 §2: no feature list after authentication).
		wants = append(wants, `"verified":true,"sm":true`, "s2s stream management enabled")
	}
	for _, want := range wants {
		if !a.LogContains(want) {
			t.Errorf("xmppd's log lacks %s", want)
		}
	}
}
