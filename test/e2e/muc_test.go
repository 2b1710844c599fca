package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xmppd/xmppd/test/harness"
	"github.com/xmppd/xmppd/test/xmppclient"
)

const (
	nsMUC     = "http://jabber.org/protocol/muc"
	nsMUCUser = nsMUC + "#user"
)

// mucOccupant is one raw client in a room: its reader goroutine records the groupchat bodies it gets, in order,
// and signals its own self-presence (status 110).
type mucOccupant struct {
	raw    *xmppclient.Raw
	nick   string
	mu     sync.Mutex
	bodies []string
	self   chan struct{}
	once   sync.Once
	other  []*xmppclient.Elem // everything else that is not presence
}

func (o *mucOccupant) serve() {
	o.raw.Serve(func(e *xmppclient.Elem) {
		switch {
		case e.Is("", "presence") && e.Get("type") == "error":
			o.mu.Lock()
			o.other = append(o.other, e)
			o.mu.Unlock()
		case e.Is("", "presence"):
			for _, s := range e.Child(nsMUCUser, "x").Children(nsMUCUser, "status") {
				if s.Get("code") == "110" {
					o.once.Do(func() { close(o.self) })
				}
			}
		case e.Is("", "message") && e.Get("type") == "groupchat" && e.Child("", "body") != nil:
			o.mu.Lock()
			o.bodies = append(o.bodies, e.ChildText("body"))
			o.mu.Unlock()
		default:
			o.mu.Lock()
			o.other = append(o.other, e)
			o.mu.Unlock()
		}
	})
}

func (o *mucOccupant) got() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.bodies...)
}

// A 100-occupant room (10 accounts × 10 resources, raw clients): every groupchat message of 10 senders reaches
// every occupant exactly once, and each sender's messages arrive in the order sent (XEP-0045 §7.4 with RFC 6120
// §10.1 per-sender order); /debug/actors shows the room with its 100 occupants.
func TestMUCFanout100(t *testing.T) {
	srv := own(t, harness.Options{})
	const accounts, resources, senders, perSender = 10, 10, 10, 20
	pw := secret()
	var occ []*mucOccupant
	for i := range accounts {
		u := newName(t, fmt.Sprintf("fan%d", i))
		srv.AddUser(t, u, pw)
		for r := range resources {
			raw := xmppclient.MustDialRaw(t, xmppclient.TargetOf(srv.Server), xmppclient.RawOptions{})
			raw.Login(u, pw, fmt.Sprintf("r%d", r))
			o := &mucOccupant{raw: raw, nick: fmt.Sprintf("n%d-%d", i, r), self: make(chan struct{})}
			o.serve()
			t.Cleanup(raw.Close)
			occ = append(occ, o)
		}
	}
	room := "big@conference." + srv.Domain
	join := func(o *mucOccupant) {
		o.raw.Write("<presence to='" + room + "/" + o.nick + "'><x xmlns='" + nsMUC + "'><history maxstanzas='0'/></x></presence>")
	}
	waitSelf := func(o *mucOccupant) {
		t.Helper()
		select {
		case <-o.self:
		case <-time.After(30 * time.Second):
			t.Fatalf("%s never entered (other: %v)", o.nick, o.other)
		}
	}
	// The first creates the room and accepts the defaults (§10.1.2); then the 99 others enter at once.
	join(occ[0])
	waitSelf(occ[0])
	occ[0].raw.Write("<iq type='set' id='inst' to='" + room + "'><query xmlns='" + nsMUC + "#owner'><x xmlns='jabber:x:data' type='submit'/></query></iq>")
	// The others enter once the room is unlocked (before, they would meet item-not-found, §10.1.1).
	for deadline := time.Now().Add(30 * time.Second); ; {
		occ[0].mu.Lock()
		unlocked := false
		for _, e := range occ[0].other {
			if e.Is("", "iq") && e.Get("id") == "inst" && e.Get("type") == "result" {
				unlocked = true
			}
		}
		occ[0].mu.Unlock()
		if unlocked {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the instant room was not accepted: %v", occ[0].other)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, o := range occ[1:] {
		join(o)
	}
	for _, o := range occ[1:] {
		waitSelf(o)
	}
	// senders × perSender messages, the senders interleaved.
	for k := range perSender {
		for s := range senders {
			occ[s*resources].raw.Write(fmt.Sprintf("<message to='%s' type='groupchat' id='m%d-%d'><body>%d %d</body></message>", room, s, k, s, k))
		}
	}
	want := senders * perSender
	deadline := time.Now().Add(60 * time.Second)
	for _, o := range occ {
		for len(o.got()) < want && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
	}
	time.Sleep(200 * time.Millisecond) // anything extra (a duplicate) would have arrived by now
	for _, o := range occ {
		got := o.got()
		if len(got) != want {
			t.Fatalf("%s got %d messages, want %d", o.nick, len(got), want)
		}
		next := make([]int, senders)
		for _, b := range got {
			var s, k int
			if _, err := fmt.Sscanf(b, "%d %d", &s, &k); err != nil || s >= senders {
				t.Fatalf("%s: unexpected body %q", o.nick, b)
			}
			if k != next[s] {
				t.Fatalf("%s: from sender %d got message %d, want %d (lost, duplicated or reordered)", o.nick, s, k, next[s])
			}
			next[s]++
		}
	}
	// The room actor in /debug/actors, with its occupant count.
	if n := roomOccupants(t, srv.DebugAddr, "services/conference."+srv.Domain+"/big"); n != "100" {
		t.Errorf("/debug/actors: room big has occupants=%q, want 100", n)
	}
}

// roomOccupants is the occupants attribute of the room actor id in /debug/actors ("" if absent).
func roomOccupants(t *testing.T, debugAddr, id string) string {
	t.Helper()
	res, err := http.Get("http://" + debugAddr + "/debug/actors?kind=services,service,room")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	type node struct {
		ID       string            `json:"id"`
		Kind     string            `json:"kind"`
		Attrs    map[string]string `json:"attrs"`
		Children []*node           `json:"children"`
	}
	var snap struct {
		Root *node `json:"root"`
	}
	if err := json.NewDecoder(res.Body).Decode(&snap); err != nil {
		t.Fatal(err)
	}
	var found string
	var walk func(n *node)
	walk = func(n *node) {
		if n.Kind == "room" && n.ID == id {
			found = n.Attrs["occupants"]
		}
		for _, k := range n.Children {
			walk(k)
		}
	}
	walk(snap.Root)
	return found
}

// A mediated invitation (XEP-0045 §7.8.2) reaches the invitee's resource promptly, and a direct invitation
// (XEP-0249: a message from user to user with <x xmlns='jabber:x:conference'/>) passes through untouched.
func TestMUCInvitations(t *testing.T) {
	srv := own(t, harness.Options{})
	a, apw := srv.user(t, "inva")
	b, bpw := srv.user(t, "invb")
	ra := xmppclient.MustDialRaw(t, xmppclient.TargetOf(srv.Server), xmppclient.RawOptions{})
	ra.Login(a, apw, "r")
	rb := xmppclient.MustDialRaw(t, xmppclient.TargetOf(srv.Server), xmppclient.RawOptions{})
	rb.Login(b, bpw, "r")
	rb.Write("<presence/>")
	room := "inv@conference." + srv.Domain
	ra.Write("<presence to='" + room + "/a'><x xmlns='" + nsMUC + "'/></presence>")
	expectWhere(t, ra, "self-presence", func(e *xmppclient.Elem) bool { return e.Is("", "presence") && e.Get("from") == room+"/a" })
	ra.Write("<iq type='set' id='inst' to='" + room + "'><query xmlns='" + nsMUC + "#owner'><x xmlns='jabber:x:data' type='submit'/></query></iq>")
	expectWhere(t, ra, "the instant room", func(e *xmppclient.Elem) bool { return e.Get("id") == "inst" && e.Get("type") == "result" })
	start := time.Now()
	ra.Write("<message to='" + room + "'><x xmlns='" + nsMUCUser + "'><invite to='" + srv.bare(b) + "'><reason>hi</reason></invite></x></message>")
	inv := expectWhere(t, rb, "the invitation", func(e *xmppclient.Elem) bool {
		return e.Is("", "message") && e.Get("from") == room && e.Child(nsMUCUser, "x").Child(nsMUCUser, "invite") != nil
	})
	if from := inv.Child(nsMUCUser, "x").Child(nsMUCUser, "invite").Get("from"); !strings.HasPrefix(from, srv.bare(a)) {
		t.Errorf("invitation from %q, want %s", from, srv.bare(a))
	}
	t.Logf("mediated invitation after %v", time.Since(start))
	ra.Write("<message to='" + srv.bare(b) + "' id='direct'><x xmlns='jabber:x:conference' jid='" + room + "' reason='direct'/></message>")
	d := expectWhere(t, rb, "the direct invitation", func(e *xmppclient.Elem) bool { return e.Is("", "message") && e.Get("id") == "direct" })
	if x := d.Child("jabber:x:conference", "x"); x == nil || x.Get("jid") != room {
		t.Errorf("direct invitation: %s", d)
	}
}

func expectWhere(t *testing.T, r *xmppclient.Raw, what string, pred func(*xmppclient.Elem) bool) *xmppclient.Elem {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		e, err := r.Next(time.Until(deadline))
		if err != nil {
			break
		}
		if pred(e) {
			return e
		}
	}
	t.Fatalf("no %s within 5s", what)
	return nil
}
