package actors_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/xmppd/xmppd/accounts"

	"github.com/xmppd/xmppd/config"

	"github.com/rs/zerolog"
	"mellium.im/sasl"

	"github.com/xmppd/xmppd/actors"
	"github.com/xmppd/xmppd/storage"
)

// startServer runs a real server in-process on loopback with accounts alice and bob (password "benchpass").
func startServer(tb testing.TB) *actors.Server {
	tb.Helper()
	return startServerWith(tb, []string{"alice", "bob"}, nil)
}

// startServerWith runs a real server in-process on loopback with the accounts users (password "benchpass");
// prepare, when not nil, writes whatever else the benchmark needs (rosters) into storage before the server starts,
// so no setup goes over XMPP.
func startServerWith(tb testing.TB, users []string, prepare func(context.Context, storage.Store)) *actors.Server {
	tb.Helper()
	return startServerTuned(tb, users, prepare, nil)
}

// startServerTuned is startServerWith with tune, when not nil, changing the configuration first.
func startServerTuned(tb testing.TB, users []string, prepare func(context.Context, storage.Store), tune func(*config.Config)) *actors.Server {
	tb.Helper()
	cfg := config.Default()
	cfg.DataDir = tb.TempDir()
	cfg.C2S.Listen = "127.0.0.1:0"
	cfg.C2S.DirectTLSListen = ""
	cfg.Debug.Listen = ""
	cfg.Proxy65.Listen = "" // the default :7777 would be shared by every server of a test run
	cfg.HTTP.Listen = ""
	cfg.Auth.ScramIterations = 4096
	cfg.C2S.ReadRate = 0 // benchmarks saturate single connections on purpose
	if tune != nil {
		tune(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		tb.Fatal(err)
	}
	store, err := actors.OpenStorage(&cfg)
	if err != nil {
		tb.Fatal(err)
	}
	for _, u := range users {
		j, _ := accounts.ParseAccount(&cfg, u+"@localhost")
		if err := accounts.AddUser(context.Background(), &cfg, store, j, "benchpass"); err != nil {
			tb.Fatal(err)
		}
	}
	if prepare != nil {
		prepare(context.Background(), store)
	}
	store.Close()
	log := zerolog.Nop()
	if testing.Verbose() {
		log = zerolog.New(zerolog.NewTestWriter(tb)).Level(zerolog.DebugLevel)
	}
	srv, err := actors.Start(cfg, log)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { srv.Shutdown(5 * time.Second) })
	return srv
}

// rawClient is a deliberately small client: STARTTLS, SCRAM-SHA-256 (mellium.im/sasl), bind, presence.
type rawClient struct {
	conn net.Conn
	// r is what dec reads from: a benchmark that goes on reading raw bytes after some elements reads r, not conn,
	// so bytes the server sent together with the last decoded element are not lost in a decoder's own buffer.
	// (Given an io.ByteReader, encoding/xml reads no further than the element it returns.)
	r   *bufio.Reader
	dec *xml.Decoder
}

func (c *rawClient) send(s string) error { _, err := io.WriteString(c.conn, s); return err }

// next reads the next top-level element, returning its start tag and its inner XML.
func (c *rawClient) next() (xml.StartElement, string, error) {
	for {
		tok, err := c.dec.Token()
		if err != nil {
			return xml.StartElement{}, "", err
		}
		if se, ok := tok.(xml.StartElement); ok {
			if se.Name.Local == "stream" {
				continue
			}
			var inner struct {
				Inner string `xml:",innerxml"`
			}
			err := c.dec.DecodeElement(&inner, &se)
			return se, inner.Inner, err
		}
	}
}

// until reads elements until one with the given local name, failing on SASL failures and stream errors.
func (c *rawClient) until(local string) (xml.StartElement, string, error) {
	for {
		se, inner, err := c.next()
		if err != nil || se.Name.Local == local {
			return se, inner, err
		}
		if se.Name.Local == "failure" || se.Name.Local == "error" {
			return se, inner, fmt.Errorf("%s: %s", se.Name.Local, inner)
		}
	}
}

func (c *rawClient) open(user string) error {
	c.r = bufio.NewReader(c.conn)
	c.dec = xml.NewDecoder(c.r)
	return c.send("<?xml version='1.0'?><stream:stream to='localhost' from='" + user + "@localhost' version='1.0' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>")
}

func login(addr, user, resource string) (*rawClient, error) {
	return loginWith(addr, user, resource, "<presence/>")
}

// loginWith logs in like login and sends presence (the initial presence, pipelined with the bind request) instead
// of a bare <presence/>: a benchmark's clients announce their XEP-0115 caps there, as real clients do.
func loginWith(addr, user, resource, presence string) (*rawClient, error) {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	c := &rawClient{conn: nc}
	fail := func(err error) (*rawClient, error) { nc.Close(); return nil, err }
	if err := c.open(user); err != nil {
		return fail(err)
	}
	if _, _, err := c.until("features"); err != nil {
		return fail(err)
	}
	if err := c.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"); err != nil {
		return fail(err)
	}
	if _, _, err := c.until("proceed"); err != nil {
		return fail(err)
	}
	tc := tls.Client(nc, &tls.Config{ServerName: "localhost", InsecureSkipVerify: true})
	if err := tc.Handshake(); err != nil {
		return fail(err)
	}
	c.conn = tc
	if err := c.open(user); err != nil {
		return fail(err)
	}
	if _, _, err := c.until("features"); err != nil {
		return fail(err)
	}
	neg := sasl.NewClient(sasl.ScramSha256, sasl.Credentials(func() ([]byte, []byte, []byte) {
		return []byte(user), []byte("benchpass"), nil
	}))
	_, first, err := neg.Step(nil)
	if err != nil {
		return fail(err)
	}
	if err := c.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-256'>" + base64.StdEncoding.EncodeToString(first) + "</auth>"); err != nil {
		return fail(err)
	}
	_, ch, err := c.until("challenge")
	if err != nil {
		return fail(err)
	}
	chal, _ := base64.StdEncoding.DecodeString(ch)
	_, final, err := neg.Step(chal)
	if err != nil {
		return fail(err)
	}
	if err := c.send("<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>" + base64.StdEncoding.EncodeToString(final) + "</response>"); err != nil {
		return fail(err)
	}
	if _, _, err := c.until("success"); err != nil {
		return fail(err)
	}
	if err := c.open(user); err != nil {
		return fail(err)
	}
	if _, _, err := c.until("features"); err != nil {
		return fail(err)
	}
	if err := c.send("<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>" + resource + "</resource></bind></iq>" + presence); err != nil {
		return fail(err)
	}
	if _, _, err := c.until("iq"); err != nil {
		return fail(err)
	}
	return c, nil
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkLogin: TCP + STARTTLS (ECDSA P-256) + SCRAM-SHA-256 + bind + presence, client and server in one
// process; cpu-µs/login is the CPU of both sides together, an upper bound of the server's.
func BenchmarkLogin(b *testing.B) {
	srv := startServer(b)
	addr := srv.C2SAddrs()[0]
	b.ResetTimer()
	start := cpuTime()
	for i := 0; i < b.N; i++ {
		c, err := login(addr, "alice", fmt.Sprintf("r%d", i))
		if err != nil {
			b.Fatal(err)
		}
		c.send("</stream:stream>")
		c.conn.Close()
	}
	b.ReportMetric(float64((cpuTime()-start).Microseconds())/float64(b.N), "cpu-µs/login")
}

// BenchmarkRoutedMessage: alice sends chat messages to bob's full JID over TLS; each op is one message from
// alice's socket to bob's socket through conn → session → router → user actor → session → conn.
// cpu-µs/msg counts both clients too.
func BenchmarkRoutedMessage(b *testing.B) { routedMessage(b, nil) }

// BenchmarkRoutedMessageNoArchive is BenchmarkRoutedMessage with [mam] enabled = false: what the archive's cost
// per message is measured against (issue 13: with it, at most twice this).
func BenchmarkRoutedMessageNoArchive(b *testing.B) {
	routedMessage(b, func(c *config.Config) { c.MAM.Enabled = false })
}

func routedMessage(b *testing.B, tune func(*config.Config)) {
	srv := startServerTuned(b, []string{"alice", "bob"}, nil, tune)
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
	msg := "<message to='bob@localhost/b' type='chat' id='m'><body>hello there, how are you today?</body></message>"
	// Warm up: the first message spawns bob's user actor.
	alice.send(msg)
	if _, _, err := bob.until("message"); err != nil {
		b.Fatal(err)
	}
	// From here bob's socket is read raw: count closing tags.
	got := make(chan int, 1)
	var progress atomic.Int64
	go func() {
		buf := make([]byte, 64<<10)
		n := 0
		// Some bytes may already sit in the xml.Decoder's buffer: none, since we read exactly one message.
		want := b.N
		tag := []byte("</message>")
		carry := 0 // bytes kept from the previous read: a closing tag may straddle two reads
		for n < want {
			k, err := bob.conn.Read(buf[carry:])
			if err != nil {
				break
			}
			end := carry + k
			n += bytes.Count(buf[:end], tag)
			carry = min(len(tag)-1, end)
			copy(buf, buf[end-carry:end])
			progress.Store(int64(n))
		}
		got <- n
	}()
	b.ReportAllocs()
	b.ResetTimer()
	start := cpuTime()
	batch := strings.Repeat(msg, 64)
	sent := 0
	for sent+64 <= b.N {
		if err := alice.send(batch); err != nil {
			b.Fatal(err)
		}
		sent += 64
	}
	for ; sent < b.N; sent++ {
		if err := alice.send(msg); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case n := <-got:
		if n < b.N {
			b.Fatalf("bob received %d of %d messages", n, b.N)
		}
	case <-time.After(10 * time.Second):
		b.Fatalf("timeout waiting for bob: %d of %d", progress.Load(), b.N)
	}
	b.ReportMetric(float64((cpuTime()-start).Nanoseconds())/1000/float64(b.N), "cpu-µs/msg")
}

// BenchmarkLoginRoster500: a user whose roster has 500 contacts (mutual 'both' subscriptions), 250 of them
// online, logs in: roster fetch, initial presence broadcast to 500 contacts and probes answered by the 250 online
// ones. One op ends when the user has received the 250 presences.
func BenchmarkLoginRoster500(b *testing.B) {
	const contacts, online = 500, 250
	cfg := config.Default()
	cfg.DataDir = b.TempDir()
	cfg.C2S.Listen = "127.0.0.1:0"
	cfg.C2S.DirectTLSListen = ""
	cfg.C2S.MaxSessionsPerUser = 0
	cfg.Debug.Listen = ""
	cfg.Proxy65.Listen = "" // the default :7777 would be shared by every server of a test run
	cfg.HTTP.Listen = ""
	cfg.Auth.ScramIterations = 4096
	cfg.C2S.ReadRate = 0 // benchmarks saturate single connections on purpose
	if err := cfg.Validate(); err != nil {
		b.Fatal(err)
	}
	store, err := actors.OpenStorage(&cfg)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	add := func(u string) {
		j, _ := accounts.ParseAccount(&cfg, u+"@localhost")
		if err := accounts.AddUser(ctx, &cfg, store, j, "benchpass"); err != nil {
			b.Fatal(err)
		}
	}
	add("alice")
	for i := 0; i < contacts; i++ {
		c := fmt.Sprintf("c%d", i)
		add(c)
		if _, err := store.PutRosterItem(ctx, "alice@localhost", storage.RosterItem{JID: c + "@localhost", Subscription: "both", Groups: []string{"bench"}}); err != nil {
			b.Fatal(err)
		}
		if _, err := store.PutRosterItem(ctx, c+"@localhost", storage.RosterItem{JID: "alice@localhost", Subscription: "both"}); err != nil {
			b.Fatal(err)
		}
	}
	store.Close()
	srv, err := actors.Start(cfg, zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { srv.Shutdown(10 * time.Second) })
	addr := srv.C2SAddrs()[0]
	for i := 0; i < online; i++ {
		c, err := login(addr, fmt.Sprintf("c%d", i), "r")
		if err != nil {
			b.Fatal(err)
		}
		defer c.conn.Close()
		// Drain whatever the contacts receive (alice's presence) so their writers never back up.
		go io.Copy(io.Discard, c.conn)
	}
	b.ResetTimer()
	start := cpuTime()
	for i := 0; i < b.N; i++ {
		c, err := login(addr, "alice", fmt.Sprintf("a%d", i))
		if err != nil {
			b.Fatal(err)
		}
		if err := c.send("<iq type='get' id='roster'><query xmlns='jabber:iq:roster'/></iq>"); err != nil {
			b.Fatal(err)
		}
		// Presences (answers to the probes) and the roster result arrive interleaved.
		seen := map[string]bool{}
		rosterDone := false
		for !rosterDone || len(seen) < online {
			se, inner, err := c.next()
			if err != nil {
				b.Fatal(err)
			}
			switch se.Name.Local {
			case "iq":
				if n := strings.Count(inner, "<item "); n != contacts {
					b.Fatalf("roster has %d items, want %d", n, contacts)
				}
				rosterDone = true
			case "presence":
				for _, a := range se.Attr {
					if a.Name.Local == "from" && !strings.HasPrefix(a.Value, "alice@") {
						seen[a.Value] = true
					}
				}
			}
		}
		c.send("</stream:stream>")
		c.conn.Close()
	}
	b.ReportMetric(float64((cpuTime()-start).Microseconds())/float64(b.N), "cpu-µs/login")
}
