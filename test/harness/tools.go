package harness

import (
	"os"
	"os/exec"
	"testing"
)

// ToolMissing ends a test whose third-party tool is not installed: pkg is the
// Debian package that provides it (scripts/test-deps.sh installs it), detail
// says what was looked for and how it failed. With CI=true the test fails, as
// a missing tool there is a broken install step, not a reason to pass;
// elsewhere it is skipped, saying so.
func ToolMissing(t testing.TB, pkg, detail string) {
	t.Helper()
	msg := pkg + " is missing (" + detail + "): run scripts/test-deps.sh as root, or apt-get install -y " + pkg
	if os.Getenv("CI") == "true" {
		t.Fatal("CI=true, so this test may not skip: " + msg)
	}
	t.Skip(msg + "; skipped (it would fail with CI=true)")
}

// Chromium finds Debian's chromium (scripts/test-deps.sh installs it), ending the test through ToolMissing when
// there is none.
func Chromium(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	ToolMissing(t, "chromium", "no chromium, chromium-browser or google-chrome on PATH")
	return ""
}
