package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xmppd/xmppd/test/harness"
	"github.com/xmppd/xmppd/test/xmppclient"
)

// Federation between two xmppd processes on loopback: a.test and b.test, each with an [s2s] listener and a
// static route to the other.

// fedCerts is a CA made by the test and a certificate for each domain it signs, so that certificate
// verification between the two servers is real (SASL EXTERNAL, secure_auth).
type fedCerts struct {
	dir    string
	caFile string
	ca     *x509.Certificate
	caKey  *ecdsa.PrivateKey
}

func newFedCA(t testing.TB) *fedCerts {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "xmppd federation test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	c := &fedCerts{dir: t.TempDir(), ca: ca, caKey: key}
	c.caFile = filepath.Join(c.dir, "ca.crt")
	writePEM(t, c.caFile, "CERTIFICATE", der)
	return c
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// pool is the CA as a pool, for clients of a server with a certificate it signed.
func (c *fedCerts) pool(t testing.TB) *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(c.ca)
	return p
}

// leaf issues a certificate for domain signed by the CA (or, when selfSigned, by a key nobody trusts) and
// returns the cert and key files.
func (c *fedCerts) leaf(t testing.TB, domain string, selfSigned bool) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: domain}, DNSNames: []string{domain, "*." + domain}, // its services (conference., pubsub.) too
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	parent, signer := c.ca, c.caKey
	if selfSigned {
		parent, signer = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	suffix := ""
	if selfSigned {
		suffix = "-self"
	}
	certFile = filepath.Join(c.dir, domain+suffix+".crt")
	keyFile = filepath.Join(c.dir, domain+suffix+".key")
	writePEM(t, certFile, "CERTIFICATE", der)
	writePEM(t, keyFile, "PRIVATE KEY", kder)
	if selfSigned {
		// What the c2s clients of that server trust is the certificate itself.
		writePEM(t, certFile+".ca", "CERTIFICATE", der)
	}
	return certFile, keyFile
}

// fedOptions describes one side of a federated pair.
type fedOptions struct {
	selfSigned bool   // a certificate the peer cannot verify (the dialback path)
	s2s        string // extra [s2s] lines
}

type fedPair struct {
	a, b         *testServer
	aS2S, bS2S   string // their s2s listen addresses
	certs        *fedCerts
	aOpts, bOpts fedOptions
}

// freeAddr is a free loopback port below the kernel's ephemeral range, so that the ports the harness picks
// for the servers (port 0, i.e. ephemeral ones) cannot take it before the server that owns it binds it.
func freeAddr(t testing.TB) string {
	t.Helper()
	for i := 0; i < 100; i++ {
		b := make([]byte, 2)
		_, _ = rand.Read(b)
		addr := fmt.Sprintf("127.0.0.1:%d", 20000+int(b[0])<<8%10000+int(b[1]))
		l, err := net.Listen("tcp", addr)
		if err == nil {
			l.Close()
			return addr
		}
	}
	t.Fatal("no free port")
	return ""
}

// waitListening waits until addr accepts connections: the harness waits for the c2s ports only, which the
// server binds before it starts the s2s listener.
func waitListening(t testing.TB, addr string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("s2s listener %s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startFed starts a.test and b.test routed to each other.
func startFed(t testing.TB, ao, bo fedOptions) *fedPair {
	t.Helper()
	p := &fedPair{certs: newFedCA(t), aS2S: freeAddr(t), bS2S: freeAddr(t), aOpts: ao, bOpts: bo}
	p.a = p.start(t, "a.test", p.aS2S, "b.test", p.bS2S, ao)
	p.b = p.start(t, "b.test", p.bS2S, "a.test", p.aS2S, bo)
	waitListening(t, p.aS2S)
	waitListening(t, p.bS2S)
	return p
}

func (p *fedPair) start(t testing.TB, domain, listen, peer, peerAddr string, o fedOptions) *testServer {
	t.Helper()
	cert, key := p.certs.leaf(t, domain, o.selfSigned)
	ca := p.certs.caFile
	if o.selfSigned {
		ca = cert + ".ca"
	}
	s2s := fmt.Sprintf("listen = %q\nca_file = %q\nconnect_timeout = \"8s\"\n%s", listen, p.certs.caFile, o.s2s)
	return own(t, harness.Options{
		Domains: []string{domain}, CertFile: cert, KeyFile: key, CAFile: ca,
		Sections: map[string]string{"s2s": s2s},
		// The peer's services (MUC, pubsub) are domains of their own, reached at the same address.
		ExtraTOML: fmt.Sprintf("[s2s.routes]\n%q = %q\n%q = %q\n%q = %q\n", peer, peerAddr, "conference."+peer, peerAddr,
			"pubsub."+peer, peerAddr),
	})
}

// s2sWait is how long a first stanza may take across servers: connection, TLS, dialback's extra round trip.
const s2sWait = 15 * time.Second

func waitFor(t *testing.T, c *xmppclient.Client, what string, pred func(*xmppclient.Elem) bool) *xmppclient.Elem {
	t.Helper()
	e, err := c.Wait(pred, s2sWait)
	if err != nil {
		t.Fatalf("%s: waiting for %s: %v\ntranscript:\n%s", c.JID, what, err, c.TranscriptTail(4096))
	}
	return e
}

func fedSubscribeChat(t *testing.T, p *fedPair) {
	t.Helper()
	a, apw := p.a.user(t, "alice")
	b, bpw := p.b.user(t, "bob")
	A, B := p.a.bare(a), p.b.bare(b)
	alice := xmppclient.Online(t, p.a.Server, a, apw, "home")
	bob := xmppclient.Online(t, p.b.Server, b, bpw, "work")
	// Interested resources (RFC 6121 §2.1.6) get roster pushes.
	alice.IQ(`<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>`)
	bob.IQ(`<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>`)

	// RFC 6121 §3.1 across servers, both ways.
	alice.Send(`<presence to='` + B + `' type='subscribe'/>`)
	waitFor(t, bob, "subscribe from alice", xmppclient.IsPresence(A, "subscribe"))
	bob.Send(`<presence to='` + A + `' type='subscribed'/>`)
	waitFor(t, alice, "roster push subscription=to", func(e *xmppclient.Elem) bool {
		return xmppclient.IsRosterPush(B)(e) && e.Child(xmppclient.NSRoster, "query").Child(xmppclient.NSRoster, "item").Get("subscription") == "to"
	})
	// §3.1.5: once subscribed, alice gets bob's current presence.
	waitFor(t, alice, "bob's presence", xmppclient.IsPresence(bob.JID.String(), ""))
	bob.Send(`<presence to='` + A + `' type='subscribe'/>`)
	waitFor(t, alice, "subscribe from bob", xmppclient.IsPresence(B, "subscribe"))
	alice.Send(`<presence to='` + B + `' type='subscribed'/>`)
	waitFor(t, bob, "alice's presence", xmppclient.IsPresence(alice.JID.String(), ""))
	expectPush(alice, B, "both")
	expectPush(bob, A, "both")

	// Chat both ways.
	alice.Send(`<message to='` + B + `' type='chat' id='m1'><body>hello from a.test</body></message>`)
	m := waitFor(t, bob, "alice's message", xmppclient.IsMessageWithBody("hello from a.test"))
	if !xmppclient.JIDMatch(m.Get("from"), alice.JID.String()) {
		t.Errorf("message from %q, want %s", m.Get("from"), alice.JID)
	}
	bob.Send(`<message to='` + alice.JID.String() + `' type='chat'><body>hello from b.test</body></message>`)
	waitFor(t, alice, "bob's message", xmppclient.IsMessageWithBody("hello from b.test"))

	// Presence changes and probes (§4.3): a second resource of alice learns bob's presence by a probe over s2s.
	bob.Send(`<presence><show>away</show></presence>`)
	waitFor(t, alice, "bob away", func(e *xmppclient.Elem) bool {
		return xmppclient.IsPresence(bob.JID.String(), "")(e) && e.ChildText("show") == "away"
	})
	alice2 := xmppclient.MustLoginTo(t, p.a.Server, a, apw, xmppclient.Options{Resource: "phone"})
	alice2.Send("<presence/>")
	waitFor(t, alice2, "bob's presence after the probe", xmppclient.IsPresence(bob.JID.String(), ""))
	alice2.Close()

	// Offline storage of a remote message: bob logs off, alice writes, bob gets it at his next login.
	bob.Send(`<presence type='unavailable'/>`)
	waitFor(t, alice, "bob unavailable", xmppclient.IsPresence(bob.JID.String(), "unavailable"))
	bob.Close()
	alice.Send(`<message to='` + B + `' type='chat'><body>while you were away</body></message>`)
	// The user actor has handled what came before an IQ answer from the same path (ARCHITECTURE.md, Durability).
	if r := alice.IQ(`<iq type='get' to='` + B + `' id='sync1'><query xmlns='jabber:iq:version'/></iq>`); r == nil {
		t.Fatal("no answer from bob's account over s2s")
	}
	bob = xmppclient.MustLoginTo(t, p.b.Server, b, bpw, xmppclient.Options{Resource: "again"})
	bob.Send("<presence/>")
	waitFor(t, bob, "offline message from a.test", xmppclient.IsMessageWithBody("while you were away"))
}

// The default path: self-signed certificates the peers cannot verify, TLS, dialback (XEP-0220) both ways.
func TestS2SDialback(t *testing.T) {
	p := startFed(t, fedOptions{selfSigned: true}, fedOptions{selfSigned: true})
	fedSubscribeChat(t, p)
	for _, s := range []*testServer{p.a, p.b} {
		if !s.LogContains(`"mechanism":"dialback"`) || s.LogContains(`"mechanism":"EXTERNAL"`) {
			t.Errorf("%s: expected dialback and no EXTERNAL in the log", s.Domain)
		}
	}
	// The s2s subtree in /debug/actors (state, queue) and its counters in /metrics.
	tree := httpGet(t, "http://"+p.a.DebugAddr+"/debug/actors?kind=s2s-out,s2s-in")
	for _, want := range []string{`"kind":"s2s-out"`, `"state":"a.test:authenticated"`, `"queue":"0"`, `"kind":"s2s-in"`} {
		if !strings.Contains(tree, want) {
			t.Errorf("/debug/actors lacks %s: %s", want, tree)
		}
	}
	metrics := httpGet(t, "http://"+p.a.DebugAddr+"/metrics")
	for _, want := range []string{`xmppd_s2s_streams_total{direction="out",mechanism="dialback"} 1`,
		`xmppd_s2s_streams_total{direction="in",mechanism="dialback"} 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	// The remote server's own JID answers ping and disco#info over s2s.
	if r := c0IQ(t, p, `<iq type='get' to='b.test' id='ping1'><ping xmlns='urn:xmpp:ping'/></iq>`); r.Get("type") != "result" {
		t.Errorf("ping b.test: %s", r)
	}
	if r := c0IQ(t, p, `<iq type='get' to='b.test' id='disco1'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`); r.Get("type") != "result" || !strings.Contains(r.String(), "identity") {
		t.Errorf("disco#info b.test: %s", r)
	}
	// Push services on a remote domain can be enabled once the server federates (XEP-0357).
	a, apw := p.a.user(t, "pusher")
	c := xmppclient.MustLoginTo(t, p.a.Server, a, apw, xmppclient.Options{Resource: "r"})
	if r := c.IQ(`<iq type='set' id='push1'><enable xmlns='urn:xmpp:push:0' jid='push.b.test' node='n1'/></iq>`); r.Get("type") != "result" {
		t.Errorf("enabling a push service at b.test: %s", r)
	}
}

// c0IQ sends an IQ from a fresh user of a.test and returns the answer.
func c0IQ(t *testing.T, p *fedPair, iq string) *xmppclient.Elem {
	t.Helper()
	u, pw := p.a.user(t, "asker")
	c := xmppclient.MustLoginTo(t, p.a.Server, u, pw, xmppclient.Options{Resource: "r"})
	defer c.Close()
	return c.IQ(iq)
}

func httpGet(t *testing.T, u string) string {
	t.Helper()
	res, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Certificates from a CA both trust: SASL EXTERNAL (RFC 6120 §6, XEP-0178), with secure_auth on.
func TestS2SExternal(t *testing.T) {
	p := startFed(t, fedOptions{s2s: "secure_auth = true"}, fedOptions{s2s: "secure_auth = true"})
	fedSubscribeChat(t, p)
	for _, s := range []*testServer{p.a, p.b} {
		if !s.LogContains(`"mechanism":"EXTERNAL"`) {
			t.Errorf("%s: expected SASL EXTERNAL in the log", s.Domain)
		}
	}
}

// secure_auth on b: a.test's self-signed certificate is refused, and a's user gets the message back once, after
// connect_timeout... or sooner: a's outgoing stream fails authentication and is retried until the timeout.
func TestS2SInvalidCertificateRefused(t *testing.T) {
	p := startFed(t, fedOptions{selfSigned: true}, fedOptions{s2s: "secure_auth = true"})
	a, apw := p.a.user(t, "alice")
	b, _ := p.b.user(t, "bob")
	alice := xmppclient.Online(t, p.a.Server, a, apw, "home")
	alice.Send(`<message to='` + p.b.bare(b) + `' type='chat' id='x1'><body>refused</body></message>`)
	e := waitFor(t, alice, "bounce", func(e *xmppclient.Elem) bool { return e.Name.Local == "message" && e.Get("type") == "error" })
	if _, cond := e.StanzaError(); cond != "remote-server-timeout" {
		t.Errorf("bounce condition %q, want remote-server-timeout: %s", cond, e)
	}
	alice.Absent("a second bounce", time.Second, func(e *xmppclient.Elem) bool { return e.Get("type") == "error" })
	if !p.b.LogContains("certificate not valid (secure_auth)") {
		t.Error("b.test did not log the refusal")
	}
}

// A peer that is not running: the message bounces with remote-server-timeout exactly once after
// connect_timeout; a restarted peer gets what was queued meanwhile, in order.
func TestS2SDeadPeerAndRestart(t *testing.T) {
	p := startFed(t, fedOptions{selfSigned: true}, fedOptions{selfSigned: true})
	a, apw := p.a.user(t, "alice")
	b, bpw := p.b.user(t, "bob")
	B := p.b.bare(b)
	alice := xmppclient.Online(t, p.a.Server, a, apw, "home")
	p.b.Stop()
	start := time.Now()
	alice.Send(`<message to='` + B + `' type='chat' id='dead1'><body>nobody there</body></message>`)
	e := waitFor(t, alice, "bounce", func(e *xmppclient.Elem) bool { return e.Get("id") == "dead1" && e.Get("type") == "error" })
	if _, cond := e.StanzaError(); cond != "remote-server-timeout" {
		t.Errorf("bounce condition %q, want remote-server-timeout", cond)
	}
	if d := time.Since(start); d < 7*time.Second {
		t.Errorf("bounced after %v, before connect_timeout (8s)", d)
	}
	alice.Absent("a second bounce", 1500*time.Millisecond, func(e *xmppclient.Elem) bool { return e.Get("id") == "dead1" })

	// Queued while b is down, delivered in order after it is back (reconnect with backoff).
	for i := 1; i <= 3; i++ {
		alice.Send(fmt.Sprintf(`<message to='%s' type='chat'><body>queued %d</body></message>`, B, i))
	}
	time.Sleep(time.Second) // at least one failed attempt while b is down
	p.b.Restart(t)
	waitListening(t, p.bS2S)
	bob := xmppclient.MustLoginTo(t, p.b.Server, b, bpw, xmppclient.Options{Resource: "r"})
	bob.Send("<presence/>")
	for i := 1; i <= 3; i++ {
		m := waitFor(t, bob, fmt.Sprintf("queued %d", i), func(e *xmppclient.Elem) bool { return e.Name.Local == "message" && e.ChildText("body") != "" })
		if got := m.ChildText("body"); got != fmt.Sprintf("queued %d", i) {
			t.Errorf("message %d: got %q (order)", i, got)
		}
	}
}

var _ = tls.VersionTLS12
