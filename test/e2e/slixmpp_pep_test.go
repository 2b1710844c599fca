package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xmppd/xmppd/test/harness"
)

// XEP-0163 PEP / XEP-0060 interop with Debian's python3-slixmpp: OMEMO nodes
// read by a stranger, +notify through XEP-0115 caps, XEP-0402 bookmarks with
// their publish-options, a failed precondition, and XEP-0084 avatars. See
// testdata/slixmpp_pep.py.
func TestSlixmppPEP(t *testing.T) {
	const py = "/usr/bin/python3" // not the pyenv python on PATH (clients.md)
	if err := exec.Command(py, "-c", "import slixmpp").Run(); err != nil {
		harness.ToolMissing(t, "python3-slixmpp", fmt.Sprintf("import slixmpp with %s: %v", py, err))
	}
	srv := shared(t)
	host, port, _ := strings.Cut(srv.C2SAddr, ":")
	script, err := filepath.Abs(filepath.Join("testdata", "slixmpp_pep.py"))
	if err != nil {
		t.Fatal(err)
	}
	// Fresh accounts: A and B become contacts during the run, C must stay a
	// stranger, and A's PEP nodes must start empty.
	pw := secret()
	a, b, c := newName(t, "pepa"), newName(t, "pepb"), newName(t, "pepc")
	for _, u := range []string{a, b, c} {
		srv.AddUser(t, u, pw)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	start := time.Now()
	cmd := exec.CommandContext(ctx, py, script, host, port, srv.Domain, srv.CAFile, a, b, c, pw, "30")
	out, err := cmd.CombinedOutput()
	t.Logf("slixmpp output (%v):\n%s", time.Since(start).Round(time.Millisecond), out)
	if err != nil || !strings.Contains(string(out), "RESULT: PASS") {
		t.Fatalf("slixmpp PEP interop failed: %v (rerun the script with SLIX_LOG=DEBUG for the XML)", err)
	}
}
