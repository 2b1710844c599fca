package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xmppd/xmppd/test/harness"
)

// docs/systemd/xmppd.service carries the hardening the README promises and passes systemd-analyze verify (with
// ExecStart pointing at the freshly built binary, since verify checks that the executable exists); any warning
// verify prints about the unit (an unknown key, a value it cannot parse) fails the test.
func TestSystemdUnit(t *testing.T) {
	root := harness.ModuleRoot()
	unit, err := os.ReadFile(filepath.Join(root, "docs/systemd/xmppd.service"))
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string][]string{}
	for _, l := range strings.Split(string(unit), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || l[0] == '#' || l[0] == '[' {
			continue
		}
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			t.Errorf("not a key=value line: %q", l)
			continue
		}
		keys[k] = append(keys[k], v)
	}
	for k, want := range map[string]string{
		"User": "xmppd", "StateDirectory": "xmppd", "ReadWritePaths": "/var/lib/xmppd", "NoNewPrivileges": "yes",
		"ProtectSystem": "strict", "CapabilityBoundingSet": "CAP_NET_BIND_SERVICE", "AmbientCapabilities": "CAP_NET_BIND_SERVICE",
		"ExecReload": "/bin/kill -HUP $MAINPID", "LimitNOFILE": "1048576",
	} {
		if got := keys[k]; len(got) != 1 || got[0] != want {
			t.Errorf("%s = %v, want %q", k, got, want)
		}
	}
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		harness.ToolMissing(t, "systemd", "systemd-analyze not on PATH")
	}
	bin, err := harness.Binary()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "xmppd.service")
	os.WriteFile(p, []byte(strings.ReplaceAll(string(unit), "/usr/local/bin/xmppd", bin)), 0o644)
	out, err := exec.Command("systemd-analyze", "verify", p).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, p) {
			t.Errorf("systemd-analyze verify: %s", l)
		}
	}
}
