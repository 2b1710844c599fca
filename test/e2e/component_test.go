package e2e

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/xmppd/xmppd/test/harness"
	"github.com/xmppd/xmppd/test/xmppclient"
)

var streamIDRe = regexp.MustCompile(`id='([^']+)'`)

func componentDial(t *testing.T, addr, domain, secret string) (*rawS2S, string) {
	t.Helper()
	r := dialS2S(t, addr)
	r.write(`<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' to='` + domain + `'>`)
	h := r.until(">")
	for !strings.Contains(h, "<stream:stream") {
		h += r.until(">")
	}
	m := streamIDRe.FindStringSubmatch(h)
	if m == nil {
		return r, h
	}
	sum := sha1.Sum([]byte(m[1] + secret))
	r.write("<handshake>" + hex.EncodeToString(sum[:]) + "</handshake>")
	return r, h
}

// XEP-0114: a small component written here (raw socket) connects to component_listen, receives a message a user
// sends to its domain and answers; a wrong secret, an unknown domain, a second connection and a forged 'from'
// are refused, and with the component gone its domain bounces.
func TestComponent(t *testing.T) {
	listen := freeAddr(t)
	srv := own(t, harness.Options{TopTOML: fmt.Sprintf("component_listen = %q\n", listen),
		ExtraTOML: "[[components]]\ndomain = \"echo.localhost\"\nsecret = \"s3cret-for-the-test\"\n"})
	waitListening(t, listen)
	u, pw := srv.user(t, "alice")
	alice := xmppclient.Online(t, srv.Server, u, pw, "r")

	// The server's disco#items lists the component's domain (XEP-0114 components are services of the server).
	items := alice.IQ(`<iq type='get' id='items' to='localhost'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>`)
	if !strings.Contains(items.String(), "jid='echo.localhost'") && !strings.Contains(items.String(), `jid="echo.localhost"`) {
		t.Errorf("disco#items lacks the component: %s", items)
	}

	// Wrong secret: not-authorized.
	bad, _ := componentDial(t, listen, "echo.localhost", "wrong")
	if got := bad.until("</stream:error>"); !strings.Contains(got, "not-authorized") {
		t.Errorf("wrong secret: %s", got)
	}
	// Unknown component domain: host-unknown.
	unk, _ := componentDial(t, listen, "nope.localhost", "x")
	if got := unk.until("</stream:error>"); !strings.Contains(got, "host-unknown") {
		t.Errorf("unknown domain: %s", got)
	}

	comp, _ := componentDial(t, listen, "echo.localhost", "s3cret-for-the-test")
	comp.until("<handshake/>")
	// A second connection for the same domain is a conflict.
	second, _ := componentDial(t, listen, "echo.localhost", "s3cret-for-the-test")
	if got := second.until("</stream:error>"); !strings.Contains(got, "conflict") {
		t.Errorf("second connection: %s", got)
	}

	alice.Send(`<message to='bot@echo.localhost' type='chat' id='c1'><body>ping component</body></message>`)
	got := comp.until("</message>")
	if !strings.Contains(got, "ping component") || !strings.Contains(got, "from='"+alice.JID.String()+"'") {
		t.Fatalf("component got %s", got)
	}
	comp.write(`<message from='bot@echo.localhost/x' to='` + alice.JID.String() + `' type='chat'><body>pong from component</body></message>`)
	waitFor(t, alice, "the component's answer", xmppclient.IsMessageWithBody("pong from component"))

	// A 'from' outside the component's domain ends its stream.
	comp.write(`<message from='admin@localhost' to='` + alice.JID.String() + `'><body>forged</body></message>`)
	if got := comp.until("</stream:error>"); !strings.Contains(got, "invalid-from") {
		t.Errorf("forged from: %s", got)
	}
	alice.Absent("the forged message", 500e6, xmppclient.IsMessageWithBody("forged"))
	// With the component gone, a message to its domain bounces.
	alice.Send(`<message to='bot@echo.localhost' type='chat' id='c2'><body>anyone?</body></message>`)
	e := waitFor(t, alice, "bounce", func(e *xmppclient.Elem) bool { return e.Get("id") == "c2" && e.Get("type") == "error" })
	if _, cond := e.StanzaError(); cond != "service-unavailable" {
		t.Errorf("bounce %q, want service-unavailable", cond)
	}
}
