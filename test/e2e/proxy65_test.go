package e2e

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/xmppd/xmppd/test/harness"
	"github.com/xmppd/xmppd/test/xmppclient"
)

// XEP-0065 through the server's SOCKS5 proxy: two mellium clients do the bytestreams negotiation through the
// server, and each side speaks SOCKS5 (RFC 1928) to the proxy with a hand-written client, so nothing here shares
// code with the server's protocol/socks5.

const nsBytestreams = "http://jabber.org/protocol/bytestreams"

// streamAddr is XEP-0065 §5.3.2's DST.ADDR, computed here independently: hex SHA-1 of SID + initiator + target.
func streamAddr(sid, initiator, target string) string {
	h := sha1.Sum([]byte(sid + initiator + target))
	return hex.EncodeToString(h[:])
}

// socksConnect does the SOCKS5 handshake (no authentication, CONNECT to the domain name addr, port 0) and
// returns the connection and the reply code.
func socksConnect(t testing.TB, hostport, addr string) (net.Conn, byte) {
	t.Helper()
	c, err := net.Dial("tcp", hostport)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	defer func() { _ = c.SetDeadline(time.Time{}) }()
	if _, err := c.Write([]byte{5, 1, 0}); err != nil {
		t.Fatal(err)
	}
	m := make([]byte, 2)
	if _, err := io.ReadFull(c, m); err != nil || m[0] != 5 || m[1] != 0 {
		t.Fatalf("method selection: %v %v", m, err)
	}
	req := append([]byte{5, 1, 0, 3, byte(len(addr))}, addr...)
	if _, err := c.Write(append(req, 0, 0)); err != nil {
		t.Fatal(err)
	}
	h := make([]byte, 5)
	if _, err := io.ReadFull(c, h); err != nil {
		t.Fatalf("reply: %v", err)
	}
	rest := make([]byte, int(h[4])+2)
	if _, err := io.ReadFull(c, rest); err != nil {
		t.Fatalf("reply address: %v", err)
	}
	if h[1] == 0 && (h[3] != 3 || string(rest[:h[4]]) != addr) {
		t.Fatalf("reply does not echo the address: %v %q", h, rest)
	}
	return c, h[1]
}

// proxyOf asks the proxy for its streamhost (XEP-0065 §5.2 "Discovering network address").
func proxyOf(t testing.TB, c *xmppclient.Client, domain string) (jid, hostport string) {
	t.Helper()
	r := c.IQ("<iq type='get' to='proxy." + domain + "' id='sh'><query xmlns='" + nsBytestreams + "'/></iq>")
	sh := r.Child(nsBytestreams, "query").Child(nsBytestreams, "streamhost")
	if r.Get("type") != "result" || sh == nil || sh.Get("jid") != "proxy."+domain || sh.Get("host") == "" || sh.Get("port") == "" {
		t.Fatalf("streamhost: %s", r)
	}
	return sh.Get("jid"), net.JoinHostPort(sh.Get("host"), sh.Get("port"))
}

// bytestream negotiates a mediated bytestream (XEP-0065 §6) between initiator a and target b and returns their
// activated connections; check runs after the target connected, before the initiator does.
func bytestream(t testing.TB, a, b *xmppclient.Client, domain, sid string, check func(hostport, addr string)) (ca, cb net.Conn) {
	t.Helper()
	proxyJID, hostport := proxyOf(t, a, domain)
	targetConn := make(chan net.Conn, 1)
	b.SetAnswerIQ(func(e *xmppclient.Elem) string {
		q := e.Child(nsBytestreams, "query")
		if q == nil || q.Child(nsBytestreams, "streamhost") == nil {
			return ""
		}
		sh := q.Child(nsBytestreams, "streamhost")
		c, code := socksConnect(t, net.JoinHostPort(sh.Get("host"), sh.Get("port")), streamAddr(q.Get("sid"), e.Get("from"), b.JID.String()))
		if code != 0 {
			t.Errorf("target's CONNECT: reply %d", code)
		}
		targetConn <- c
		return "<iq type='result' id='" + e.Get("id") + "' to='" + e.Get("from") + "'><query xmlns='" + nsBytestreams + "'><streamhost-used jid='" + sh.Get("jid") + "'/></query></iq>"
	})
	host, port, _ := net.SplitHostPort(hostport)
	r := a.IQ("<iq type='set' to='" + b.JID.String() + "' id='offer'><query xmlns='" + nsBytestreams + "' sid='" + sid + "'><streamhost jid='" + proxyJID + "' host='" + host + "' port='" + port + "'/></query></iq>")
	if used := r.Child(nsBytestreams, "query"); r.Get("type") != "result" || used == nil || used.Child(nsBytestreams, "streamhost-used").Get("jid") != proxyJID {
		t.Fatalf("target's answer: %s", r)
	}
	cb = <-targetConn
	addr := streamAddr(sid, a.JID.String(), b.JID.String())
	if check != nil {
		check(hostport, addr)
	}
	ca, code := socksConnect(t, hostport, addr)
	if code != 0 {
		t.Fatalf("initiator's CONNECT: reply %d", code)
	}
	act := a.IQ("<iq type='set' to='" + proxyJID + "' id='act'><query xmlns='" + nsBytestreams + "' sid='" + sid + "'><activate>" + b.JID.String() + "</activate></query></iq>")
	if act.Get("type") != "result" {
		t.Fatalf("activation: %s", act)
	}
	t.Cleanup(func() { ca.Close(); cb.Close() })
	return ca, cb
}

// Two clients move 10 MiB (and an answer back) through the proxy; activation errors follow XEP-0065 §6.3; a
// third party for the same stream is refused; /metrics counts the transfer.
func TestProxy65Transfer(t *testing.T) {
	srv := shared(t)
	la, pa := srv.user(t, "s5a")
	lb, pb := srv.user(t, "s5b")
	a := xmppclient.Online(t, srv.Server, la, pa, "send")
	b := xmppclient.Online(t, srv.Server, lb, pb, "recv")
	info := a.IQ("<iq type='get' to='proxy." + srv.Domain + "' id='pi'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
	if id := info.Child("", "query").Child("", "identity"); id == nil || id.Get("category") != "proxy" || id.Get("type") != "bytestreams" {
		t.Fatalf("proxy identity: %s", info)
	}
	ca, cb := bytestream(t, a, b, srv.Domain, "sid-10mib", func(hostport, addr string) {
		// Only the target is connected: not-allowed. A stream nobody connected to: item-not-found.
		r := a.IQ("<iq type='set' to='proxy." + srv.Domain + "' id='early'><query xmlns='" + nsBytestreams + "' sid='sid-10mib'><activate>" + b.JID.String() + "</activate></query></iq>")
		wantStanzaError(t, "activation with one party", r, "cancel", "not-allowed")
		r = a.IQ("<iq type='set' to='proxy." + srv.Domain + "' id='other'><query xmlns='" + nsBytestreams + "' sid='no-such-sid'><activate>" + b.JID.String() + "</activate></query></iq>")
		wantStanzaError(t, "activation of an unknown stream", r, "cancel", "item-not-found")
	})
	// A third connection for the stream is refused (XEP-0065 §8.1: one target per bytestream).
	if c, code := socksConnect(t, mustProxyAddr(t, a, srv.Domain), streamAddr("sid-10mib", a.JID.String(), b.JID.String())); code == 0 {
		c.Close()
		t.Fatal("a third party joined an active stream")
	} else {
		c.Close()
	}

	const size = 10 << 20
	relayBoth(t, ca, cb, size)
	m := scrape(t, srv.DebugAddr)
	if v := metricValue(m, "xmppd_proxy65_bytes_total"); v < size+6 {
		t.Errorf("xmppd_proxy65_bytes_total = %v, want at least %d", v, size+6)
	}
	if v := metricValue(m, "xmppd_proxy65_transfers_total"); v < 1 {
		t.Errorf("xmppd_proxy65_transfers_total = %v", v)
	}
}

func mustProxyAddr(t testing.TB, c *xmppclient.Client, domain string) string {
	_, hp := proxyOf(t, c, domain)
	return hp
}

// metricValue is the value of an unlabelled series in a /metrics text (-1 if absent).
func metricValue(metrics, name string) float64 {
	for _, line := range strings.Split(metrics, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			var f float64
			if _, err := fmt.Sscan(v, &f); err == nil {
				return f
			}
		}
	}
	return -1
}

// [proxy65] max_bytes cuts a transfer that goes beyond it, and counts the limit.
func TestProxy65ByteCap(t *testing.T) {
	srv := own(t, harness.Options{Sections: map[string]string{"proxy65": "listen = \"127.0.0.1:0\"\nmax_bytes = 100000"}})
	la, pa := srv.user(t, "capa")
	lb, pb := srv.user(t, "capb")
	a := xmppclient.Online(t, srv.Server, la, pa, "send")
	b := xmppclient.Online(t, srv.Server, lb, pb, "recv")
	ca, cb := bytestream(t, a, b, srv.Domain, "capped", nil)
	go func() {
		_ = ca.SetDeadline(time.Now().Add(30 * time.Second))
		_, _ = io.Copy(ca, bytes.NewReader(make([]byte, 1<<20))) // fails once the proxy cuts it
	}()
	_ = cb.SetDeadline(time.Now().Add(30 * time.Second))
	n, _ := io.Copy(io.Discard, cb)
	if n > 100000 {
		t.Fatalf("the target got %d bytes through a 100000-byte cap", n)
	}
	if !strings.Contains(scrape(t, srv.DebugAddr), `xmppd_limit_hits_total{limit="proxy65_max_bytes"} 1`) {
		t.Error("the cap is not counted")
	}
}

// relayBoth sends size random bytes from ca to cb through an activated bytestream and checks that they arrive,
// then that an answer comes back the other way (a SOCKS5 relay is a full-duplex pipe, XEP-0065 §6.3).
func relayBoth(t *testing.T, ca, cb net.Conn, size int) {
	t.Helper()
	payload := randomBytes(t, size)
	want := sha256.Sum256(payload)
	got := make(chan [32]byte, 1)
	go func() {
		h := sha256.New()
		if n, err := io.Copy(h, cb); err != nil || n != int64(size) {
			t.Errorf("target read %d bytes: %v", n, err)
		}
		var s [32]byte
		copy(s[:], h.Sum(nil))
		_, _ = cb.Write([]byte("thanks"))
		_ = cb.(*net.TCPConn).CloseWrite()
		got <- s
	}()
	_ = ca.SetDeadline(time.Now().Add(60 * time.Second))
	if _, err := io.Copy(ca, bytes.NewReader(payload)); err != nil {
		t.Fatal(err)
	}
	_ = ca.(*net.TCPConn).CloseWrite()
	if s := <-got; s != want {
		t.Fatal("the target received other bytes than were sent")
	}
	if back, err := io.ReadAll(ca); err != nil || string(back) != "thanks" {
		t.Fatalf("the answer back: %q, %v", back, err)
	}
}
