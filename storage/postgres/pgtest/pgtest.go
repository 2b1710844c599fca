// Package pgtest starts a private PostgreSQL server for tests: Debian's postgresql package (scripts/test-deps.sh
// installs it), initdb into a fresh directory, the server on a free loopback port with its unix socket in that
// directory, stopped and removed when the test ends. Nothing is shared with a PostgreSQL the machine may run.
//
// PostgreSQL refuses to run as root. When the tests run as root (CI does), initdb and postgres run as the
// "postgres" system user that the Debian package creates: the process credentials are set by os/exec
// (SysProcAttr.Credential), the directory is chowned to that user.
//
// The server runs with fsync=off: it lives as long as the test, and a crash of the machine is not what the
// tests look at. Everything else (WAL, synchronous_commit, MVCC, locks) is PostgreSQL's default.
package pgtest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/xmppd/xmppd/test/harness"
)

// Server is one running PostgreSQL.
type Server struct {
	Port   int
	Dir    string // data directory's parent: the unix socket and the log are here
	cmd    *exec.Cmd
	exited chan error // cmd.Wait's result
	cred   *syscall.Credential
	dbs    atomic.Int64
}

// BinDir finds the newest /usr/lib/postgresql/<version>/bin with initdb and postgres; "" if none.
func BinDir() string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int {
		va, _ := strconv.Atoi(filepath.Base(filepath.Dir(a)))
		vb, _ := strconv.Atoi(filepath.Base(filepath.Dir(b)))
		return vb - va
	})
	for _, d := range dirs {
		if isExec(filepath.Join(d, "initdb")) && isExec(filepath.Join(d, "postgres")) {
			return d
		}
	}
	return ""
}

func isExec(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0
}

// Start initialises and starts a server for the test, stopping it (and removing its files) in t.Cleanup. A
// missing postgresql package ends the test through harness.ToolMissing: a failure with CI=true, a skip that
// says so otherwise.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := BinDir()
	if bin == "" {
		harness.ToolMissing(t, "postgresql", "no /usr/lib/postgresql/<version>/bin/{initdb,postgres}")
	}
	s := &Server{}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			harness.ToolMissing(t, "postgresql", "running as root and there is no postgres user to run the server as: "+err.Error())
		}
		uid, _ := strconv.ParseUint(u.Uid, 10, 32)
		gid, _ := strconv.ParseUint(u.Gid, 10, 32)
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	// Not t.TempDir(): its parents are 0700 root-owned, which the postgres user cannot enter. /tmp is 1777.
	dir, err := os.MkdirTemp("", "xmppd-pgtest-")
	if err != nil {
		t.Fatal(err)
	}
	s.Dir = dir
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if s.cred != nil {
		if err := os.Chown(dir, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
			t.Fatal(err)
		}
	}
	data := filepath.Join(dir, "data")
	initdb := s.command(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "--auth=trust",
		"--encoding=UTF8", "--locale=C", "--no-sync")
	if out, err := initdb.CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}

	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		if lastErr = s.start(bin, data, port); lastErr == nil {
			break
		}
	}
	if lastErr != nil {
		t.Fatal(lastErr)
	}
	t.Cleanup(s.stop)
	return s
}

func (s *Server) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C", "LANG=C")
	cmd.Dir = s.Dir
	if s.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	}
	return cmd
}

// start runs postgres in the foreground (so that the process is ours to signal) and waits until it accepts
// connections; an error if it exits first (the port was taken, say).
func (s *Server) start(bin, data string, port int) error {
	logPath := filepath.Join(s.Dir, "postgres.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := s.command(filepath.Join(bin, "postgres"), "-D", data, "-p", strconv.Itoa(port), "-k", s.Dir,
		"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "full_page_writes=off",
		"-c", "max_connections=200", "-c", "shared_buffers=32MB")
	cmd.Stdout, cmd.Stderr = logf, logf
	// A test binary that is killed (go test's -timeout, ^C) runs no cleanup: SIGQUIT, PostgreSQL's immediate
	// shutdown, when the parent dies, so no server outlives its test. (Set by os/exec after the credentials.)
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGQUIT
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	s.Port = port
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		conn, err := pgx.Connect(ctx, s.DSN("postgres"))
		cancel()
		if err == nil {
			_ = conn.Close(context.Background())
			s.cmd, s.exited = cmd, exited
			return nil
		}
		select {
		case werr := <-exited:
			return fmt.Errorf("postgres exited before accepting connections (%v):\n%s", werr, tail(logPath))
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-exited
			return fmt.Errorf("postgres did not accept connections within 60s:\n%s", tail(logPath))
		}
	}
}

// stop asks for a fast shutdown (SIGINT: running transactions are rolled back, connections closed) and waits
// for the process; SIGKILL after 30s.
func (s *Server) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
}

// DSN is the keyword/value connection string of database db on this server.
func (s *Server) DSN(db string) string {
	return fmt.Sprintf("host=127.0.0.1 port=%d user=postgres dbname=%s sslmode=disable", s.Port, db)
}

// NewDatabase creates an empty database, dropped when the test ends, and returns its DSN.
func (s *Server) NewDatabase(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("xmppd_%d", s.dbs.Add(1))
	if err := s.Exec(context.Background(), "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// FORCE: a pool a failed test left open must not keep the database (and so the server) from going.
		if err := s.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Error(err)
		}
	})
	return s.DSN(name)
}

// Exec runs one statement in the postgres database as the superuser.
func (s *Server) Exec(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, s.DSN("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	return err
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 30 {
		lines = lines[len(lines)-30:]
	}
	return strings.Join(lines, "\n")
}
