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
