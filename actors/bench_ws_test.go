package actors_test

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"mellium.im/sasl"

	"github.com/xmppd/xmppd/config"
)

// The server's CPU per message over RFC 7395 WebSocket against TCP, with clients that cost the same on both: raw
// bytes over TLS (the WebSocket client writes one precomputed masked frame per stanza and counts closing tags in
// what it reads, as the TCP one does), one message in flight at a time so that every stanza is its own TLS record
// and its own frame, as at the low per-client rates of real clients (scripts/bench-web.sh uses 20/s). The
// cpu-µs/msg is the process's (server and both clients); the difference between the two sub-benchmarks is the
// server's transport. The archive is off (its SQLite writes are the same on both). The server negotiates no compression (permessage-deflate is off in its Upgrader), as on the wire here.

// wsFrame is a masked client text frame (RFC 6455 §5.2, §5.3) holding payload.
func wsFrame(payload string) []byte {
	b := []byte{0x81}
	switch n := len(payload); {
	case n < 126:
		b = append(b, 0x80|byte(n))
	case n < 1<<16:
		b = append(b, 0x80|126, byte(n>>8), byte(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	key := [4]byte{0x12, 0x34, 0x56, 0x78}
	b = append(b, key[:]...)
	for i := 0; i < len(payload); i++ {
		b = append(b, payload[i]^key[i%4])
	}
	return b
}

// wsRawClient speaks RFC 7395 with hand-made frames over TLS (the benchmark's cheap client, not the server's code).
type wsRawClient struct {
	conn net.Conn
	r    *bufio.Reader
}

func (c *wsRawClient) send(payload string) error {
	_, err := c.conn.Write(wsFrame(payload))
	return err
}

// next reads one server message (unmasked text frames; control frames skipped).
func (c *wsRawClient) next() (string, error) {
	var msg []byte
	for {
		var h [2]byte
		if _, err := io.ReadFull(c.r, h[:]); err != nil {
			return "", err
		}
		n := uint64(h[1] & 0x7f)
		switch n {
		case 126:
			var e [2]byte
			if _, err := io.ReadFull(c.r, e[:]); err != nil {
				return "", err
			}
			n = uint64(binary.BigEndian.Uint16(e[:]))
		case 127:
			var e [8]byte
			if _, err := io.ReadFull(c.r, e[:]); err != nil {
				return "", err
			}
			n = binary.BigEndian.Uint64(e[:])
		}
		p := make([]byte, n)
		if _, err := io.ReadFull(c.r, p); err != nil {
			return "", err
		}
		if h[0]&0x0f >= 8 { // control frame
			continue
		}
		msg = append(msg, p...)
		if h[0]&0x80 != 0 {
			return string(msg), nil
		}
	}
}

func (c *wsRawClient) until(local string) (string, error) {
	for {
		m, err := c.next()
		if err != nil {
			return "", err
		}
		if strings.HasPrefix(m, "<"+local) || strings.HasPrefix(m, "<stream:"+local) {
			return m, nil
		}
	}
}

func wsLogin(addr, user, resource string) (*wsRawClient, error) {
	tc, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "localhost", InsecureSkipVerify: true})
	if err != nil {
		return nil, err
	}
	c := &wsRawClient{conn: tc, r: bufio.NewReader(tc)}
	fail := func(err error) (*wsRawClient, error) { tc.Close(); return nil, err }
	if _, err := io.WriteString(tc, "GET /xmpp-websocket HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: xmpp\r\n\r\n"); err != nil {
		return fail(err)
	}
	status, err := c.r.ReadString('\n')
	if err != nil || !strings.Contains(status, " 101 ") {
		return fail(errors.New("upgrade: " + status))
	}
	for {
		l, err := c.r.ReadString('\n')
		if err != nil {
			return fail(err)
		}
		if l == "\r\n" {
			break
		}
	}
	open := "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' version='1.0'/>"
	step := func(send, want string) (string, error) {
		if err := c.send(send); err != nil {
			return "", err
		}
		return c.until(want)
	}
	if _, err := step(open, "features"); err != nil {
		return fail(err)
	}
	neg := sasl.NewClient(sasl.ScramSha256, sasl.Credentials(func() ([]byte, []byte, []byte) {
		return []byte(user), []byte("benchpass"), nil
	}))
	_, first, err := neg.Step(nil)
	if err != nil {
		return fail(err)
	}
	ch, err := step("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-256'>"+base64.StdEncoding.EncodeToString(first)+"</auth>", "challenge")
	if err != nil {
		return fail(err)
	}
	text := ch[strings.IndexByte(ch, '>')+1 : strings.LastIndexByte(ch, '<')]
	chal, _ := base64.StdEncoding.DecodeString(text)
	_, final, err := neg.Step(chal)
	if err != nil {
		return fail(err)
	}
	if _, err := step("<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"+base64.StdEncoding.EncodeToString(final)+"</response>", "success"); err != nil {
		return fail(err)
	}
	if _, err := step(open, "features"); err != nil {
		return fail(err)
	}
	if _, err := step("<iq xmlns='jabber:client' type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>"+resource+"</resource></bind></iq>", "iq"); err != nil {
		return fail(err)
	}
	if err := c.send("<presence xmlns='jabber:client'/>"); err != nil {
		return fail(err)
	}
	return c, nil
}

// BenchmarkRoutedMessageOneByOne: alice sends bob a chat message and waits for it to arrive before the next, over
// TCP (STARTTLS) or over WebSocket (wss); cpu-µs/msg is the whole process's, both clients included.
func BenchmarkRoutedMessageOneByOne(b *testing.B) {
	const msg = "<message xmlns='jabber:client' to='bob@localhost/b' type='chat' id='m'><body>hello there, how are you today?</body></message>"
	run := func(b *testing.B, send func() error, recv io.Reader) {
		buf := make([]byte, 16<<10)
		tag := []byte("</message>")
		// Warm up (bob's user actor), then one message at a time.
		for i := -10; i < b.N; i++ {
			if i == 0 {
				b.ReportAllocs()
				b.ResetTimer()
			}
			if i == 0 {
				defer func(start time.Duration) {
					b.ReportMetric(float64((cpuTime()-start).Nanoseconds())/1000/float64(b.N), "cpu-µs/msg")
				}(cpuTime())
			}
			if err := send(); err != nil {
				b.Fatal(err)
			}
			var seen []byte
			for !bytes.Contains(seen, tag) {
				n, err := recv.Read(buf)
				if err != nil {
					b.Fatal(err)
				}
				seen = append(seen[:0], buf[:n]...)
			}
		}
	}
	// The archive's SQLite writes are the same on both transports and would be most of the figure: off.
	noMAM := func(c *config.Config) { c.MAM.Enabled = false }
	b.Run("tcp", func(b *testing.B) {
		srv := startServerTuned(b, []string{"alice", "bob"}, nil, noMAM)
		addr := srv.C2SAddrs()[0]
		alice, err := login(addr, "alice", "a")
		if err != nil {
			b.Fatal(err)
		}
		defer alice.conn.Close()
		bob, err := login(addr, "bob", "b")
		if err != nil {
			b.Fatal(err)
		}
		defer bob.conn.Close()
		run(b, func() error { return alice.send(msg) }, bob.conn)
	})
	b.Run("websocket", func(b *testing.B) {
		srv := startServerTuned(b, []string{"alice", "bob"}, nil, func(c *config.Config) {
			noMAM(c)
			c.HTTP.Listen = "127.0.0.1:0"
			c.HTTP.TLS = true
		})
		addr := srv.HTTPAddr()
		alice, err := wsLogin(addr, "alice", "a")
		if err != nil {
			b.Fatal(err)
		}
		defer alice.conn.Close()
		bob, err := wsLogin(addr, "bob", "b")
		if err != nil {
			b.Fatal(err)
		}
		defer bob.conn.Close()
		frame := wsFrame(msg)
		run(b, func() error { _, err := alice.conn.Write(frame); return err }, bob.r)
	})
}
