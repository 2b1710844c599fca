// Package etcdtest starts a private etcd server for tests: Debian's etcd (package etcd-server,
// scripts/test-deps.sh installs it) as a one-member cluster on free loopback ports, its data in a fresh
// directory, stopped and removed when the test ends. Nothing is shared with an etcd the machine may run (the
// package's own service is never started by the tests).
//
// The cluster tests (the protoactor-go etcd membership provider, see ARCHITECTURE.md) point their provider at
// Server.Endpoint; a test that needs etcd to go away while the nodes run calls Server.Stop.
//
// The fork in third_party/protoactor-go carries a small copy of this helper for its own tests
// (cluster/xmppd_etcd_test.go), as it is a module of its own and cannot import this one.
package etcdtest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/xmppd/xmppd/test/harness"
)

// Server is one running etcd.
type Server struct {
	Endpoint string // the client URL, http://127.0.0.1:<port>
	Dir      string // the data directory's parent; the server's log is etcd.log here
	cmd      *exec.Cmd
	exited   chan struct{} // closed when the process has exited
	stopOnce sync.Once
}

// Binary finds etcd on PATH (Debian installs /usr/bin/etcd); "" if there is none.
func Binary() string {
	p, err := exec.LookPath("etcd")
	if err != nil {
		return ""
	}
	return p
}

// Start starts a server for the test and stops it (removing its files) in t.Cleanup. A missing etcd-server
// package ends the test through harness.ToolMissing: a failure with CI=true, a skip that says so otherwise.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := Binary()
	if bin == "" {
		harness.ToolMissing(t, "etcd-server", "no etcd on PATH")
	}
	dir := t.TempDir()
	var lastErr error
	// The ports are picked free and then bound by etcd: another process may take one in between, so a
	// start that fails is tried again on new ports.
	for attempt := 0; attempt < 3; attempt++ {
		ports, err := freePorts(2)
		if err != nil {
			t.Fatal(err)
		}
		s := &Server{Dir: dir}
		if lastErr = s.start(bin, ports[0], ports[1]); lastErr == nil {
			t.Cleanup(s.Stop)
			return s
		}
	}
	t.Fatal(lastErr)
	return nil
}

// start runs etcd in the foreground (so that the process is ours to signal) and waits until it reports
// itself healthy; an error if it exits first (a port was taken, say) or is not healthy within 30s.
func (s *Server) start(bin string, clientPort, peerPort int) error {
	client := "http://127.0.0.1:" + strconv.Itoa(clientPort)
	peer := "http://127.0.0.1:" + strconv.Itoa(peerPort)
	logPath := filepath.Join(s.Dir, "etcd.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(bin,
		"--name", "xmppd-test",
		"--data-dir", filepath.Join(s.Dir, fmt.Sprintf("data-%d", clientPort)),
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", "xmppd-test="+peer, "--initial-cluster-state", "new")
	cmd.Stdout, cmd.Stderr = logf, logf
	// A test binary that is killed (go test's -timeout, ^C) runs no cleanup: etcd gets SIGKILL when its
	// parent dies, so no server outlives its test. Its data is in the test's temporary directory.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("etcd: %w", err)
	}
	s.cmd, s.exited, s.Endpoint = cmd, make(chan struct{}), client
	go func() { _ = cmd.Wait(); close(s.exited) }()

	deadline := time.Now().Add(30 * time.Second)
	for {
		if Healthy(client) {
			return nil
		}
		select {
		case <-s.exited:
			return fmt.Errorf("etcd exited before it was healthy:\n%s", tail(logPath))
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.Stop()
			return fmt.Errorf("etcd was not healthy within 30s:\n%s", tail(logPath))
		}
	}
}

// Healthy reports whether the etcd at endpoint answers its /health endpoint with health "true".
func Healthy(endpoint string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint+"/health", nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var b [256]byte
	n, _ := resp.Body.Read(b[:])
	return resp.StatusCode == http.StatusOK && strings.Contains(string(b[:n]), `"health":"true"`)
}

// Stop stops the server (SIGTERM; SIGKILL after 10s) and waits for it to exit. It may be called more than
// once, and before the test ends, by a test that needs etcd gone.
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.exited:
		case <-time.After(10 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.exited
		}
	})
}

// freePorts returns n distinct loopback ports that were free: all n are held open at once, so two of them
// cannot be the same.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// tail is the end of the log at path (its last 4 KiB), for an error message.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if len(b) > 4096 {
		b = b[len(b)-4096:]
	}
	return string(b)
}
