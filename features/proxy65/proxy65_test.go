package proxy65

import (
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xmppd/xmppd/feature/featuretest"
	"github.com/xmppd/xmppd/protocol/socks5"
	"github.com/xmppd/xmppd/protocol/stanza"
)

// told records what a transfer reports through the mailbox.
type told struct {
	mu   sync.Mutex
	msgs []any
}

func (m *told) Tell(msg any)                       { m.mu.Lock(); m.msgs = append(m.msgs, msg); m.mu.Unlock() }
func (m *told) Ask(any, time.Duration) (any, bool) { return nil, false }

const (
	initiator = "alice@localhost/a"
	target    = "bob@localhost/b"
)

func activate(t *testing.T, svc *featuretest.Service, sid string) *stanza.Routed {
	t.Helper()
	svc.Send(featuretest.Stanza(t, "<iq xmlns='jabber:client' from='"+initiator+"' to='proxy.localhost' type='set' id='act'><query xmlns='"+NS+"' sid='"+sid+"'><activate>"+target+"</activate></query></iq>"))
	out := svc.Take()
	if len(out) != 1 {
		t.Fatalf("%d answers", len(out))
	}
	return out[0]
}

func condition(t *testing.T, st *stanza.Routed) string {
	t.Helper()
	n, err := st.Node()
	if err != nil {
		t.Fatal(err)
	}
	if e := n.Child(stanza.NSClient, "error"); e != nil {
		return e.Elements()[0].Name.Local
	}
	return ""
}

func TestPairingAndActivation(t *testing.T) {
	srv := featuretest.NewServer(t, Feature)
	svc := featuretest.NewService(t, srv, Feature.Service)
	mb := &told{}
	part := svc.Part.(*service)
	part.Handle(listening{host: "127.0.0.1", port: 7777, mb: mb})

	svc.Send(featuretest.Stanza(t, "<iq xmlns='jabber:client' from='"+initiator+"' to='proxy.localhost' type='get' id='sh'><query xmlns='"+NS+"'/></iq>"))
	if out := svc.Take(); len(out) != 1 || out[0].Head.Type != "result" || !contains(out[0].Raw, "host='127.0.0.1' port='7777'") {
		t.Fatalf("streamhost: %v", out)
	}

	addr := socks5.StreamAddr("sid1", initiator, target)
	if c := condition(t, activate(t, svc, "sid1")); c != "item-not-found" {
		t.Fatalf("nobody connected: %s", c)
	}
	tA, pA := net.Pipe()
	tB, pB := net.Pipe()
	defer tA.Close()
	defer tB.Close()
	if a := part.Answer(arrive{addr: addr, conn: pB}).(arrived); !a.ok {
		t.Fatal("target refused")
	}
	if c := condition(t, activate(t, svc, "sid1")); c != "not-allowed" {
		t.Fatalf("one party: %s", c)
	}
	if a := part.Answer(arrive{addr: addr, conn: pA}).(arrived); !a.ok {
		t.Fatal("initiator refused")
	}
	x1, x2 := net.Pipe()
	defer x1.Close()
	defer x2.Close()
	if a := part.Answer(arrive{addr: addr, conn: x2}).(arrived); a.ok {
		t.Fatal("a third party accepted")
	}
	if r := activate(t, svc, "sid1"); r.Head.Type != "result" {
		t.Fatalf("activation: %s", r.Raw)
	}
	if c := condition(t, activate(t, svc, "sid1")); c != "not-allowed" {
		t.Fatalf("second activation: %s", c)
	}
	// The relay runs: what the initiator's side writes, the target's side reads.
	go func() { _, _ = tA.Write([]byte("hello")); _ = tA.Close() }()
	got, _ := io.ReadAll(tB)
	if string(got) != "hello" {
		t.Fatalf("relayed %q", got)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		mb.mu.Lock()
		n := len(mb.msgs)
		mb.mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the transfer did not report its end")
		}
		time.Sleep(10 * time.Millisecond)
	}
	part.Handle(mb.msgs[0])
	if len(part.active) != 0 || srv.Counted(CounterTransfers) != 1 || srv.Counted(CounterBytes) != 5 {
		t.Fatalf("after the transfer: active %d, counted %v/%v", len(part.active), srv.Counted(CounterTransfers), srv.Counted(CounterBytes))
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// A transfer with nothing moving ends after the idle timeout, and one past its total deadline ends then, both
// closing the two connections.
func TestTransferTimeouts(t *testing.T) {
	for _, tc := range []struct {
		name     string
		idle     time.Duration
		deadline time.Duration
		trickle  bool
	}{
		{"idle", 100 * time.Millisecond, time.Hour, false},
		{"total", time.Hour, 300 * time.Millisecond, true},
	} {
		a, pa := net.Pipe()
		b, pb := net.Pipe()
		ended := make(chan int64, 1)
		tr := &transfer{a: pa, b: pb, maxBytes: 1 << 20, idle: tc.idle, deadline: time.Now().Add(tc.deadline),
			count: func(string, float64) {}, limitHit: func() {}, done: func(n int64) { ended <- n }}
		go tr.run()
		stop := make(chan struct{})
		if tc.trickle {
			// One byte every 20 ms keeps the idle timeout away; only the total deadline can end it.
			go func() {
				for {
					select {
					case <-stop:
						return
					case <-time.After(20 * time.Millisecond):
						if _, err := a.Write([]byte{1}); err != nil {
							return
						}
					}
				}
			}()
			go func() { _, _ = io.Copy(io.Discard, b) }()
		}
		start := time.Now()
		select {
		case <-ended:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: the transfer did not end", tc.name)
		}
		close(stop)
		if tc.trickle && time.Since(start) < 250*time.Millisecond {
			t.Errorf("%s: ended before its deadline", tc.name)
		}
		if _, err := a.Write([]byte{1}); err == nil {
			t.Errorf("%s: the connections are still open", tc.name)
		}
		a.Close()
		b.Close()
	}
}

// A connection that waits for its peer or for activation longer than idle_timeout is closed.
func TestWaitingExpires(t *testing.T) {
	srv := featuretest.NewServer(t, Feature)
	srv.Cfg.Proxy65.IdleTimeout.Duration = 50 * time.Millisecond
	svc := featuretest.NewService(t, srv, Feature.Service)
	part := svc.Part.(*service)
	c, pc := net.Pipe()
	defer c.Close()
	part.Answer(arrive{addr: socks5.StreamAddr("s", initiator, target), conn: pc})
	time.Sleep(60 * time.Millisecond)
	part.Handle(expire{listening{host: "127.0.0.1", port: 7777, mb: &told{}}})
	if len(part.waiting) != 0 {
		t.Fatal("still waiting")
	}
	if _, err := c.Write([]byte{1}); err == nil {
		t.Fatal("the waiting connection was not closed")
	}
}

// A service part that stops (in a cluster: the proxy moved to another node) closes the connections waiting for
// activation, which nobody else holds; a running transfer's are its own.
func TestStoppedClosesWaiting(t *testing.T) {
	srv := featuretest.NewServer(t, Feature)
	svc := featuretest.NewService(t, srv, Feature.Service)
	part := svc.Part.(*service)
	client, waiting := net.Pipe()
	defer client.Close()
	if a := part.Answer(arrive{addr: socks5.StreamAddr("sid", initiator, target), conn: waiting}).(arrived); !a.ok {
		t.Fatal("refused")
	}
	part.Stopped()
	_ = client.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := client.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("the waiting connection is still open: %v", err)
	}
	if len(part.waiting) != 0 {
		t.Fatalf("%d stream addresses still waiting", len(part.waiting))
	}
}
