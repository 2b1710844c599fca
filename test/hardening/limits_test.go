package hardening

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xmppd/xmppd/test/harness"
	"github.com/xmppd/xmppd/test/xmppclient"
)

// A raw socket that dribbles its stream header one byte at a time (slowloris) is closed with
// <connection-timeout/> at c2s.negotiation_timeout, while a well-behaved pair keeps chatting.
func TestSlowloris(t *testing.T) {
	t.Parallel()
	srv := ourServer(t, map[string]string{"c2s": `negotiation_timeout = "2s"`}, false)
	ua, pa := newUser(t, srv, "a")
	ub, pb := newUser(t, srv, "b")

	r := dial(t, srv)
	start := time.Now()
	header := `<?xml version='1.0'?><stream:stream to='localhost' version='1.0' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>`
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < len(header); i++ {
			if r.TryWrite(header[i:i+1]) != nil {
				return
			}
			time.Sleep(200 * time.Millisecond)
		}
	}()
	cond, closed, _ := streamError(r)
	el := time.Since(start)
	if cond != "connection-timeout" || !closed {
		t.Fatalf("slowloris: condition %q closed %v, want connection-timeout and closed", cond, closed)
	}
	if el < 1500*time.Millisecond || el > 6*time.Second {
		t.Errorf("closed after %v, want about the 2s negotiation deadline", el)
	}
	<-done
	if n := limitHits(t, srv, "negotiation_timeout"); n < 1 {
		t.Errorf("negotiation_timeout hits = %v", n)
	}
	// Logins take well under the deadline; chatting continues after it.
	a := login(t, srv, ua, pa, "r", true)
	b := login(t, srv, ub, pb, "r", true)
	time.Sleep(2500 * time.Millisecond)
	chatCheck(t, srv, a, b, 50)
}

// Elements before authentication are bounded in size (c2s.pre_auth_stanza_size) and in number
// (c2s.pre_auth_max_elements): both end the stream with <policy-violation/>.
func TestPreAuthLimits(t *testing.T) {
	t.Parallel()
	plain := false
	srv := harness.Start(t, harness.Options{RequireEncryption: &plain, Sections: map[string]string{"c2s": "pre_auth_max_elements = 10"}})

	// 9000 bytes in one element before authentication: over the 8 KiB pre-auth limit.
	r := dial(t, srv)
	r.Open()
	big := `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>` + strings.Repeat("A", 9000) + `</auth>`
	_ = r.TryWrite(big)
	if cond, closed, _ := streamError(r); cond != "policy-violation" || !closed {
		t.Fatalf("oversized pre-auth element: %q closed=%v", cond, closed)
	}
	if n := limitHits(t, srv, "pre_auth_stanza_size"); n != 1 {
		t.Errorf("pre_auth_stanza_size hits = %v, want 1", n)
	}

	// Many small elements: registration is off, so each gets an error, and the 11th ends the stream.
	r = dial(t, srv)
	r.Open()
	for i := 0; i < 11; i++ {
		_ = r.TryWrite(fmt.Sprintf(`<iq type='get' id='r%d'><query xmlns='jabber:iq:register'/></iq>`, i))
	}
	cond, closed, before := streamError(r)
	if cond != "policy-violation" || !closed {
		t.Fatalf("element flood: %q closed=%v", cond, closed)
	}
	if len(before) != 10 {
		t.Errorf("got %d answers before the stream error, want 10", len(before))
	}
	if n := limitHits(t, srv, "pre_auth_elements"); n != 1 {
		t.Errorf("pre_auth_elements hits = %v, want 1", n)
	}
}

// c2s.max_connections_per_ip: the connection over the cap gets <policy-violation/> at once (before any stream
// header, so before TLS) and is closed; a slot freed is usable again.
func TestPerIPCap(t *testing.T) {
	t.Parallel()
	srv := ourServer(t, map[string]string{"c2s": "max_connections_per_ip = 3\nconnect_rate_per_ip = 0\nlimits_exempt = []"}, false)
	var held []*xmppclient.Raw
	for i := 0; i < 3; i++ {
		r := dial(t, srv)
		r.Open()
		held = append(held, r)
	}
	over := dial(t, srv)
	cond, closed, _ := streamError(over)
	if cond != "policy-violation" || !closed {
		t.Fatalf("4th connection: %q closed=%v, want policy-violation and closed", cond, closed)
	}
	if n := limitHits(t, srv, "connections_per_ip"); n < 1 {
		t.Errorf("connections_per_ip hits = %v", n)
	}
	held[0].Conn().Close()
	eventually(t, wait, "a freed slot", func() bool {
		r := dial(t, srv)
		defer r.Conn().Close()
		_ = r.TryWrite(`<?xml version='1.0'?><stream:stream to='localhost' version='1.0' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>`)
		r.Next(wait) // header (ours or the refusal's)
		e, err := r.Next(wait)
		return err == nil && e.Is(xmppclient.NSStream, "features")
	})
	// The ones still held were not disturbed.
	held[1].Write(" ")
	held[1].Write(`<iq type='get' id='x'><query xmlns='jabber:iq:register'/></iq>`)
	held[1].Expect(xmppclient.NSClient, "iq")
}

// c2s.connect_rate_per_ip: a burst of connections beyond the bucket is refused.
func TestConnectRate(t *testing.T) {
	t.Parallel()
	srv := ourServer(t, map[string]string{"c2s": "connect_rate_per_ip = 0.05\nconnect_burst_per_ip = 40\nlimits_exempt = []"}, false)
	time.Sleep(100 * time.Millisecond)
	refused := 0
	for i := 0; i < 60; i++ {
		c, err := net.DialTimeout("tcp", srv.C2SAddr, wait)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		buf := make([]byte, 4096)
		n, _ := c.Read(buf)
		if strings.Contains(string(buf[:n]), "policy-violation") {
			refused++
		}
		c.Close()
	}
	// The harness's readiness probes took a few tokens too; the refill (one per 20 s) is negligible.
	if refused < 20 || refused > 26 {
		t.Errorf("refused %d of 60 connections, want about 20 (burst 40)", refused)
	}
	if n := limitHits(t, srv, "connect_rate_per_ip"); int(n) != refused {
		t.Errorf("connect_rate_per_ip hits = %v, want %d", n, refused)
	}
}

// 50 parallel wrong-password logins from one address: every one gets <not-authorized/>, answered later and later
// (auth.failure_delay per source address); the third failure in one stream ends it with <policy-violation/>; a
// legitimate login at the same time is not slowed and chats.
func TestAuthFailureFlood(t *testing.T) {
	t.Parallel()
	srv := ourServer(t, map[string]string{
		"c2s":  "limits_exempt = []\nconnect_burst_per_ip = 500\nmax_connections_per_ip = 200",
		"auth": "failure_delay = \"100ms\"\nfailure_delay_max = \"1500ms\"",
	}, false)
	victim, vpass := newUser(t, srv, "victim")
	ub, pb := newUser(t, srv, "b")

	var wg sync.WaitGroup
	lat := make([]time.Duration, 50)
	errs := make(chan string, 50)
	conns := make([]*xmppclient.Raw, 50)
	for i := range conns {
		conns[i] = dial(t, srv)
	}
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			r := conns[i]
			r.T = &noFatal{TB: t}
			defer func() { recover() }() //nolint: a failing helper reports through errs
			r.Open()
			r.StartTLS()
			user := victim
			if i%2 == 1 {
				user = "nosuchuser" // unknown accounts get the same answer
			}
			start := time.Now()
			e, err := r.TryAuthPlain(user, "wrong password")
			lat[i] = time.Since(start)
			if err != nil || !e.Is(xmppclient.NSSASL, "failure") || e.Condition() != "not-authorized" {
				errs <- fmt.Sprintf("login %d: %v %v", i, e, err)
			}
		}(i)
	}
	// Meanwhile the victim logs in with the right password: never slowed, never locked out.
	start := time.Now()
	a := login(t, srv, victim, vpass, "r", true)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("legitimate login took %v during the flood", d)
	}
	b := login(t, srv, ub, pb, "r", true)
	chatCheck(t, srv, a, b, 50)
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	var slow int
	for _, d := range lat {
		if d >= 1400*time.Millisecond {
			slow++
		}
	}
	if slow < 30 {
		t.Errorf("only %d of 50 failures were delayed to the cap; latencies %v", slow, lat)
	}
	if n := limitHits(t, srv, "auth_failure_delay"); n < 50 {
		t.Errorf("auth_failure_delay hits = %v, want >= 50", n)
	}

	// auth.max_failures (3): the third wrong password in one stream ends it.
	r := dial(t, srv)
	r.Open()
	r.StartTLS()
	for i := 0; i < 2; i++ {
		if e, err := r.TryAuthPlain(victim, "nope"); err != nil || e.Condition() != "not-authorized" {
			t.Fatalf("failure %d: %v %v", i, e, err)
		}
	}
	_ = r.TryWrite(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>` + "AG5vAG5v" + `</auth>`)
	cond, closed, before := streamError(r)
	if cond != "policy-violation" || !closed || len(before) != 1 || before[0].Condition() != "not-authorized" {
		t.Fatalf("third failure: %q closed=%v before=%v", cond, closed, before)
	}
	if n := limitHits(t, srv, "auth_max_failures"); n != 1 {
		t.Errorf("auth_max_failures hits = %v", n)
	}
	// A client that does not wait for the delayed answer is cut off.
	r = dial(t, srv)
	r.Open()
	r.StartTLS()
	_ = r.TryWrite(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AG5vAG5v</auth><auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AG5vAG5v</auth>`)
	if cond, closed, _ := streamError(r); cond != "policy-violation" || !closed {
		t.Fatalf("pipelined auth during the delay: %q closed=%v", cond, closed)
	}
}

// noFatal turns Fatalf in goroutines into a panic the goroutine recovers from (t.Fatal must not be called off
// the test goroutine).
type noFatal struct{ testing.TB }

func (n *noFatal) Fatalf(format string, args ...any) {
	n.TB.Errorf(format, args...)
	panic("fatal")
}
func (n *noFatal) Helper() {}

// In-band registration flood from one address: registration.max_per_ip succeed, the rest get
// <policy-violation/>; reserved names and short passwords are refused; the server still serves others.
func TestRegistrationFlood(t *testing.T) {
	t.Parallel()
	srv := ourServer(t, map[string]string{
		"c2s":          "limits_exempt = []",
		"registration": "max_per_ip = 3\nperiod = \"1h\"",
	}, true)
	r := dial(t, srv)
	r.Open()
	r.StartTLS()
	reg := func(id, user, pass string) *xmppclient.Elem {
		t.Helper()
		r.Write(fmt.Sprintf(`<iq type='set' id='%s'><query xmlns='jabber:iq:register'><username>%s</username><password>%s</password></query></iq>`, id, user, pass))
		for {
			e := r.Expect(xmppclient.NSClient, "iq")
			if e.Get("id") == id {
				return e
			}
		}
	}
	if e := reg("res", "Admin", "long enough password"); e.Get("type") != "error" || e.Condition() != "not-acceptable" {
		t.Errorf("reserved username: %s", e)
	}
	if e := reg("short", "shorty", "x"); e.Get("type") != "error" || e.Condition() != "not-acceptable" {
		t.Errorf("short password: %s", e)
	}
	ok, refused := 0, 0
	for i := 0; i < 10; i++ {
		e := reg(fmt.Sprintf("r%d", i), fmt.Sprintf("flood%d", i), "long enough password")
		switch {
		case e.Get("type") == "result":
			ok++
		case e.Condition() == "policy-violation":
			refused++
		default:
			t.Errorf("registration %d: %s", i, e)
		}
	}
	if ok != 3 || refused != 7 {
		t.Errorf("registrations: %d ok, %d refused; want 3 and 7", ok, refused)
	}
	if n := limitHits(t, srv, "registration_rate"); n != 7 {
		t.Errorf("registration_rate hits = %v", n)
	}
	if n := limitHits(t, srv, "registration_reserved"); n != 1 {
		t.Errorf("registration_reserved hits = %v", n)
	}
	// The accounts that were created work.
	a := login(t, srv, "flood0", "long enough password", "r", true)
	b := login(t, srv, "flood1", "long enough password", "r", true)
	chatCheck(t, srv, a, b, 20)
}

// Subscription flood: requests to strangers are rate limited (<policy-violation/> to the sender), a victim
// keeps at most roster.max_pending_in unanswered requests, and rosters stop at roster.max_items.
func TestSubscriptionFlood(t *testing.T) {
	t.Parallel()
	srv := ourServer(t, map[string]string{
		"roster": "max_items = 6\nmax_pending_in = 3\nstranger_subscribes_per_minute = 1.0\nstranger_subscribe_burst = 5",
	}, false)
	spammer, sp := newUser(t, srv, "spam")
	var victims []string
	for i := 0; i < 8; i++ {
		v, _ := newUser(t, srv, "v")
		victims = append(victims, v)
	}
	s := login(t, srv, spammer, sp, "r", true)
	for _, v := range victims {
		s.Write(`<presence type='subscribe' to='` + v + `@localhost'/>`)
	}
	// 8 requests to strangers with a burst of 5: 3 refused.
	refused := 0
	deadline := time.Now().Add(wait)
	for refused < 3 && time.Now().Before(deadline) {
		e, err := s.Next(time.Until(deadline))
		if err != nil {
			t.Fatal(err)
		}
		if e.Is(xmppclient.NSClient, "presence") && e.Get("type") == "error" {
			if e.Condition() != "policy-violation" {
				t.Errorf("want policy-violation, got %s", e)
			}
			refused++
		}
	}
	if refused != 3 {
		t.Fatalf("stranger subscriptions refused: %d, want 3 (8 sent, burst 5)", refused)
	}
	if n := limitHits(t, srv, "stranger_subscriptions"); n != 3 {
		t.Errorf("stranger_subscriptions hits = %v", n)
	}

	// The roster now has 5 items (pending out); max_items is 6.
	rosterSet := func(id, contact string) *xmppclient.Elem {
		s.Write(`<iq type='set' id='` + id + `'><query xmlns='jabber:iq:roster'><item jid='` + contact + `@localhost'/></query></iq>`)
		for {
			e := s.Expect(xmppclient.NSClient, "iq")
			if e.Get("id") == id {
				return e
			}
		}
	}
	if e := rosterSet("set1", "extra1"); e.Get("type") != "result" {
		t.Fatalf("6th roster item: %s", e)
	}
	if e := rosterSet("set2", "extra2"); e.Get("type") != "error" || e.Condition() != "not-allowed" {
		t.Fatalf("7th roster item: %s, want not-allowed", e)
	}
	if n := limitHits(t, srv, "roster_max_items"); n != 1 {
		t.Errorf("roster_max_items hits = %v", n)
	}

	// victims[0] has one pending request (the spammer's); three more requesters: the last is dropped.
	for i := 0; i < 3; i++ {
		u, p := newUser(t, srv, "req")
		c := login(t, srv, u, p, "r", true)
		c.Write(`<presence type='subscribe' to='` + victims[0] + `@localhost'/>`)
	}
	eventually(t, wait, "the pending-in limit to trigger", func() bool { return limitHits(t, srv, "roster_max_pending_in") == 1 })
	// The victim logs in and is offered exactly max_pending_in requests.
	v := login(t, srv, victims[0], "pw-"+victims[0]+"-secret", "r", true)
	subs := 0
	for {
		e, err := v.Next(2 * time.Second)
		if err != nil {
			break
		}
		if e.Is(xmppclient.NSClient, "presence") && e.Get("type") == "subscribe" {
			subs++
		}
	}
	if subs != 3 {
		t.Errorf("victim was offered %d pending requests, want 3", subs)
	}
}

// Traffic shaping: a client sending faster than c2s.read_rate is slowed (not cut off, nothing lost).
func TestReadShaping(t *testing.T) {
	t.Parallel()
	srv := ourServer(t, map[string]string{"c2s": "read_rate = 50000\nread_burst = 65536\nmax_stanza_size = 65536\nwrite_queue_bytes = 1048576"}, false)
	ua, pa := newUser(t, srv, "a")
	ub, pb := newUser(t, srv, "b")
	a := login(t, srv, ua, pa, "r", true)
	b := login(t, srv, ub, pb, "r", true)
	time.Sleep(1500 * time.Millisecond) // the login's bytes have been paid back
	body := strings.Repeat("x", 20000)
	start := time.Now()
	go func() {
		for i := 0; i < 10; i++ {
			_ = a.TryWrite(fmt.Sprintf(`<message to='%s@localhost' type='chat' id='m%d'><body>%s</body></message>`, ub, i, body))
		}
	}()
	for i := 0; i < 10; {
		e, err := b.Next(wait)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if e.Is(xmppclient.NSClient, "message") {
			if msgID(e) != fmt.Sprintf("m%d", i) {
				t.Fatalf("got %s", msgID(e))
			}
			i++
		}
	}
	// 200 KB at 50 KB/s with a 64 KiB burst: at least (200000-65536)/50000 ≈ 2.7 s.
	if el := time.Since(start); el < 2*time.Second {
		t.Errorf("200 KB arrived in %v: not shaped", el)
	}
	if n := limitHits(t, srv, "read_rate"); n < 1 {
		t.Errorf("read_rate hits = %v", n)
	}
}
