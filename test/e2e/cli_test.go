package e2e

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The operator CLI against a running server: add/list/passwd/delete round
// trip, the password from stdin, and errors on stderr with a non-zero exit.
func TestCLIUserRoundTrip(t *testing.T) {
	srv := shared(t)
	u := newName(t, "cli")
	j := srv.bare(u)
	pw := secret()

	run := func(args ...string) (string, string) {
		t.Helper()
		out, stderr, err := srv.Run(args...)
		if err != nil {
			t.Fatalf("xmppd %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out, stderr)
		}
		return out, stderr
	}
	fails := func(args ...string) {
		t.Helper()
		out, stderr, err := srv.Run(args...)
		if err == nil {
			t.Errorf("xmppd %s succeeded, want a non-zero exit\nstdout: %s", strings.Join(args, " "), out)
			return
		}
		if strings.TrimSpace(stderr) == "" {
			t.Errorf("xmppd %s failed (%v) without a message on stderr", strings.Join(args, " "), err)
		}
	}
	listed := func(domain string) bool {
		t.Helper()
		args := []string{"user", "list"}
		if domain != "" {
			args = append(args, domain)
		}
		out, _ := run(args...)
		for _, line := range strings.Split(out, "\n") {
			if strings.TrimSpace(line) == j {
				return true
			}
		}
		return false
	}

	if out, _ := run("version"); strings.TrimSpace(out) == "" {
		t.Errorf("version printed nothing")
	}

	run("user", "add", j, "--password", pw)
	if !listed("") || !listed(srv.Domain) {
		t.Fatalf("%s not in user list after add", j)
	}
	fails("user", "add", j, "--password", "again") // exists
	mustLogin(t, srv, u, pw, loginOpts{})

	newPW := secret()
	run("user", "passwd", j, "--password", newPW)
	if _, err := login(t, srv, u, pw, loginOpts{}); err == nil {
		t.Errorf("old password works after user passwd")
	}
	mustLogin(t, srv, u, newPW, loginOpts{})

	run("user", "delete", j)
	if listed("") {
		t.Errorf("%s still listed after delete", j)
	}
	if _, err := login(t, srv, u, newPW, loginOpts{}); err == nil {
		t.Errorf("deleted user can still log in")
	}
	fails("user", "delete", j)                             // no such user
	fails("user", "passwd", j, "--password", "x")          // no such user
	fails("user", "add", "not a jid@@", "--password", "x") // invalid JID
	fails("no-such-subcommand")
	if _, _, err := srv.Run("user", "list", "-c", srv.ConfigPath+".missing"); err == nil {
		t.Errorf("user list with a missing config file succeeded")
	}

	// Password on stdin (one line).
	u2 := newName(t, "clistdin")
	pw2 := secret()
	if out, stderr, err := srv.RunInput(pw2+"\n", "user", "add", srv.bare(u2)); err != nil {
		t.Fatalf("user add with password on stdin: %v\n%s%s", err, out, stderr)
	}
	mustLogin(t, srv, u2, pw2, loginOpts{})
	// The stored secret is not the password: the database file never
	// contains it in clear (issue 2: SCRAM salted keys only).
	if fileContains(t, srv.DataDir, pw2) {
		t.Errorf("a file under data_dir contains the plaintext password")
	}
}

// fileContains reports whether any regular file under dir contains s.
func fileContains(t *testing.T, dir, s string) bool {
	t.Helper()
	found := false
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || found {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte(s)) {
			t.Logf("found in %s", p)
			found = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// xmppd check against the running shared server: the configuration is valid, every listener answers, the
// generated certificate covers the domain and is reported as self-signed; nothing is an error (exit 0).
func TestCLICheck(t *testing.T) {
	srv := shared(t)
	out, stderr, err := srv.Run("check", "-c", srv.ConfigPath)
	if err != nil {
		t.Fatalf("xmppd check: %v\n%s%s", err, out, stderr)
	}
	for _, want := range []string{"ok     configuration", "ok     c2s.listen " + srv.C2SAddr + " answers",
		"the certificate covers " + srv.Domain, "self-signed", "local name"} {
		if !strings.Contains(out, want) {
			t.Errorf("xmppd check output lacks %q:\n%s", want, out)
		}
	}
}
