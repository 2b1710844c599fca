package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xmppd/xmppd/test/harness"
)

// The standalone XEP-0060 service at pubsub.<domain> with Debian's python3-slixmpp (xep_0060): discovery,
// create and configure, publish with notification, retract, items with max_items, a whitelist node and
// affiliations, delete, and persistence across a SIGKILL and a restart. Between the two phases
// /debug/actors must show the service subtree. See testdata/slixmpp_pubsub.py.
func TestSlixmppPubSub(t *testing.T) {
	const py = "/usr/bin/python3" // not the pyenv python on PATH (clients.md)
	if err := exec.Command(py, "-c", "import slixmpp.plugins.xep_0060").Run(); err != nil {
		harness.ToolMissing(t, "python3-slixmpp", fmt.Sprintf("import slixmpp.plugins.xep_0060 with %s: %v", py, err))
	}
	srv := own(t, harness.Options{}) // its own data directory: the service's nodes start empty, and it restarts
	script, err := filepath.Abs(filepath.Join("testdata", "slixmpp_pubsub.py"))
	if err != nil {
		t.Fatal(err)
	}
	pw := secret()
	a, b, c := newName(t, "psa"), newName(t, "psb"), newName(t, "psc")
	for _, u := range []string{a, b, c} {
		srv.AddUser(t, u, pw)
	}
	run := func(phase string) {
		t.Helper()
		host, port, _ := strings.Cut(srv.C2SAddr, ":")
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		start := time.Now()
		out, err := exec.CommandContext(ctx, py, script, phase, host, port, srv.Domain, srv.CAFile, a, b, c, pw, "60").CombinedOutput()
		t.Logf("slixmpp %s (%v):\n%s", phase, time.Since(start).Round(time.Millisecond), out)
		if err != nil || !strings.Contains(string(out), "RESULT: PASS") {
			t.Fatalf("slixmpp pubsub %s failed: %v (rerun the script with SLIX_LOG=DEBUG for the XML)", phase, err)
		}
	}

	run("before")
	checkServiceTree(t, srv.DebugAddr, "pubsub."+srv.Domain)

	// Everything acknowledged is in storage: SIGKILL, not a clean shutdown, then the same data directory.
	srv.Kill()
	srv.Restart(t)
	run("after")
}

// checkServiceTree asks /debug/actors for the services subtree: the service actor of domain, and its node actors
// (the "persist" node at least, which the script used last).
func checkServiceTree(t *testing.T, debugAddr, domain string) {
	t.Helper()
	res, err := http.Get("http://" + debugAddr + "/debug/actors?kind=services,service,pubsub-node")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("/debug/actors: %s", res.Status)
	}
	type node struct {
		ID       string            `json:"id"`
		Kind     string            `json:"kind"`
		JID      string            `json:"jid"`
		Attrs    map[string]string `json:"attrs"`
		Children []*node           `json:"children"`
	}
	var snap struct {
		Root   *node          `json:"root"`
		Counts map[string]int `json:"counts"`
	}
	if err := json.NewDecoder(res.Body).Decode(&snap); err != nil {
		t.Fatal(err)
	}
	var service *node
	keys := map[string]bool{}
	var walk func(n *node)
	walk = func(n *node) {
		if n.Kind == "service" && n.JID == domain && n.ID == "services/"+domain {
			service = n
		}
		if n.Kind == "pubsub-node" && strings.HasPrefix(n.ID, "services/"+domain+"/") {
			keys[n.Attrs["key"]] = true
		}
		for _, k := range n.Children {
			walk(k)
		}
	}
	walk(snap.Root)
	if service == nil || !keys["persist"] {
		t.Errorf("/debug/actors: service actor %v, node actors %v (counts %v)", service != nil, keys, snap.Counts)
	}
}
