package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/xmppd/xmppd/test/harness"
)

// serviceActors is how many service actors of domain node s runs (/debug/actors).
func serviceActors(t testing.TB, s *testServer, domain string) int {
	t.Helper()
	res, err := http.Get("http://" + s.DebugAddr + "/debug/actors?format=json&kind=service&jid=" + url.QueryEscape(domain))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var snap struct {
		Counts map[string]int `json:"counts"`
	}
	if err := json.NewDecoder(res.Body).Decode(&snap); err != nil {
		t.Fatal(err)
	}
	return snap.Counts["service"]
}

// onlyHomeRuns fails unless exactly the node home runs a service actor of domain.
func onlyHomeRuns(t testing.TB, nodes []*testServer, domain string, home int) {
	t.Helper()
	for i, s := range nodes {
		n := serviceActors(t, s, domain)
		if want := map[bool]int{true: 1, false: 0}[i == home]; n != want {
			t.Errorf("node %d runs %d service actors of %s, want %d (its home is node %d)", i, n, domain, want, home)
		}
	}
}

// onNode is u with its host replaced by hostport (the same path on another node's HTTP listener).
func onNode(t testing.TB, u, hostport string) string {
	t.Helper()
	p, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	p.Host = hostport
	return p.String()
}

// TestClusterServicesOutside: the services' sides outside the actor tree in a 3-node cluster (issue 19). The
// upload and proxy services are each placed on one node, their home; each node runs its own HTTP listener and
// SOCKS5 relay, and every node shares one upload directory and signing key ([upload] dir, secret).
//   - XEP-0363: a slot asked over XMPP (answered by the home), the PUT sent to the HTTP listener of a node that
//     is not the home, then a GET on every node returns the bytes; a second PUT, on yet another node, is refused
//     as on one node (409: the home alone decides).
//   - XEP-0065: the streamhost the proxy names is its home's relay, and a bytestream through it moves the bytes
//     both ways; a party that reaches the relay of another node is refused (the connection could not reach the
//     home's table of waiting connections) rather than left waiting for an activation that cannot find it.
//   - Each service has exactly one service actor in the cluster, on its home.
func TestClusterServicesOutside(t *testing.T) {
	shared := t.TempDir()
	socks := freeLoopbackPorts(t, 3)
	nodes := startClusterEach(t, 3, automanagedMembership, func(i int) harness.Options {
		return harness.Options{Sections: map[string]string{
			"upload":  fmt.Sprintf("dir = %q\nsecret = \"a key every node of the cluster shares\"", shared),
			"proxy65": fmt.Sprintf("listen = \"127.0.0.1:%d\"", socks[i]),
		}}
	})
	dom := nodes[0].Domain
	upHome, pxHome := placedOn(t, nodes, "upload."+dom), placedOn(t, nodes, "proxy."+dom)
	t.Logf("upload.%s is placed on node %d, proxy.%s on node %d", dom, upHome, dom, pxHome)

	t.Run("upload", func(t *testing.T) {
		local, pw := nodes[0].user(t, "cup")
		c := mustLogin(t, nodes[(upHome+1)%3], local, pw, loginOpts{resource: "r"})
		body := randomBytes(t, 300_000)
		s := mustSlot(t, requestSlot(c, dom, "cluster.bin", int64(len(body)), "application/octet-stream"))
		if !strings.Contains(s.put, nodes[upHome].HTTPAddr) {
			t.Fatalf("the PUT URL %s is not on the home's HTTP listener %s", s.put, nodes[upHome].HTTPAddr)
		}
		other := (upHome + 1) % 3
		s.put = onNode(t, s.put, nodes[other].HTTPAddr)
		if res := putFile(t, s, body, "application/octet-stream"); res.StatusCode != http.StatusCreated {
			t.Fatalf("PUT on node %d (not the home): %s", other, res.Status)
		}
		third := (upHome + 2) % 3
		s.put = onNode(t, s.put, nodes[third].HTTPAddr)
		if res := putFile(t, s, body, "application/octet-stream"); res.StatusCode != http.StatusConflict {
			t.Fatalf("second PUT on node %d: %s, want 409", third, res.Status)
		}
		for i, n := range nodes {
			res, got := httpDo(t, http.MethodGet, onNode(t, s.get, n.HTTPAddr), nil)
			if res.StatusCode != http.StatusOK || !bytes.Equal(got, body) {
				t.Errorf("GET on node %d: %s, %d bytes (want %d)", i, res.Status, len(got), len(body))
			}
		}
		onlyHomeRuns(t, nodes, "upload."+dom, upHome)
	})

	t.Run("proxy65", func(t *testing.T) {
		la, pa := nodes[0].user(t, "cs5a")
		lb, pb := nodes[0].user(t, "cs5b")
		a := mustLogin(t, nodes[(pxHome+1)%3], la, pa, loginOpts{resource: "send"})
		b := mustLogin(t, nodes[(pxHome+2)%3], lb, pb, loginOpts{resource: "recv"})
		a.Send("<presence/>")
		b.Send("<presence/>")
		_, hostport := proxyOf(t, a, dom)
		if want := fmt.Sprintf("127.0.0.1:%d", socks[pxHome]); hostport != want {
			t.Fatalf("the streamhost is %s, want the home's relay %s", hostport, want)
		}
		// Both parties at another node's relay: refused at once (SOCKS5 reply not 0).
		other := fmt.Sprintf("127.0.0.1:%d", socks[(pxHome+1)%3])
		stray := streamAddr("stray", a.JID.String(), b.JID.String())
		for range 2 {
			c, code := socksConnect(t, other, stray)
			c.Close()
			if code == 0 {
				t.Fatalf("the relay of node %d (not the proxy's home) took a connection it cannot activate", (pxHome+1)%3)
			}
		}

		ca, cb := bytestream(t, a, b, dom, "cluster-sid", nil)
		relayBoth(t, ca, cb, 2<<20)
		onlyHomeRuns(t, nodes, "proxy."+dom, pxHome)
	})
}
