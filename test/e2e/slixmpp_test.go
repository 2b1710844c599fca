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

// Interop with a client nobody on this project wrote: Debian's python3-slixmpp
// (installed by scripts/test-deps.sh). See testdata/slixmpp_chat.py.
func TestSlixmppInterop(t *testing.T) {
	const py = "/usr/bin/python3" // not the pyenv python on PATH (clients.md)
	if err := exec.Command(py, "-c", "import slixmpp").Run(); err != nil {
		harness.ToolMissing(t, "python3-slixmpp", fmt.Sprintf("import slixmpp with %s: %v", py, err))
	}
	srv := shared(t)
	host, port, _ := strings.Cut(srv.C2SAddr, ":")
	script, err := filepath.Abs(filepath.Join("testdata", "slixmpp_chat.py"))
	if err != nil {
		t.Fatal(err)
	}
	// "stock" lets slixmpp pick its SASL mechanism as a user's client
	// would; "PLAIN" pins one so that the rest (IBR, roster, subscription,
	// chat, ping) is checked even when mechanism selection fails.
	for _, mech := range []string{"", "PLAIN"} {
		name := mech
		if name == "" {
			name = "stock"
		}
		t.Run(name, func(t *testing.T) {
			// Fresh accounts each run: subscription tests on reused
			// accounts get no new 'subscribed' (clients.md).
			a, b := newName(t, "slixa"), newName(t, "slixb")
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, py, script, host, port, srv.Domain, srv.CAFile, a, b, secret(), "15", mech)
			out, err := cmd.CombinedOutput()
			t.Logf("slixmpp output:\n%s", out)
			if err != nil || !strings.Contains(string(out), "RESULT: PASS") {
				t.Fatalf("slixmpp interop failed: %v (rerun the script with SLIX_LOG=DEBUG for the XML)", err)
			}
		})
	}
}
