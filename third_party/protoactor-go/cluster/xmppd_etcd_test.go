// xmppd patch (see XMPPD-PATCHES.md): a private etcd server for the tests of this fork. It is a small copy of
// xmppd's test/etcdtest, which this module cannot import: Debian's etcd (package etcd-server) on free
// loopback ports with its data in a temporary directory, stopped when the test ends. A missing etcd fails the
// test under CI=true and skips it otherwise.

package cluster_test

import (
	"fmt"
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
)

type etcdServer struct {
	Endpoint string
	dir      string
	cmd      *exec.Cmd
	exited   chan struct{}
	stopOnce sync.Once
}

// startEtcd starts etcd and returns its client endpoint (http://127.0.0.1:port).
func startEtcd(t *testing.T) string {
	return startEtcdServer(t).Endpoint
}

func startEtcdServer(t *testing.T) *etcdServer {
	t.Helper()
	bin, err := exec.LookPath("etcd")
	if err != nil {
		msg := "etcd is missing (package etcd-server): " + err.Error()
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true, so this test may not skip: " + msg)
		}
		t.Skip(msg)
	}
	dir := t.TempDir()
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		s := &etcdServer{dir: dir}
		if lastErr = s.start(bin, freeTCPPort(t), freeTCPPort(t)); lastErr == nil {
			t.Cleanup(s.Stop)
			return s
		}
	}
	t.Fatal(lastErr)
	return nil
}

func (s *etcdServer) start(bin string, clientPort, peerPort int) error {
	client := "http://127.0.0.1:" + strconv.Itoa(clientPort)
	peer := "http://127.0.0.1:" + strconv.Itoa(peerPort)
	logPath := filepath.Join(s.dir, "etcd.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	data := filepath.Join(s.dir, fmt.Sprintf("data-%d", clientPort))
	s.cmd = exec.Command(bin, "--name", "test", "--data-dir", data,
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", "test="+peer, "--initial-cluster-state", "new")
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	// No etcd outlives a test binary that is killed before its cleanup runs.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		return err
	}
	s.exited = make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(s.exited) }()
	s.Endpoint = client
	hc := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := hc.Get(client + "/health"); err == nil {
			var b [64]byte
			n, _ := resp.Body.Read(b[:])
			_ = resp.Body.Close()
			if strings.Contains(string(b[:n]), `"health":"true"`) {
				return nil
			}
		}
		select {
		case <-s.exited:
			out, _ := os.ReadFile(logPath)
			return fmt.Errorf("etcd exited before it was healthy:\n%s", out)
		case <-time.After(100 * time.Millisecond):
		}
	}
	s.Stop()
	return fmt.Errorf("etcd was not healthy within 30s")
}

// Stop stops etcd (SIGTERM, SIGKILL after 10s) and waits for it; it may be called more than once.
func (s *etcdServer) Stop() {
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
