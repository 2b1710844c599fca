package e2e

import (
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xmppd/xmppd/test/xmppclient"
)

// XEP-0198 on server-to-server streams: a.test's stream to b.test runs through a TCP proxy the test cuts in the
// middle of a burst of messages. Every message must arrive exactly once and in order: the unacknowledged ones go
// back to the head of a.test's queue and the next stream resumes the session (§5), learning from b.test which
// of them it had handled.

// cutProxy forwards every connection it accepts to target, and cuts them on demand.
type cutProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	pairs  [][2]net.Conn // client side, server side
	// held: server sides left open by cut(false), referenced until the cleanup closes them (an unreferenced
	// socket is closed by its finalizer, which b.test would see as the end of the stream).
	held []net.Conn
	wg   sync.WaitGroup
	// blocked: new connections are closed at once (a partition, with cut for the open ones).
	blocked atomic.Bool
}

func startCutProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", freeAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		ln.Close()
		p.cut(true)
		p.mu.Lock()
		for _, c := range p.held {
			c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *cutProxy) addr() string { return p.ln.Addr().String() }

func (p *cutProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if p.blocked.Load() {
			c.Close()
			continue
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.pairs = append(p.pairs, [2]net.Conn{c, s})
		p.mu.Unlock()
		p.wg.Add(2)
		go func() { defer p.wg.Done(); _, _ = io.Copy(s, c) }()
		go func() { defer p.wg.Done(); _, _ = io.Copy(c, s) }()
	}
}

// cut closes the client side of every connection (what a.test sees break); both closes the server side too, so
// that b.test sees it as well. Without it b.test's end stays open, as after a path failure: the stream there
// has not noticed when a.test's next one resumes the session.
func (p *cutProxy) cut(both bool) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.pairs)
	for _, c := range p.pairs {
		if tc, ok := c[0].(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // a reset: nothing still buffered towards a.test is delivered
		}
		c[0].Close()
		if both {
			c[1].Close()
		} else {
			p.held = append(p.held, c[1])
		}
	}
	p.pairs = nil
	return n
}

func TestS2SStreamManagementCut(t *testing.T) {
	p := &fedPair{certs: newFedCA(t), aS2S: freeAddr(t), bS2S: freeAddr(t)}
	proxy := startCutProxy(t, p.bS2S)
	// a.test reaches b.test through the proxy; b.test reaches a.test directly. Both certificates verify, so the
	// streams authenticate by SASL EXTERNAL, after which XEP-0198 is offered (§2).
	p.a = p.start(t, "a.test", p.aS2S, "b.test", proxy.addr(), fedOptions{})
	p.b = p.start(t, "b.test", p.bS2S, "a.test", p.aS2S, fedOptions{})
	waitListening(t, p.aS2S)
	waitListening(t, p.bS2S)

	a, apw := p.a.user(t, "alice")
	b, bpw := p.b.user(t, "bob")
	B := p.b.bare(b)
	alice := xmppclient.Online(t, p.a.Server, a, apw, "home")
	bob := xmppclient.Online(t, p.b.Server, b, bpw, "work")

	const perPhase = 300
	next, got := 0, 0
	isNumbered := func(e *xmppclient.Elem) bool {
		return e.Name.Local == "message" && strings.HasPrefix(e.ChildText("body"), "n ")
	}
	receive := func(upTo int) {
		t.Helper()
		for got < upTo {
			m := waitFor(t, bob, fmt.Sprintf("message %d", got), isNumbered)
			if body, want := m.ChildText("body"), fmt.Sprintf("n %d", got); body != want {
				t.Fatalf("got %q, want %q: a message lost, duplicated or out of order", body, want)
			}
			got++
		}
	}
	burst := func() {
		for i := 0; i < perPhase; i++ {
			alice.Send(fmt.Sprintf(`<message to='%s' type='chat'><body>n %d</body></message>`, B, next))
			next++
		}
	}

	// The stream exists and carries SM before the first cut.
	burst()
	receive(next)
	if !p.a.LogContains(`"sm":true`) {
		t.Fatalf("a.test's stream to b.test did not enable stream management")
	}
	for phase, both := range []bool{true, false} {
		burst()
		receive(next - perPhase + perPhase/4) // mid-flow: most of the burst is still on its way
		if n := proxy.cut(both); n == 0 {
			t.Fatalf("phase %d: no connection to cut", phase)
		}
		burst() // written while a.test notices the break and reconnects
		receive(next)
	}
	bob.Absent("a duplicate", 2*time.Second, isNumbered)
	if !p.a.LogContains(`"resumed":true`) {
		t.Error("a.test never resumed its stream to b.test")
	}
	if !p.b.LogContains("s2s stream management session resumed on a new stream") {
		t.Error("b.test's stream that had not noticed the cut was not taken over")
	}
	_ = bpw
}

// externalS2S opens a raw stream to addr authenticated by SASL EXTERNAL as domain (a certificate of the test's
// CA) and returns it with the features of the restarted stream.
func externalS2S(t *testing.T, p *fedPair, addr, domain string) (*rawS2S, string) {
	t.Helper()
	certFile, keyFile := p.certs.leaf(t, domain, false)
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	r := dialS2S(t, addr)
	r.write(s2sHeader + ` to='b.test' from='` + domain + `'>`)
	r.until("</stream:features>")
	r.starttls(&tls.Config{ServerName: "b.test", InsecureSkipVerify: true, Certificates: []tls.Certificate{cert}})
	r.write(s2sHeader + ` to='b.test' from='` + domain + `'>`)
	r.until("</stream:features>")
	r.write(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>` + base64.StdEncoding.EncodeToString([]byte(domain)) + `</auth>`)
	r.until("<success")
	r.write(s2sHeader + ` to='b.test' from='` + domain + `'>`)
	return r, r.until("</stream:features>")
}

// The receiving side of XEP-0198 on s2s, from a raw socket: the feature after authentication only (§2), <r/>
// answered with the stanzas handled (§4), <enable/> once (§3), and resumption (§5) only of a session of the same
// domain pair and only with the h the broken stream ended with.
func TestS2SStreamManagementIncoming(t *testing.T) {
	p := startFed(t, fedOptions{}, fedOptions{})
	r := dialS2S(t, p.bS2S)
	r.write(s2sHeader + ` to='b.test' from='c.test'>`)
	if f := r.until("</stream:features>"); strings.Contains(f, "urn:xmpp:sm:3") {
		t.Errorf("SM offered before authentication: %s", f)
	}
	r.c.Close()

	r, f := externalS2S(t, p, p.bS2S, "c.test")
	if !strings.Contains(f, "<sm xmlns='urn:xmpp:sm:3'/>") {
		t.Fatalf("no SM feature after SASL EXTERNAL: %s", f)
	}
	r.write(`<resume xmlns='urn:xmpp:sm:3' previd='no-such-session' h='0'/>`)
	if got := r.until("</failed>"); !strings.Contains(got, "item-not-found") {
		t.Errorf("resuming an unknown session: %s", got)
	}
	r.write(`<enable xmlns='urn:xmpp:sm:3' resume='true'/>`)
	enabled := r.until("/>")
	i := strings.Index(enabled, "id='")
	if !strings.Contains(enabled, "<enabled xmlns='urn:xmpp:sm:3'") || !strings.Contains(enabled, "resume='true'") || i < 0 {
		t.Fatalf("enable: %s", enabled)
	}
	id := enabled[i+4 : i+4+strings.IndexByte(enabled[i+4:], '\'')]
	r.write(`<enable xmlns='urn:xmpp:sm:3'/>`)
	if got := r.until("</failed>"); !strings.Contains(got, "unexpected-request") {
		t.Errorf("a second enable: %s", got)
	}
	for i := 0; i < 3; i++ {
		r.write(fmt.Sprintf(`<message from='eve@c.test' to='nobody@b.test' id='sm%d'><body>x</body></message>`, i))
	}
	r.write(`<r xmlns='urn:xmpp:sm:3'/>`)
	if got := r.until("/>"); !strings.Contains(got, "<a xmlns='urn:xmpp:sm:3' h='3'/>") {
		t.Errorf("ack after 3 stanzas: %s", got)
	}
	r.c.Close() // broken, not closed: the session waits for resumption

	// Another domain cannot take it over.
	d, _ := externalS2S(t, p, p.bS2S, "d.test")
	d.write(`<resume xmlns='urn:xmpp:sm:3' previd='` + id + `' h='0'/>`)
	if got := d.until("</failed>"); !strings.Contains(got, "item-not-found") {
		t.Errorf("d.test resuming c.test's session: %s", got)
	}
	d.c.Close()
	// c.test can, and learns that 3 stanzas were handled; then counting goes on from there.
	c, _ := externalS2S(t, p, p.bS2S, "c.test")
	c.write(`<resume xmlns='urn:xmpp:sm:3' previd='` + id + `' h='0'/>`)
	if got := c.until("/>"); !strings.Contains(got, "<resumed xmlns='urn:xmpp:sm:3' previd='"+id+"' h='3'/>") {
		t.Errorf("resume: %s", got)
	}
	c.write(`<message from='eve@c.test' to='nobody@b.test' id='sm3'><body>x</body></message><r xmlns='urn:xmpp:sm:3'/>`)
	if got := c.until("h='4'/>"); !strings.Contains(got, "<a xmlns='urn:xmpp:sm:3' h='4'/>") {
		t.Errorf("ack after the resumption: %s", got)
	}
}
