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

// XEP-0045 multi-user chat with Debian's python3-slixmpp (xep_0045): discovery, instant and reserved rooms,
// configuration, history and subject, nicknames, private messages, kick/ban/voice with the permission errors,
// members-only and password rooms with invitations and a decline, anonymity, destruction, and persistence across
// a SIGKILL. Between the phases /debug/actors must show the room actors. See testdata/slixmpp_muc.py.
func TestSlixmppMUC(t *testing.T) {
	const py = "/usr/bin/python3" // not the pyenv python on PATH (clients.md)
	if err := exec.Command(py, "-c", "import slixmpp.plugins.xep_0045").Run(); err != nil {
		harness.ToolMissing(t, "python3-slixmpp", fmt.Sprintf("import slixmpp.plugins.xep_0045 with %s: %v", py, err))
	}
	srv := own(t, harness.Options{})
	script, err := filepath.Abs(filepath.Join("testdata", "slixmpp_muc.py"))
	if err != nil {
		t.Fatal(err)
	}
	pw := secret()
	a, b, c, d := newName(t, "muca"), newName(t, "mucb"), newName(t, "mucc"), newName(t, "mucd")
	for _, u := range []string{a, b, c, d} {
		srv.AddUser(t, u, pw)
	}
	run := func(phase string) {
		t.Helper()
		host, port, _ := strings.Cut(srv.C2SAddr, ":")
		ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
		defer cancel()
		start := time.Now()
		cmd := exec.CommandContext(ctx, py, script, phase, host, port, srv.Domain, srv.CAFile, a, b, c, d, pw, "90")
		out, err := cmd.CombinedOutput()
		t.Logf("slixmpp %s (%v):\n%s", phase, time.Since(start).Round(time.Millisecond), out)
		if err != nil || !strings.Contains(string(out), "RESULT: PASS") {
			t.Fatalf("slixmpp muc %s failed: %v (rerun the script with SLIX_LOG=DEBUG for the XML)", phase, err)
		}
	}
	run("before")
	srv.Kill()
	srv.Restart(t)
	run("after")
}

// The XEP-0313 room archive with slixmpp's xep_0313 and xep_0045: live stanza-ids equal to the archive ids,
// paging both ways, real JIDs only to the owner of a semi-anonymous room, with = occupant JID, a non-occupant
// reading an open room and a banned one refused, the history for a late joiner from the archive, metadata. See
// testdata/slixmpp_mucmam.py.
func TestSlixmppMUCArchive(t *testing.T) {
	runSlixmppScript(t, "slixmpp_mucmam.py", "mm", 60*time.Second)
}
