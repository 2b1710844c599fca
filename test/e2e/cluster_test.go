package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xmppd/xmppd/storage/postgres/pgtest"
	"github.com/xmppd/xmppd/test/etcdtest"
	"github.com/xmppd/xmppd/test/harness"
	"github.com/xmppd/xmppd/test/xmppclient"
)

// clusterStatus is the part of /debug/cluster the tests read.
type clusterStatus struct {
	Enabled bool   `json:"enabled"`
	Self    string `json:"self"`
	Members []struct {
		Address   string `json:"address"`
		Users     int64  `json:"users"`
		Sessions  int64  `json:"sessions"`
		SplitHome int64  `json:"split_sessions_home"`
		SplitEdge int64  `json:"split_sessions_edge"`
		RoutedOut int64  `json:"stanzas_out"`
		RoutedIn  int64  `json:"stanzas_in"`
		Error     string `json:"error"`
	} `json:"members"`
}

func readClusterStatus(t testing.TB, s *testServer) clusterStatus {
	t.Helper()
	res, err := http.Get("http://" + s.DebugAddr + "/debug/cluster")
	if err != nil {
		t.Fatalf("/debug/cluster: %v", err)
	}
	defer res.Body.Close()
	var st clusterStatus
	if err := json.NewDecoder(res.Body).Decode(&st); err != nil {
		t.Fatalf("/debug/cluster: %v", err)
	}
	return st
}

// freeLoopbackPorts reserves n TCP ports on 127.0.0.1 (closed again: the server binds them).
func freeLoopbackPorts(t testing.TB, n int) []int {
	t.Helper()
	var ls []net.Listener
	var out []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		out = append(out, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		_ = l.Close()
	}
	return out
}

// startCluster starts n xmppd nodes on one PostgreSQL database with the given membership section, and waits
// until every node sees all n members.
func startCluster(t testing.TB, n int, membership func(i int, health []int) string) []*testServer {
	t.Helper()
	return startClusterWith(t, n, membership, harness.Options{})
}

// startClusterWith is startCluster with more configuration for every node (o; its storage and cluster sections
// are the cluster's).
func startClusterWith(t testing.TB, n int, membership func(i int, health []int) string, o harness.Options) []*testServer {
	t.Helper()
	return startClusterEach(t, n, membership, func(int) harness.Options { return o })
}

// startClusterEach is startClusterWith with each node's own configuration (node i gets each(i)).
func startClusterEach(t testing.TB, n int, membership func(i int, health []int) string, each func(i int) harness.Options) []*testServer {
	t.Helper()
	pg := pgtest.Start(t)
	dsn := pg.NewDatabase(t)
	remote := freeLoopbackPorts(t, n)
	health := freeLoopbackPorts(t, n)
	nodes := make([]*testServer, n)
	for i := range n {
		// Fixed ports, as a deployment has: a restarted node comes back at its address (bind port 0 would give it
		// a new one, and rendezvous hashing would then move other accounts too).
		sec := fmt.Sprintf("enabled = true\nname = %q\nbind = \"127.0.0.1:%d\"\n%s", "xmppd-test", remote[i], membership(i, health))
		o := each(i)
		oi := o
		oi.Sections = map[string]string{"storage": postgresSection(dsn), "cluster": sec}
		for k, v := range o.Sections {
			if k != "storage" && k != "cluster" {
				oi.Sections[k] = v
			}
		}
		nodes[i] = own(t, oi)
	}
	deadline := time.Now().Add(30 * time.Second)
	for i, s := range nodes {
		for {
			st := readClusterStatus(t, s)
			if len(st.Members) == n {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("node %d sees %d members, want %d: %+v", i, len(st.Members), n, st)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	return nodes
}

func automanagedMembership(i int, health []int) string {
	var peers []string
	for _, p := range health {
		peers = append(peers, strconv.Quote("127.0.0.1:"+strconv.Itoa(p)))
	}
	return fmt.Sprintf("provider = \"automanaged\"\nautomanaged_port = %d\nautomanaged_peers = [%s]", health[i], strings.Join(peers, ", "))
}

// TestClusterChat: three nodes on one PostgreSQL (automanaged membership). Six accounts log in spread over the
// nodes, so most sessions live on another node than their client's connection and most pairs are placed on
// different nodes. Neighbours subscribe to each other and chat both ways; every message arrives, in order,
// presence crosses the nodes, and the nodes' counters show stanzas forwarded between them and split sessions.
func TestClusterChat(t *testing.T) {
	nodes := startCluster(t, 3, automanagedMembership)
	const users = 6
	type acct struct {
		local, pw, bare string
		c               *xmppclient.Client
	}
	accts := make([]*acct, users)
	for i := range accts {
		local, pw := nodes[0].user(t, fmt.Sprintf("c%d", i))
		accts[i] = &acct{local: local, pw: pw, bare: nodes[0].bare(local)}
	}
	connectedTo := map[string]int{}
	for i, a := range accts {
		a.c = mustLogin(t, nodes[i%len(nodes)], a.local, a.pw, loginOpts{resource: "r"})
		connectedTo[a.bare] = i % len(nodes)
		fetchRoster(t, a.c)
		a.c.Send(`<presence/>`)
	}
	// Pair the accounts so that as many pairs as the placement allows have their homes on different nodes:
	// sorted by home, the first half with the second.
	home := map[string]int{}
	for _, a := range accts {
		home[a.bare] = homeOf(t, nodes, a.bare)
	}
	// The placement the nodes announce (/debug/cluster?jid=, xmppd cluster status --jid) is where the user
	// actors are.
	self := make([]string, len(nodes))
	for i, n := range nodes {
		self[i] = readClusterStatus(t, n).Self
	}
	for _, a := range accts {
		out, _, err := nodes[1].Run("cluster", "status", "--jid", a.bare)
		if err != nil {
			t.Fatalf("xmppd cluster status --jid: %v\n%s", err, out)
		}
		if want := a.bare + " is placed on " + self[home[a.bare]]; !strings.Contains(out, want) {
			t.Fatalf("xmppd cluster status --jid %s printed\n%s\nwant %q", a.bare, out, want)
		}
	}
	slices.SortStableFunc(accts, func(x, y *acct) int { return home[x.bare] - home[y.bare] })
	paired := make([]*acct, 0, users)
	for i := range users / 2 {
		paired = append(paired, accts[i], accts[i+users/2])
	}
	accts = paired
	crossPairs, splitClients := 0, 0
	for _, a := range accts {
		if home[a.bare] != connectedTo[a.bare] {
			splitClients++
		}
	}
	for i := 0; i+1 < users; i += 2 {
		if home[accts[i].bare] != home[accts[i+1].bare] {
			crossPairs++
		}
	}
	for i := 0; i+1 < users; i += 2 {
		a, b := accts[i], accts[i+1]
		subscribeBoth(t, a.c, b.c, a.bare, b.bare)
	}
	const msgs = 20
	for i := 0; i+1 < users; i += 2 {
		a, b := accts[i], accts[i+1]
		for k := range msgs {
			a.c.Send(fmt.Sprintf(`<message to='%s' type='chat' id='m%d'><body>a%d</body></message>`, b.bare, k, k))
			b.c.Send(fmt.Sprintf(`<message to='%s' type='chat' id='n%d'><body>b%d</body></message>`, a.bare, k, k))
		}
	}
	for i := 0; i+1 < users; i += 2 {
		a, b := accts[i], accts[i+1]
		for k := range msgs {
			b.c.Expect(fmt.Sprintf("message a%d to %s", k, b.local), xmppclient.IsMessageWithBody(fmt.Sprintf("a%d", k)))
			a.c.Expect(fmt.Sprintf("message b%d to %s", k, a.local), xmppclient.IsMessageWithBody(fmt.Sprintf("b%d", k)))
		}
	}
	var out, in, split int64
	for _, m := range readClusterStatus(t, nodes[0]).Members {
		if m.Error != "" {
			t.Fatalf("member %s did not answer: %s", m.Address, m.Error)
		}
		out += m.RoutedOut
		in += m.RoutedIn
		split += m.SplitHome
	}
	t.Logf("homes %v; pairs across nodes %d; clients on another node than their session %d; stanzas between nodes: out %d in %d; split sessions %d",
		home, crossPairs, splitClients, out, in, split)
	if crossPairs > 0 && (out == 0 || in != out) {
		t.Fatalf("%d pairs chat across nodes, but the nodes counted %d stanzas out and %d in", crossPairs, out, in)
	}
	var hops float64
	for _, n := range nodes {
		hops += nodeMetric(t, n, "xmppd_cluster_hop_seconds_count")
	}
	if int64(hops) != in {
		t.Fatalf("xmppd_cluster_hop_seconds counted %v forwards, the nodes received %d", hops, in)
	}
	if int(split) != splitClients {
		t.Fatalf("%d clients are connected to another node than their account's home, the nodes count %d split sessions", splitClients, split)
	}
	// A room (its service placed on one node) with occupants connected to all three: groupchat reaches each.
	room := "clusterroom@conference." + nodes[0].Domain
	for i, a := range accts {
		nick := fmt.Sprintf("n%d", i)
		a.c.Send("<presence to='" + room + "/" + nick + "'><x xmlns='" + nsMUC + "'/></presence>")
		a.c.Expect("self-presence in the room", func(e *xmppclient.Elem) bool {
			return e.Name.Local == "presence" && e.Get("from") == room+"/"+nick && e.Get("type") == ""
		})
		if i == 0 {
			if r := a.c.IQ("<iq type='set' to='" + room + "'><query xmlns='" + nsMUC + "#owner'><x xmlns='jabber:x:data' type='submit'/></query></iq>"); r.Get("type") != "result" {
				t.Fatalf("instant room: %s", r)
			}
		}
	}
	accts[3].c.Send("<message to='" + room + "' type='groupchat' id='g1'><body>to the whole cluster</body></message>")
	for _, a := range accts {
		if m := a.c.Expect("the groupchat", xmppclient.IsMessageWithBody("to the whole cluster")); m.Get("from") != room+"/n3" {
			t.Errorf("%s got %s", a.local, m)
		}
	}
	// PEP: accts[1] announces +notify for tunes; accts[0] (its contact) publishes; the notification crosses.
	announceCaps(t, accts[1].c, nsTuneFed+"+notify")
	isTune := func(e *xmppclient.Elem) bool {
		ev := e.Child(nsPubSubEvtFed, "event")
		return e.Name.Local == "message" && ev != nil && ev.Child(nsPubSubEvtFed, "items").Get("node") == nsTuneFed
	}
	var ev *xmppclient.Elem
	for try := 0; try < 20 && ev == nil; try++ { // until the publisher's home has verified the caps
		r := accts[0].c.IQ("<iq type='set'><pubsub xmlns='" + nsPubSubFed + "'><publish node='" + nsTuneFed + "'><item><tune xmlns='" + nsTuneFed + "'><title>t</title></tune></item></publish></pubsub></iq>")
		if r.Get("type") != "result" {
			t.Fatalf("publish: %s", r)
		}
		ev, _ = accts[1].c.Wait(isTune, 500*time.Millisecond)
	}
	if ev == nil {
		t.Fatal("the PEP notification never reached the contact")
	}
	// XEP-0198 resumption on another node than the lost connection's: the session stays at its home.
	rl, rpw := nodes[0].user(t, "resumer")
	for _, first := range []int{0, 1} {
		ra, _ := smLogin(t, nodes[first], rl, rpw, "phone", true)
		ra.Write("<enable xmlns='urn:xmpp:sm:3' resume='true'/>")
		id := ra.Expect(nsSM, "enabled").Get("id")
		full := nodes[0].bare(rl) + "/phone"
		accts[0].c.Send(`<message to='` + full + `' type='chat'><body>before the drop</body></message>`)
		if got := bodies(t, ra, 1); got[0] != "before the drop" {
			t.Fatalf("got %v", got)
		}
		ra.Conn().Close()
		time.Sleep(200 * time.Millisecond)
		accts[0].c.Send(`<message to='` + full + `' type='chat'><body>while away</body></message>`)
		rb, _ := smLogin(t, nodes[(first+1)%3], rl, rpw, "", false)
		rb.Write("<resume xmlns='urn:xmpp:sm:3' previd='" + id + "' h='1'/>")
		if res := rb.Expect(nsSM, "resumed"); res.Get("h") != "0" {
			t.Fatalf("resumed: %s", res)
		}
		if got := bodies(t, rb, 1); got[0] != "while away+delay" {
			t.Fatalf("after resuming on another node: %v", got)
		}
		rb.Write("<a xmlns='urn:xmpp:sm:3' h='2'/>") // both messages handled: nothing is resent when the stream ends
		rb.Write("</stream:stream>")
		rb.Conn().Close()
	}
	// A client that leaves: its contact, on whatever node, sees it go.
	gone := accts[1].c.JID.String()
	accts[1].c.Close()
	accts[0].c.Expect("unavailable presence across nodes", xmppclient.IsPresence(gone, "unavailable"))
}

// homeOf is the index of the node whose actor tree has the user actor of bare.
func homeOf(t testing.TB, nodes []*testServer, bare string) int {
	t.Helper()
	found := -1
	for i, s := range nodes {
		res, err := http.Get("http://" + s.DebugAddr + "/debug/actors?format=json&kind=user&jid=" + url.QueryEscape(bare))
		if err != nil {
			t.Fatal(err)
		}
		var snap struct {
			Counts map[string]int `json:"counts"`
		}
		err = json.NewDecoder(res.Body).Decode(&snap)
		res.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if snap.Counts["user"] > 0 {
			if found >= 0 {
				t.Fatalf("%s has a user actor on two nodes (%d and %d)", bare, found, i)
			}
			found = i
		}
	}
	if found < 0 {
		t.Fatalf("%s has no user actor on any node", bare)
	}
	return found
}

// waitMembers waits until s sees n members.
func waitMembers(t *testing.T, s *testServer, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := readClusterStatus(t, s)
		if len(st.Members) == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s sees %d members, want %d", s.C2SAddr, len(st.Members), n)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestClusterNodeKilled: acknowledged messages survive the SIGKILL of a node, under load. A sender with
// XEP-0198 keeps sending to offline accounts placed all over the cluster; its <a h/> covers a message only once
// the recipient's home node has stored it (the confirmation crosses the nodes). Midway, another node is killed
// with SIGKILL. The survivors drop it from their member list; what was forwarded to it unconfirmed is routed
// again to the accounts' new homes (with the idempotency key of their first forward), so the sender's h still
// reaches every message it sent. Every recipient, logging in to a survivor, gets each message exactly once, also
// those the dead node had stored but not confirmed, and its archive holds each once under the stanza-id it was
// delivered with; and the survivors go on serving.
func TestClusterNodeKilled(t *testing.T) {
	nodes := startCluster(t, 3, automanagedMembership)
	const recipients, total = 6, 300
	spw := secret()
	sender := newName(t, "ks")
	nodes[0].AddUser(t, sender, spw)
	type acct struct{ local, pw string }
	rs := make([]acct, recipients)
	var to []string
	for i := range rs {
		rs[i].local, rs[i].pw = nodes[0].user(t, fmt.Sprintf("kr%d", i))
		to = append(to, nodes[0].bare(rs[i].local))
	}
	ls := newLoadSender(t, nodes[0], sender, spw, to)
	// The victim is neither the node the sender is connected to nor its account's home: its stream lives on.
	victimIdx := 1
	if homeOf(t, nodes, nodes[0].bare(sender)) == 1 {
		victimIdx = 2
	}
	victim := nodes[victimIdx]
	var survivors []*testServer
	for i, n := range nodes {
		if i != victimIdx {
			survivors = append(survivors, n)
		}
	}
	want := ls.send("before", total/3)
	victim.Kill()
	for i, b := range ls.send("after", total-total/3) {
		want[i] = append(want[i], b...)
	}
	ls.settle()
	for _, s := range survivors {
		waitMembers(t, s, 2)
	}
	rerouted, again := clusterAgain(t, survivors)
	for i, r := range rs {
		expectExactlyOnce(t, survivors[i%2], r.local, r.pw, want[i])
	}
	t.Logf("%d messages, every one acknowledged and delivered once, archived once; %.0f routed again after the kill, %.0f arrived again at a user actor",
		total, rerouted, again)
	// The survivors keep serving: a new pair, one on each, chats.
	a, apw := survivors[0].user(t, "ka")
	b, bpw := survivors[1].user(t, "kb")
	ca := mustLogin(t, survivors[0], a, apw, loginOpts{resource: "a"})
	cb := mustLogin(t, survivors[1], b, bpw, loginOpts{resource: "b"})
	cb.Send(`<presence/>`) // available: a message to the bare JID is delivered, not stored (RFC 6121 §8.5.2.1)
	fetchRoster(t, cb)
	ca.Send(`<message to='` + survivors[0].bare(b) + `' type='chat'><body>after the crash</body></message>`)
	cb.Expect("a message between the survivors", xmppclient.IsMessageWithBody("after the crash"))
	ca.Close()
	cb.Close()
	for _, s := range survivors {
		if n := s.RaceReports(); n > 0 {
			t.Fatalf("%s reported %d data races", s.C2SAddr, n)
		}
	}
}

func etcdMembership(endpoint, prefix string) func(int, []int) string {
	return func(int, []int) string {
		return fmt.Sprintf("provider = \"etcd\"\netcd_endpoints = [%q]\netcd_prefix = %q", endpoint, prefix)
	}
}

// loadSender is a client with XEP-0198 that sends numbered messages round robin to recipients and asks for an
// <a/> every ten; h is the server's count of what it has handled (for a message: stored at its recipient's home).
type loadSender struct {
	t    *testing.T
	rc   *rawConn
	to   []string
	sent int
	h    int
}

func newLoadSender(t *testing.T, node *testServer, local, pw string, to []string) *loadSender {
	t.Helper()
	rc, _ := smLogin(t, node, local, pw, "", true)
	rc.Write("<enable xmlns='urn:xmpp:sm:3'/>")
	rc.Expect(nsSM, "enabled")
	return &loadSender{t: t, rc: rc, to: to}
}

func (l *loadSender) ack() {
	l.t.Helper()
	l.rc.Write("<r xmlns='urn:xmpp:sm:3'/>")
	a := nextNot(l.t, l.rc, true)
	if !a.Is(nsSM, "a") {
		l.t.Fatalf("want <a/>, got %s", a)
	}
	l.h, _ = strconv.Atoi(a.Get("h"))
}

// send sends n more messages; tag prefixes their bodies (tag-<recipient>-<k>).
func (l *loadSender) send(tag string, n int) (bodies [][]string) {
	l.t.Helper()
	bodies = make([][]string, len(l.to))
	for range n {
		i := l.sent % len(l.to)
		b := fmt.Sprintf("%s-%d-%d", tag, i, l.sent)
		sendChat(l.rc, l.to[i], b)
		bodies[i] = append(bodies[i], b)
		l.sent++
		if l.sent%10 == 0 {
			l.ack()
			time.Sleep(5 * time.Millisecond)
		}
	}
	return bodies
}

// settle waits until h covers everything sent: every message is stored at its recipient's home, also those
// that were forwarded to a node that left before confirming them (routed again).
func (l *loadSender) settle() {
	l.t.Helper()
	for deadline := time.Now().Add(30 * time.Second); l.h < l.sent; {
		if time.Now().After(deadline) {
			l.t.Fatalf("h stuck at %d of %d", l.h, l.sent)
		}
		l.ack()
		time.Sleep(200 * time.Millisecond)
	}
}

// expectExactlyOnce logs local in at node and reads its offline messages: each body in want exactly once, and
// nothing else. A message forwarded to a node that died or left after storing it (or forwarding it on) but
// before its confirmation got back is routed again, with the idempotency key it was first forwarded with: its
// recipient's home must store and deliver it once all the same. Then the archive (XEP-0313): each body once, and
// under the stanza-id the live copy carried.
func expectExactlyOnce(t *testing.T, node *testServer, local, pw string, want []string) {
	t.Helper()
	c := mustLogin(t, node, local, pw, loginOpts{resource: "back"})
	defer c.Close()
	c.Send(`<presence/>`)
	bare := node.bare(local)
	seen := map[string]int{}
	live := map[string]string{} // body → the stanza-id by the account it came with
	isMsg := func(e *xmppclient.Elem) bool { return e.Name.Local == "message" && e.ChildText("body") != "" }
	take := func(e *xmppclient.Elem) {
		b := e.ChildText("body")
		seen[b]++
		live[b] = stanzaIDBy(t, e, bare)
	}
	for got := 0; got < len(want); {
		e, err := c.Wait(isMsg, 10*time.Second)
		if err != nil {
			t.Fatalf("%s: got %d of %d messages: %v", local, got, len(want), err)
		}
		if seen[e.ChildText("body")] == 0 {
			got++
		}
		take(e)
	}
	for { // what would be a second copy comes with the rest of the queue
		e, err := c.Wait(isMsg, 500*time.Millisecond)
		if err != nil {
			break
		}
		take(e)
	}
	wanted := make(map[string]bool, len(want))
	for _, b := range want {
		wanted[b] = true
		if n := seen[b]; n != 1 {
			t.Errorf("%s got %s %d times, want exactly once", local, b, n)
		}
	}
	for b, n := range seen {
		if !wanted[b] {
			t.Errorf("%s got %q (%d times), never sent", local, b, n)
		}
	}
	// The archive, page by page (max_page is 100).
	archived := map[string][]string{} // body → archive ids
	for after, page := "", 0; ; page++ {
		rsm := "<max>100</max>"
		if after != "" {
			rsm += "<after>" + after + "</after>"
		}
		p := mustMAM(t, c, fmt.Sprintf("once%d", page), "", rsm, "")
		for i, b := range p.bodies {
			archived[b] = append(archived[b], p.ids[i])
		}
		if p.complete || len(p.ids) == 0 {
			break
		}
		after = p.last
	}
	for _, b := range want {
		switch ids := archived[b]; {
		case len(ids) != 1:
			t.Errorf("%s's archive holds %s %d times, want once", local, b, len(ids))
		case ids[0] != live[b]:
			t.Errorf("%s: %s archived as %s, delivered with stanza-id %s", local, b, ids[0], live[b])
		}
	}
	for b, ids := range archived {
		if !wanted[b] {
			t.Errorf("%s's archive holds %q (%d times), never sent", local, b, len(ids))
		}
	}
	if t.Failed() {
		t.FailNow()
	}
}

// clusterAgain sums, over nodes, the stanzas routed again after their node left and those a user actor had
// handled already when they arrived again (xmppd_cluster_stanzas_total): what the exactly-once machinery met.
func clusterAgain(t *testing.T, nodes []*testServer) (rerouted, again float64) {
	t.Helper()
	for _, s := range nodes {
		rerouted += max(nodeMetric(t, s, `xmppd_cluster_stanzas_total{direction="rerouted"}`), 0)
		again += max(nodeMetric(t, s, `xmppd_cluster_stanzas_total{direction="again"}`), 0)
	}
	return rerouted, again
}

// TestClusterRollingRestart: three nodes with etcd membership (Debian's etcd, started by the test) are restarted
// one after the other under load. Each node in turn gets SIGTERM while a sender with XEP-0198 keeps sending to
// six offline accounts spread over the nodes: the node leaves the member list first (its accounts are placed on
// the others), then drains; it is started again while the sender goes on (it rejoins, and a third of the
// accounts move back to it). For each round the sender is an account whose home is not the restarted node,
// connected to its home, so its own stream lives through the round. Every message is acknowledged, and every
// recipient gets each of them exactly once and has each once in its archive, also those a leaving node stored or
// forwarded on but whose confirmation it could no longer pass back (routed again with their key).
func TestClusterRollingRestart(t *testing.T) {
	etcd := etcdtest.Start(t)
	nodes := startCluster(t, 3, etcdMembership(etcd.Endpoint, "/xmppd-"+newName(t, "rr")))
	const recipients = 6
	type acct struct{ local, pw string }
	rs := make([]acct, recipients)
	var to []string
	for i := range rs {
		rs[i].local, rs[i].pw = nodes[0].user(t, fmt.Sprintf("rr%d", i))
		to = append(to, nodes[0].bare(rs[i].local))
	}
	// Senders whose homes differ, so that every round has one whose home is not the node restarted.
	type sender struct {
		acct
		home int
	}
	var senders []sender
	for i := 0; len(senders) < 3 && i < 40; i++ {
		l, p := nodes[0].user(t, fmt.Sprintf("rs%d", i))
		c := mustLogin(t, nodes[0], l, p, loginOpts{resource: "probe"})
		h := homeOf(t, nodes, nodes[0].bare(l))
		c.Close()
		if !slices.ContainsFunc(senders, func(s sender) bool { return s.home == h }) {
			senders = append(senders, sender{acct{l, p}, h})
		}
	}
	if len(senders) < 2 {
		t.Fatal("no two accounts with different homes among 40")
	}
	want := make([][]string, recipients)
	keep := func(bodies [][]string) {
		for i, b := range bodies {
			want[i] = append(want[i], b...)
		}
	}
	var rerouted, again float64 // summed as each node's counters go with its restart
	for i, n := range nodes {
		si := slices.IndexFunc(senders, func(s sender) bool { return s.home != i })
		s := senders[si]
		ls := newLoadSender(t, nodes[s.home], s.local, s.pw, to)
		r, a := clusterAgain(t, nodes[i:i+1])
		rerouted, again = rerouted+r, again+a
		stopped := make(chan error, 1)
		go func() { stopped <- n.Shutdown() }() // under load: the node leaves and drains while messages flow
		keep(ls.send(fmt.Sprintf("stop%d", i), 60))
		if err := <-stopped; err != nil {
			t.Fatalf("stopping node %d: %v", i, err)
		}
		keep(ls.send(fmt.Sprintf("down%d", i), 30))
		n.Restart(t)
		keep(ls.send(fmt.Sprintf("rejoin%d", i), 60)) // accounts move back while these flow
		for _, s := range nodes {
			waitMembers(t, s, 3)
		}
		ls.settle()
		ls.rc.Conn().Close()
	}
	for i, r := range rs {
		expectExactlyOnce(t, nodes[i%3], r.local, r.pw, want[i])
	}
	r, a := clusterAgain(t, nodes)
	t.Logf("%d messages over three restarts, all acknowledged and delivered once, archived once; at least %.0f routed again, %.0f arrived again at a user actor",
		150*3, rerouted+r, again+a)
	for i, s := range nodes {
		if n := s.RaceReports(); n > 0 {
			t.Fatalf("node %d reported %d data races", i, n)
		}
	}
}

// TestClusterEtcdPartition: one node reaches etcd through a proxy the test then blocks. etcd expires the node's
// lease and the other two drop it; the cut-off node notices that its lease is no longer renewed and stops
// placing accounts on itself, so the accounts it held are live only on their new homes: its own clients are
// told to reconnect (<system-shutdown/>), and when they do, through the cut-off node itself, their sessions are
// created at the new homes (split sessions), where messages reach them. When etcd is reachable again the node
// stays out (protoactor blocks a member id once dropped) and keeps forwarding; restarted, it rejoins.
func TestClusterEtcdPartition(t *testing.T) {
	etcd := etcdtest.Start(t)
	target := strings.TrimPrefix(etcd.Endpoint, "http://")
	proxy := startCutProxy(t, target)
	prefix := "/xmppd-" + newName(t, "part")
	nodes := startCluster(t, 3, func(i int, _ []int) string {
		ep := etcd.Endpoint
		if i == 2 {
			ep = "http://" + proxy.addr()
		}
		return fmt.Sprintf("provider = \"etcd\"\netcd_endpoints = [%q]\netcd_prefix = %q", ep, prefix)
	})
	// An account placed on node 2, online there.
	var local, pw string
	for i := 0; local == "" && i < 40; i++ {
		l, p := nodes[0].user(t, fmt.Sprintf("pt%d", i))
		c := mustLogin(t, nodes[0], l, p, loginOpts{resource: "probe"})
		if homeOf(t, nodes, nodes[0].bare(l)) == 2 {
			local, pw = l, p
		}
		c.Close()
	}
	if local == "" {
		t.Fatal("no account placed on node 2 among 40")
	}
	bare := nodes[0].bare(local)
	c := mustLogin(t, nodes[2], local, pw, loginOpts{resource: "p"})
	c.Send(`<presence/>`)
	fetchRoster(t, c)

	proxy.blocked.Store(true)
	proxy.cut(true)
	waitMembers(t, nodes[0], 2)
	waitMembers(t, nodes[1], 2)
	if err, ok := c.WaitEnd(15 * time.Second); !ok {
		t.Fatalf("the client on the cut-off node was not told to reconnect (%v)", err)
	}
	if cond := c.StreamError(); cond != "system-shutdown" {
		t.Fatalf("stream error %q, want system-shutdown", cond)
	}
	c = mustLogin(t, nodes[2], local, pw, loginOpts{resource: "p2"})
	c.Send(`<presence/>`)
	fetchRoster(t, c)
	if h := homeOf(t, nodes, bare); h == 2 {
		t.Fatal("the cut-off node still hosts the account")
	}
	o, opw := nodes[0].user(t, "ptother")
	oc := mustLogin(t, nodes[0], o, opw, loginOpts{resource: "o"})
	oc.Send(`<message to='` + bare + `' type='chat'><body>through the partition</body></message>`)
	c.Expect("a message to the account while its old node is cut off", xmppclient.IsMessageWithBody("through the partition"))
	oc.Close()
	c.Close()

	// etcd reachable again: protoactor's cluster has blocked the member id that was dropped, so the node does
	// not come back by itself (it keeps forwarding; nothing is placed on it) until it is restarted with a new id.
	proxy.blocked.Store(false)
	time.Sleep(5 * time.Second)
	if n := len(readClusterStatus(t, nodes[0]).Members); n != 2 {
		t.Fatalf("after the partition healed node 0 sees %d members; a dropped member id should stay out", n)
	}
	if h := homeOf(t, nodes, bare); h == 2 {
		t.Fatal("the account went back to the dropped node without a restart")
	}
	nodes[2].Restart(t)
	for _, s := range nodes {
		waitMembers(t, s, 3)
	}
	for i, s := range nodes {
		if n := s.RaceReports(); n > 0 {
			t.Fatalf("node %d reported %d data races", i, n)
		}
	}
}

// nodeMetric reads one unlabelled series from a node's /metrics (metricValue: -1 if absent).
func nodeMetric(t testing.TB, s *testServer, name string) float64 {
	t.Helper()
	res, err := http.Get("http://" + s.DebugAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return metricValue(string(body), name)
}

// BenchmarkClusterChat: server CPU per message summed over the three nodes, for one pair whose accounts are
// placed on different nodes, the closed loop of BenchmarkC2SChat (the single-node figure to compare with):
//
//	XMPPD_E2E_NORACE=1 go test ./test/e2e/ -run '^$' -bench 'ClusterChat|C2SChat' -benchtime 5000x
//
// home: each client connected to its account's node (one hop between nodes per message); split: each connected
// to a third node (the element to its home, the stanza to the other home, the delivery to the other client's
// node: three hops).
func BenchmarkClusterChat(b *testing.B) {
	nodes := startCluster(b, 3, automanagedMembership)
	type acct struct {
		local, pw string
		home      int
	}
	var accts []acct
	for i := range 6 {
		local, pw := nodes[0].user(b, fmt.Sprintf("bc%d", i))
		c := xmppclient.MustLoginTo(b, nodes[0].Server, local, pw, xmppclient.Options{Resource: "probe"})
		accts = append(accts, acct{local: local, pw: pw, home: homeOf(b, nodes, nodes[0].bare(local))})
		c.Close()
	}
	var x, y *acct
	for i := range accts {
		for j := range accts {
			if accts[i].home != accts[j].home && x == nil {
				x, y = &accts[i], &accts[j]
			}
		}
	}
	if x == nil {
		b.Fatal("all six accounts are placed on one node")
	}
	servers := []*harness.Server{nodes[0].Server, nodes[1].Server, nodes[2].Server}
	third := 3 - x.home - y.home
	for _, v := range []struct {
		name           string
		alice, bobNode int
	}{{"home", x.home, y.home}, {"split", third, third}} {
		b.Run(v.name, func(b *testing.B) {
			alice := xmppclient.MustLoginTo(b, nodes[v.alice].Server, x.local, x.pw, xmppclient.Options{Resource: "r" + v.name})
			bob := xmppclient.MustLoginTo(b, nodes[v.bobNode].Server, y.local, y.pw, xmppclient.Options{Resource: "r" + v.name})
			defer alice.Close()
			defer bob.Close()
			benchChat(b, servers, alice, bob, bob.JID.String())
		})
	}
}

// placedOn is the index of the node the cluster places bare on (/debug/cluster?jid=), before it has a user actor.
func placedOn(t testing.TB, nodes []*testServer, bare string) int {
	t.Helper()
	res, err := http.Get("http://" + nodes[0].DebugAddr + "/debug/cluster?jid=" + url.QueryEscape(bare))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var st struct {
		Home string `json:"home"`
	}
	if err := json.NewDecoder(res.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	for i, n := range nodes {
		if readClusterStatus(t, n).Self == st.Home {
			return i
		}
	}
	t.Fatalf("%s is placed on %q, which is no node", bare, st.Home)
	return -1
}

// adminCommand runs a XEP-0133 command over XEP-0050 (execute, then complete with fields) and returns the
// completed <command/>.
func adminCommand(t *testing.T, c *xmppclient.Client, domain, node, fields string) *xmppclient.Elem {
	t.Helper()
	const nsCommands, nsAdmin = "http://jabber.org/protocol/commands", "http://jabber.org/protocol/admin"
	r := c.IQ("<iq type='set' to='" + domain + "'><command xmlns='" + nsCommands + "' node='" + nsAdmin + "#" + node + "' action='execute'/></iq>")
	cmd := r.Child(nsCommands, "command")
	if cmd != nil && cmd.Get("status") == "executing" {
		r = c.IQ("<iq type='set' to='" + domain + "'><command xmlns='" + nsCommands + "' node='" + nsAdmin + "#" + node + "' sessionid='" + cmd.Get("sessionid") +
			"' action='complete'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>" + nsAdmin + "</value></field>" + fields + "</x></command></iq>")
		cmd = r.Child(nsCommands, "command")
	}
	if cmd == nil || cmd.Get("status") != "completed" {
		t.Fatalf("%s: %s", node, r)
	}
	return cmd
}

func formField(v string, vals ...string) string {
	s := "<field var='" + v + "'>"
	for _, x := range vals {
		s += "<value>" + x + "</value>"
	}
	return s + "</field>"
}

// resultValues are the values of field v of a completed command's result form.
func resultValues(cmd *xmppclient.Elem, v string) []string {
	var out []string
	x := cmd.Child("jabber:x:data", "x")
	if x == nil {
		return nil
	}
	for _, f := range x.Children("", "field") {
		if f.Get("var") == v {
			for _, val := range f.Children("", "value") {
				out = append(out, val.Text)
			}
		}
	}
	return out
}

func commandNote(cmd *xmppclient.Elem) string {
	if n := cmd.Child("", "note"); n != nil {
		return n.Text
	}
	return ""
}

// TestClusterAdminCommands: XEP-0133 over a three-node cluster (automanaged membership). An admin's session
// runs the commands at the admin's home; the accounts they act on are placed on the two other nodes, and the
// surveys reach the user actors of all three. The feature messages cross as adhoc's codec makes them
// (nodewire.UserCall/Survey, the answers back): the online users are counted and listed over the whole cluster,
// an announcement and the message of the day reach users placed on every node, and on accounts placed
// elsewhere the admin reads the roster, the statistics (the live sessions: only the user actor knows them) and
// the last login (idem, while online), ends a session and deletes an account.
func TestClusterAdminCommands(t *testing.T) {
	const adminLocal = "wireadmin"
	nodes := startClusterWith(t, 3, automanagedMembership, harness.Options{TopTOML: `admins = ["` + adminLocal + `@localhost"]` + "\n"})
	domain := nodes[0].Domain
	if domain != "localhost" {
		t.Fatalf("the admins key names localhost, the nodes serve %s", domain)
	}
	apw := secret()
	nodes[0].AddUser(t, adminLocal, apw)
	adminBare := nodes[0].bare(adminLocal)
	adminHome := placedOn(t, nodes, adminBare)

	// Accounts until each node is the home of two (the placement is known before anyone logs in).
	type acct struct {
		local, pw, bare, resource string
		home                      int
		c                         *xmppclient.Client
	}
	var accts []*acct
	perHome := make([]int, len(nodes))
	for k := 0; slices.Min(perHome) < 2; k++ {
		if k == 60 {
			t.Fatalf("60 accounts and still a node is the home of fewer than two: %v", perHome)
		}
		local, pw := nodes[0].user(t, fmt.Sprintf("w%d", k))
		a := &acct{local: local, pw: pw, bare: nodes[0].bare(local)}
		a.home = placedOn(t, nodes, a.bare)
		perHome[a.home]++
		accts = append(accts, a)
	}
	// Each client connects to another node than the one before, so sessions are split as well as not.
	for i, a := range accts {
		a.resource = "r" + strconv.Itoa(i)
		a.c = mustLogin(t, nodes[i%len(nodes)], a.local, a.pw, loginOpts{resource: a.resource})
		fetchRoster(t, a.c) // an interested resource (RFC 6121 §2.1.6): subscribeBoth waits for roster pushes
		a.c.Send(`<presence/>`)
	}
	admin := mustLogin(t, nodes[(adminHome+1)%len(nodes)], adminLocal, apw, loginOpts{resource: "console"})
	for _, a := range accts {
		if h := homeOf(t, nodes, a.bare); h != a.home {
			t.Fatalf("%s is placed on node %d, its user actor is on %d", a.bare, a.home, h)
		}
	}
	if h := homeOf(t, nodes, adminBare); h != adminHome {
		t.Fatalf("the admin is placed on node %d, its user actor is on %d", adminHome, h)
	}
	var elsewhere []*acct // placed on another node than the admin's session
	for _, a := range accts {
		if a.home != adminHome {
			elsewhere = append(elsewhere, a)
		}
	}
	target, kicked, doomed := elsewhere[0], elsewhere[1], elsewhere[2]
	contact := accts[0]
	if contact == target {
		contact = accts[1]
	}
	subscribeBoth(t, target.c, contact.c, target.bare, contact.bare)

	// Online users over the cluster: every account's session and the admin's.
	want := []string{adminBare}
	for _, a := range accts {
		want = append(want, a.bare)
	}
	slices.Sort(want)
	// An available presence reaches each user actor after the bind; the survey counts sessions, bound already.
	if n := resultValues(adminCommand(t, admin, domain, "get-online-users-num", ""), "onlineusersnum"); len(n) != 1 || n[0] != strconv.Itoa(len(want)) {
		t.Fatalf("online users: %v, want %d (homes %v, admin's %d)", n, len(want), perHome, adminHome)
	}
	if got := resultValues(adminCommand(t, admin, domain, "get-online-users-list", ""), "onlineuserjids"); !slices.Equal(got, want) {
		t.Fatalf("online users\n%v\nwant\n%v", got, want)
	}

	// An announcement and the message of the day reach the available users placed on every node.
	if note := commandNote(adminCommand(t, admin, domain, "announce", formField("announcement", "over the cluster"))); !strings.Contains(note, "sent to "+strconv.Itoa(len(accts))+" online user(s)") {
		t.Errorf("announce: %q, want %d users", note, len(accts))
	}
	for _, a := range accts {
		if m := a.c.Expect("the announcement on node "+strconv.Itoa(a.home), xmppclient.IsMessageWithBody("over the cluster")); m.Get("type") != "headline" || m.Get("from") != domain {
			t.Errorf("%s got %s", a.bare, m)
		}
	}
	if note := commandNote(adminCommand(t, admin, domain, "set-motd", formField("motd", "motd of the cluster"))); !strings.Contains(note, "sent to "+strconv.Itoa(len(accts))+" online user(s)") {
		t.Errorf("set-motd: %q, want %d users", note, len(accts))
	}
	for _, a := range accts {
		a.c.Expect("the message of the day on node "+strconv.Itoa(a.home), xmppclient.IsMessageWithBody("motd of the cluster"))
	}

	// One account placed elsewhere: its roster, its statistics and its last login come from its user actor.
	roster := adminCommand(t, admin, domain, "get-user-roster", formField("accountjids", target.bare))
	q := roster.Child("jabber:x:data", "x").Child("jabber:iq:roster", "query")
	if q == nil || len(q.Children("", "item")) != 1 || q.Children("", "item")[0].Get("jid") != contact.bare || q.Children("", "item")[0].Get("subscription") != "both" {
		t.Fatalf("roster of %s (node %d): %s", target.bare, target.home, roster)
	}
	stats := adminCommand(t, admin, domain, "user-stats", formField("accountjid", target.bare))
	// Only the user actor knows the sessions: without its answer the command reports the stored roster only.
	if res := resultValues(stats, "onlineresources"); !slices.Equal(res, []string{target.resource}) {
		t.Fatalf("statistics of %s (node %d): resources %v in %s", target.bare, target.home, res, stats)
	}
	if n := resultValues(stats, "rostersize"); !slices.Equal(n, []string{"1"}) || len(resultValues(stats, "ipaddresses")) != 1 {
		t.Fatalf("statistics of %s: %s", target.bare, stats)
	}
	last := resultValues(adminCommand(t, admin, domain, "get-user-lastlogin", formField("accountjids", target.bare)), "lastlogin")
	if len(last) != 1 {
		t.Fatalf("last login of %s (online, node %d): %v", target.bare, target.home, last)
	}
	if at, err := time.Parse(time.RFC3339, last[0]); err != nil || time.Since(at) > time.Minute || time.Until(at) > time.Minute {
		t.Fatalf("last login of %s: %v (%v)", target.bare, last, err)
	}

	// Ending a session and deleting an account placed elsewhere: the client's stream ends.
	if note := commandNote(adminCommand(t, admin, domain, "end-user-session", formField("accountjids", kicked.bare))); !strings.Contains(note, "Ended 1 session(s) of: "+kicked.bare) {
		t.Errorf("end-user-session: %q", note)
	}
	if cond := kicked.c.StreamError(); cond != "policy-violation" {
		t.Errorf("%s's stream (node %d) ended with %q", kicked.bare, kicked.home, cond)
	}
	adminCommand(t, admin, domain, "delete-user", formField("accountjids", doomed.bare))
	if cond := doomed.c.StreamError(); cond != "not-authorized" {
		t.Errorf("the deleted %s's stream (node %d) ended with %q", doomed.bare, doomed.home, cond)
	}
	if _, err := login(t, nodes[doomed.home], doomed.local, doomed.pw, loginOpts{}); err == nil {
		t.Errorf("the deleted account still logs in")
	}
	// What crossed is counted; nothing was dropped.
	var in, answers, dropped float64
	for _, n := range nodes {
		in += max(nodeMetric(t, n, `xmppd_cluster_feature_messages_total{direction="in"}`), 0)
		answers += max(nodeMetric(t, n, `xmppd_cluster_feature_messages_total{direction="answer_in"}`), 0)
		dropped += max(nodeMetric(t, n, `xmppd_cluster_stanzas_total{direction="dropped"}`), 0)
	}
	t.Logf("homes %v (admin's %d); feature messages in %v, answers in %v, dropped %v", perHome, adminHome, in, answers, dropped)
	if in == 0 || answers == 0 || dropped != 0 {
		t.Fatalf("feature messages between nodes: in %v, answers in %v, dropped %v", in, answers, dropped)
	}
	for i, s := range nodes {
		if n := s.RaceReports(); n > 0 {
			t.Fatalf("node %d reported %d data races", i, n)
		}
	}
}
