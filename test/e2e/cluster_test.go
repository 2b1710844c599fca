package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xmppd/xmppd/storage/postgres/pgtest"
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
func startCluster(t *testing.T, n int, membership func(i int, remote, health []int) string) []*testServer {
	t.Helper()
	pg := pgtest.Start(t)
	dsn := pg.NewDatabase(t)
	remote := freeLoopbackPorts(t, n)
	health := freeLoopbackPorts(t, n)
	nodes := make([]*testServer, n)
	for i := range n {
		sec := fmt.Sprintf("enabled = true\nname = %q\nbind = \"127.0.0.1:%d\"\n%s", "xmppd-test", remote[i], membership(i, remote, health))
		nodes[i] = own(t, harness.Options{Sections: map[string]string{"storage": postgresSection(dsn), "cluster": sec}})
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

func automanagedMembership(i int, remote, health []int) string {
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
	for i, a := range accts {
		a.c = mustLogin(t, nodes[i%len(nodes)], a.local, a.pw, loginOpts{resource: "r"})
		fetchRoster(t, a.c)
		a.c.Send(`<presence/>`)
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
	if out == 0 || in == 0 || split == 0 {
		t.Fatalf("no cross-node traffic seen (out %d, in %d, split sessions %d): placement did not spread", out, in, split)
	}
	t.Logf("stanzas between nodes: out %d in %d; split sessions %d", out, in, split)
	// A client that leaves: its contact, on whatever node, sees it go.
	gone := accts[1].c.JID.String()
	accts[1].c.Close()
	accts[0].c.Expect("unavailable presence across nodes", xmppclient.IsPresence(gone, "unavailable"))
}
