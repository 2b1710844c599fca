// xmppd patch (see XMPPD-PATCHES.md): the health endpoint listens on the remote's host, not 0.0.0.0, and the
// provider prints nothing to stdout.

package automanaged

import (
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/cluster/identitylookup/disthash"
	"github.com/asynkron/protoactor-go/remote"
)

func TestXmppdHealthListenerAndStdout(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	hostPort := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))

	// Everything written to stdout while the member starts, serves and stops is collected.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout := os.Stdout
	os.Stdout = w
	printed := make(chan []byte)
	go func() { b, _ := io.ReadAll(r); printed <- b }()
	restored := false
	restore := func() {
		if !restored {
			restored = true
			os.Stdout = stdout
			_ = w.Close()
		}
	}
	defer restore()

	p := NewWithConfig(100*time.Millisecond, port, hostPort)
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}))
	c := cluster.New(sys, cluster.Configure("xmppd-automanaged", p, disthash.New(), remote.Configure("127.0.0.1", 0)))
	c.StartMember()

	// The kernel's view: the listening sockets on the port, from /proc/net/tcp{,6}.
	if got := listeners(t, port); len(got) != 1 || got[0] != "0100007F" {
		t.Errorf("listening sockets on port %d: local addresses %v, want only 127.0.0.1 (0100007F), the remote's host", port, got)
	}

	resp, err := http.Get("http://" + hostPort + "/_health")
	if err != nil {
		t.Fatal(err)
	}
	var node NodeModel
	err = json.NewDecoder(resp.Body).Decode(&node)
	_ = resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || node.ID != sys.ID || node.Address != "127.0.0.1" {
		t.Errorf("/_health: status %d, node %+v, err %v", resp.StatusCode, node, err)
	}

	c.Shutdown(true)
	if _, err := net.DialTimeout("tcp", hostPort, time.Second); err == nil {
		t.Errorf("health endpoint %s still accepts connections after Shutdown", hostPort)
	}

	restore()
	if b := <-printed; len(b) > 0 {
		t.Errorf("printed to stdout: %q", b)
	}
}

// listeners returns the local addresses (hex, as /proc/net/tcp{,6} write them) of the sockets listening on
// port, IPv4 and IPv6.
func listeners(t *testing.T, port int) []string {
	t.Helper()
	var addrs []string
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			if f == "/proc/net/tcp" {
				t.Fatal(err)
			}
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			fields := strings.Fields(line)
			if len(fields) < 4 || fields[3] != "0A" { // 0A: LISTEN
				continue
			}
			host, hexPort, ok := strings.Cut(fields[1], ":")
			if p, err := strconv.ParseUint(hexPort, 16, 16); ok && err == nil && int(p) == port {
				addrs = append(addrs, host)
			}
		}
	}
	return addrs
}
