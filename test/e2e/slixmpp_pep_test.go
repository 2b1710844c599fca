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
	// Fresh accounts: A and B become contacts during the run, C must stay a
	// stranger, and A's PEP nodes must start empty.
	runSlixmppScript(t, "slixmpp_pep.py", "pep", 60*time.Second)
}

// The conversions between PEP and the older forms (XEP-0411 and XEP-0402 §5.3
// bookmarks with private XML, XEP-0398 avatars with the vCard and the XEP-0153
// presence hash), driven by a "legacy" and a "modern" slixmpp client of the
// same account. See testdata/slixmpp_conversion.py.
func TestSlixmppConversions(t *testing.T) {
	runSlixmppScript(t, "slixmpp_conversion.py", "conv", 60*time.Second)
}

// XEP-0313 with slixmpp's xep_0313 and xep_0441 plugins: the live stanza-id is the archive id, paging forwards
// and backwards with the RSM iterator, time bounds, the query form, metadata and preferences. See
// testdata/slixmpp_mam.py.
func TestSlixmppMAM(t *testing.T) {
	runSlixmppScript(t, "slixmpp_mam.py", "mam", 60*time.Second)
}

// runSlixmppScript runs testdata/script against the shared server with three
// fresh accounts (prefix a/b/c) sharing one password; the script prints
// "RESULT: PASS" when every scenario passed.
func runSlixmppScript(t *testing.T, script, prefix string, limit time.Duration) {
	t.Helper()
	const py = "/usr/bin/python3" // not the pyenv python on PATH (clients.md)
	if err := exec.Command(py, "-c", "import slixmpp").Run(); err != nil {
		harness.ToolMissing(t, "python3-slixmpp", fmt.Sprintf("import slixmpp with %s: %v", py, err))
	}
	srv := shared(t)
	host, port, _ := strings.Cut(srv.C2SAddr, ":")
	path, err := filepath.Abs(filepath.Join("testdata", script))
	if err != nil {
		t.Fatal(err)
	}
	pw := secret()
	a, b, c := newName(t, prefix+"a"), newName(t, prefix+"b"), newName(t, prefix+"c")
	for _, u := range []string{a, b, c} {
		srv.AddUser(t, u, pw)
	}
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	start := time.Now()
	secs := fmt.Sprint(int(limit.Seconds() / 2))
	out, err := exec.CommandContext(ctx, py, path, host, port, srv.Domain, srv.CAFile, a, b, c, pw, secs).CombinedOutput()
	t.Logf("slixmpp output (%v):\n%s", time.Since(start).Round(time.Millisecond), out)
	if err != nil || !strings.Contains(string(out), "RESULT: PASS") {
		t.Fatalf("slixmpp %s failed: %v (rerun the script with SLIX_LOG=DEBUG for the XML)", script, err)
	}
}
