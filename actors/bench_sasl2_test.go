package actors_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"net"
	"regexp"
	"strings"
	"testing"

	"mellium.im/sasl"
)

// Benchmarks of the one-round-trip reconnection of XEP-0388/0386/0484/0198: a FAST login that binds a resource,
// and a FAST login that resumes a hibernating XEP-0198 session. Like the other benchmarks here, client and
// server run in one process and cpu-µs/op is the CPU of both (an upper bound of the server's); each op includes
// TCP, STARTTLS with a full TLS 1.3 handshake (ECDSA P-256) and, for FAST, the token's counter update in SQLite.

// startTLS opens a stream to the server and runs STARTTLS and the second stream header, up to its features.
func startTLS(addr, user string) (*rawClient, string, error) {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, "", err
	}
	c := &rawClient{conn: nc}
	if err := c.open(user); err != nil {
		return nil, "", err
	}
	if _, _, err := c.until("features"); err != nil {
		return nil, "", err
	}
	if err := c.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"); err != nil {
		return nil, "", err
	}
	if _, _, err := c.until("proceed"); err != nil {
		return nil, "", err
	}
	tc := tls.Client(nc, &tls.Config{ServerName: "localhost", InsecureSkipVerify: true})
	if err := tc.Handshake(); err != nil {
		return nil, "", err
	}
	c.conn = tc
	if err := c.open(user); err != nil {
		return nil, "", err
	}
	_, f, err := c.until("features")
	return c, f, err
}

const benchUA = "5f1b7a0e-2c1d-4e8f-9a3b-6c7d8e9f0a1b"

var (
	tokenRe = regexp.MustCompile(`token='([^']+)'`)
	smIDRe  = regexp.MustCompile(`<enabled [^>]*id='([^']+)'`)
)

// BenchmarkStartTLSOnly is the transport part of the two above alone: TCP, STARTTLS with a full TLS 1.3
// handshake, two stream headers; subtract it to see what SASL2, Bind 2, FAST and the resumption cost.
func BenchmarkStartTLSOnly(b *testing.B) {
	srv := startServer(b)
	addr := srv.C2SAddrs()[0]
	b.ResetTimer()
	start := cpuTime()
	for i := 0; i < b.N; i++ {
		c, _, err := startTLS(addr, "alice")
		if err != nil {
			b.Fatal(err)
		}
		c.send("</stream:stream>")
		c.conn.Close()
	}
	b.ReportMetric(float64((cpuTime()-start).Microseconds())/float64(b.N), "cpu-µs/conn")
}

// sasl2Token logs user in with SASL2 SCRAM-SHA-256, Bind 2 with SM enabled, and a FAST token request; it returns
// the connection, the token and the SM resumption id.
func sasl2Token(tb testing.TB, addr, user string) (*rawClient, string, string) {
	tb.Helper()
	c, _, err := startTLS(addr, user)
	if err != nil {
		tb.Fatal(err)
	}
	neg := sasl.NewClient(sasl.ScramSha256, sasl.Credentials(func() ([]byte, []byte, []byte) {
		return []byte(user), []byte("benchpass"), nil
	}))
	_, first, _ := neg.Step(nil)
	c.send("<authenticate xmlns='urn:xmpp:sasl:2' mechanism='SCRAM-SHA-256'><initial-response>" +
		base64.StdEncoding.EncodeToString(first) + "</initial-response><user-agent id='" + benchUA + "'/>" +
		"<bind xmlns='urn:xmpp:bind:0'><tag>bench</tag><enable xmlns='urn:xmpp:sm:3' resume='true'/></bind>" +
		"<request-token xmlns='urn:xmpp:fast:0' mechanism='HT-SHA-256-NONE'/></authenticate>")
	_, ch, err := c.until("challenge")
	if err != nil {
		tb.Fatal(err)
	}
	chal, _ := base64.StdEncoding.DecodeString(strings.TrimSpace(ch))
	_, final, err := neg.Step(chal)
	if err != nil {
		tb.Fatal(err)
	}
	c.send("<response xmlns='urn:xmpp:sasl:2'>" + base64.StdEncoding.EncodeToString(final) + "</response>")
	_, succ, err := c.until("success")
	if err != nil {
		tb.Fatal(err)
	}
	tok, id := tokenRe.FindStringSubmatch(succ), smIDRe.FindStringSubmatch(succ)
	if tok == nil || id == nil {
		tb.Fatalf("no token or SM id in %s", succ)
	}
	return c, tok[1], id[1]
}

// fastAuthenticate is a FAST <authenticate/> with HT-SHA-256-NONE and inline.
func fastAuthenticate(user, token string, count int, inline string) string {
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte("Initiator"))
	return "<authenticate xmlns='urn:xmpp:sasl:2' mechanism='HT-SHA-256-NONE'><initial-response>" +
		base64.StdEncoding.EncodeToString(append([]byte(user+"\x00"), m.Sum(nil)...)) + "</initial-response>" +
		"<user-agent id='" + benchUA + "'/><fast xmlns='urn:xmpp:fast:0' count='" + fmt.Sprint(count) + "'/>" + inline + "</authenticate>"
}

// BenchmarkFastLogin: TCP + STARTTLS + a FAST (HT-SHA-256-NONE) authentication with Bind 2 in one round trip,
// then the stream ends. One op is one login.
func BenchmarkFastLogin(b *testing.B) {
	srv := startServer(b)
	addr := srv.C2SAddrs()[0]
	c0, token, _ := sasl2Token(b, addr, "alice")
	c0.send("</stream:stream>")
	c0.conn.Close()
	b.ResetTimer()
	start := cpuTime()
	for i := 0; i < b.N; i++ {
		c, _, err := startTLS(addr, "alice")
		if err != nil {
			b.Fatal(err)
		}
		c.send(fastAuthenticate("alice", token, i+1, "<bind xmlns='urn:xmpp:bind:0'><tag>bench</tag></bind>"))
		if _, succ, err := c.until("success"); err != nil || !strings.Contains(succ, "<bound") {
			b.Fatalf("FAST login %d: %v %s", i, err, succ)
		}
		c.send("</stream:stream>")
		c.conn.Close()
	}
	b.ReportMetric(float64((cpuTime()-start).Microseconds())/float64(b.N), "cpu-µs/login")
}

// BenchmarkFastResume: a phone's connection drops and it comes back with a FAST authentication carrying the
// XEP-0198 <resume/>: <success/> with <resumed/> in one round trip, then one stanza that waited in the hibernating
// session. One op is one drop and resumption.
func BenchmarkFastResume(b *testing.B) {
	srv := startServer(b)
	addr := srv.C2SAddrs()[0]
	c, token, id := sasl2Token(b, addr, "alice")
	bob, err := login(addr, "bob", "b")
	if err != nil {
		b.Fatal(err)
	}
	defer bob.conn.Close()
	msg := "<message to='%s' type='chat'><body>while you were away</body></message>"
	full := ""
	acked := 0 // messages received: the h alice reports
	b.ResetTimer()
	start := cpuTime()
	for i := 0; i < b.N; i++ {
		c.conn.Close() // the connection drops; the session hibernates
		nc, _, err := startTLS(addr, "alice")
		if err != nil {
			b.Fatal(err)
		}
		if full != "" {
			bob.send(fmt.Sprintf(msg, full)) // waits in the hibernating session
		}
		nc.send(fastAuthenticate("alice", token, i+1, "<resume xmlns='urn:xmpp:sm:3' previd='"+id+"' h='"+fmt.Sprint(acked)+"'/>"))
		_, succ, err := nc.until("success")
		if err != nil || !strings.Contains(succ, "<resumed") {
			b.Fatalf("resume %d: %v %s", i, err, succ)
		}
		if full == "" {
			full = authzRe.FindStringSubmatch(succ)[1]
		} else {
			if _, _, err := nc.until("message"); err != nil {
				b.Fatal(err)
			}
			acked++
			nc.send("<a xmlns='urn:xmpp:sm:3' h='" + fmt.Sprint(acked) + "'/>")
		}
		c = nc
	}
	b.ReportMetric(float64((cpuTime()-start).Microseconds())/float64(b.N), "cpu-µs/resume")
}

var authzRe = regexp.MustCompile(`<authorization-identifier>([^<]+)</authorization-identifier>`)
