// Package harness starts the real xmppd binary on free loopback ports for
// black-box tests. It builds ./cmd/xmppd once per test binary, writes a
// config.toml into a temporary directory, runs `xmppd serve -c`, and stops the
// process when the test ends, asserting a clean exit.
//
// The harness deliberately talks to xmppd only through its public surfaces (the
// CLI, the config file, the network ports and the generated certificate) so
// that the tests built on it exercise what an operator and a client see.
package harness

import (
	"bufio"
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Options configures one server instance. The zero value gives a server for
// "localhost" with encryption required, registration off and fast SCRAM.
type Options struct {
	Domains           []string // default {"localhost"}
	RegistrationAllow bool
	RequireEncryption *bool // default true
	MaxStanzaSize     int   // 0 = server default
	ScramIterations   int   // default 4096 (tests favour speed over strength)
	ExtraTOML         string
	// CertFile and KeyFile, when set, are the server's certificate ([tls]) instead of the self-signed one it
	// generates; CAFile is then what clients trust (Server.CAFile, Server.CertPool).
	CertFile, KeyFile, CAFile string
	// TopTOML is written at the top of the config, before the first table (top-level keys).
	TopTOML string
	// HTTPTLS serves the public HTTP listener over TLS (the generated certificate) instead of plain HTTP.
	HTTPTLS bool
	// Sections adds lines to a table of the generated config: Sections["c2s"]
	// = "max_connections_per_ip = 2". Tables the harness does not write
	// itself (e.g. "roster") are appended with their header.
	Sections map[string]string
	// ExtraTOML is appended verbatim to the generated config; begin it with a
	// table header, or its keys land in the last table ([log]).
}

// Server is one running (or stopped) xmppd process.
type Server struct {
	C2SAddr, DirectTLSAddr, DebugAddr string
	// HTTPAddr is the public HTTP listener ([http]): plain HTTP on loopback unless Options.HTTPTLS.
	HTTPAddr                 string
	Domain                   string
	CAFile                   string
	CertPool                 *x509.CertPool
	DataDir, ConfigPath, Bin string
	LogPath                  string

	tb   testing.TB // nil for servers started with Launch
	opts Options

	mu      sync.Mutex
	cmd     *exec.Cmd
	logFile *os.File
	exited  chan struct{} // closed when cmd.Wait returns
	waitErr error
}

// Timeouts; generous because the machine is small and shared.
const (
	startTimeout = 30 * time.Second
	stopTimeout  = 10 * time.Second
	runTimeout   = 60 * time.Second
)

var (
	buildOnce sync.Once
	buildBin  string
	buildErr  error
	buildDir  string
)

// Main is a TestMain helper: it runs the tests and then removes the directory
// holding the xmppd binary built for them. Use it as
//
//	func TestMain(m *testing.M) { os.Exit(harness.Main(m)) }
func Main(m *testing.M) int {
	code := m.Run()
	Cleanup()
	return code
}

// Cleanup removes the built binary. Main calls it; call it yourself from a
// custom TestMain.
func Cleanup() {
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
}

// ModuleRoot finds the directory holding go.mod, walking up from the working
// directory (which `go test` sets to the package directory).
func ModuleRoot() string {
	dir, err := os.Getwd()
	if err != nil {
		panic(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			panic("harness: go.mod not found above the working directory")
		}
		dir = parent
	}
}

// Binary returns the path of the xmppd binary, building it on first use.
// XMPPD_BIN overrides the build with a prebuilt binary.
func Binary() (string, error) {
	buildOnce.Do(func() {
		if p := os.Getenv("XMPPD_BIN"); p != "" {
			buildBin, buildErr = filepath.Abs(p)
			return
		}
		dir, err := os.MkdirTemp("", "xmppd-e2e-bin-")
		if err != nil {
			buildErr = err
			return
		}
		buildDir = dir
		bin := filepath.Join(dir, "xmppd")
		args := []string{"build", "-o", bin}
		// A race-enabled test binary gets a race-enabled server: the
		// end-to-end tests are the best load the server's actors see in CI.
		if raceEnabled && os.Getenv("XMPPD_E2E_NORACE") == "" {
			args = append(args, "-race")
		}
		args = append(args, "./cmd/xmppd")
		cmd := exec.Command("go", args...)
		cmd.Dir = ModuleRoot()
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build ./cmd/xmppd: %v\n%s", err, out)
			return
		}
		buildBin = bin
	})
	return buildBin, buildErr
}

// freePorts returns n distinct loopback addresses whose ports were free a
// moment ago. The window between closing and the server binding is small;
// Start retries with new ports if the server fails to come up.
func freePorts(n int) ([]string, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var addrs []string
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		addrs = append(addrs, l.Addr().String())
	}
	return addrs, nil
}

// Start builds (once) and starts xmppd with the given options, waits until it
// accepts connections and registers t.Cleanup to stop it, failing the test if
// it does not exit 0 on SIGTERM.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	dir := t.TempDir()
	s, err := launch(t, dir, o)
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			s.LogTail(t, 100)
		}
		s.Stop()
	})
	return s
}

// Launch is Start without a testing.TB, for servers shared by a whole test
// binary (started from TestMain or a sync.Once). The caller must call
// Shutdown; dir holds config, data and log and is not removed.
func Launch(dir string, o Options) (*Server, error) {
	return launch(nil, dir, o)
}

func launch(tb testing.TB, dir string, o Options) (*Server, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	if len(o.Domains) == 0 {
		o.Domains = []string{"localhost"}
	}
	if o.ScramIterations == 0 {
		o.ScramIterations = 4096
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		addrs, err := freePorts(4)
		if err != nil {
			return nil, err
		}
		s := &Server{
			C2SAddr:       addrs[0],
			DirectTLSAddr: addrs[1],
			DebugAddr:     addrs[2],
			HTTPAddr:      addrs[3],
			Domain:        o.Domains[0],
			DataDir:       filepath.Join(dir, "data"),
			ConfigPath:    filepath.Join(dir, "config.toml"),
			LogPath:       filepath.Join(dir, "xmppd.log"),
			Bin:           bin,
			tb:            tb,
			opts:          o,
		}
		s.CAFile = filepath.Join(s.DataDir, "certs", s.Domain+".crt")
		if o.CertFile != "" {
			s.CAFile = o.CAFile
		}
		if err := os.MkdirAll(s.DataDir, 0o700); err != nil {
			return nil, err
		}
		if err := os.WriteFile(s.ConfigPath, []byte(s.configTOML()), 0o600); err != nil {
			return nil, err
		}
		if err := s.start(); err != nil {
			lastErr = err
			// A port taken between freePorts and bind shows up as an early
			// exit; anything else would fail again, but retrying is cheap.
			continue
		}
		return s, nil
	}
	return nil, lastErr
}

func tomlString(s string) string { return strconv.Quote(s) }

func (s *Server) configTOML() string {
	o := s.opts
	req := true
	if o.RequireEncryption != nil {
		req = *o.RequireEncryption
	}
	var b strings.Builder
	var doms []string
	for _, d := range o.Domains {
		doms = append(doms, tomlString(d))
	}
	fmt.Fprintf(&b, "domains = [%s]\n", strings.Join(doms, ", "))
	fmt.Fprintf(&b, "data_dir = %s\n", tomlString(s.DataDir))
	b.WriteString(o.TopTOML + "\n")
	fmt.Fprintf(&b, "[c2s]\nlisten = %s\ndirect_tls_listen = %s\nrequire_encryption = %t\n",
		tomlString(s.C2SAddr), tomlString(s.DirectTLSAddr), req)
	if o.MaxStanzaSize > 0 {
		fmt.Fprintf(&b, "max_stanza_size = %d\n", o.MaxStanzaSize)
	}
	written := map[string]bool{}
	section := func(name string) {
		written[name] = true
		if extra := o.Sections[name]; extra != "" {
			b.WriteString(extra + "\n")
		}
	}
	section("c2s")
	fmt.Fprintf(&b, "\n[tls]\ncert_file = %s\nkey_file = %s\n", tomlString(o.CertFile), tomlString(o.KeyFile))
	section("tls")
	// SQLite in the data directory unless a test names its engine (Sections["storage"] = `driver = "postgres"` …).
	b.WriteString("\n[storage]\n")
	if !strings.Contains(o.Sections["storage"], "driver") {
		b.WriteString("driver = \"sqlite\"\ndsn = \"\"\n")
	}
	section("storage")
	fmt.Fprintf(&b, "\n[auth]\nscram_iterations = %d\n", o.ScramIterations)
	section("auth")
	fmt.Fprintf(&b, "\n[registration]\nallow = %t\n", o.RegistrationAllow)
	section("registration")
	// The SOCKS5 proxy's default port (7777) would be shared by every server of a test run: off unless a test
	// asks for it (Sections["proxy65"] = `listen = "127.0.0.1:0"`, a free port the proxy advertises).
	b.WriteString("\n[proxy65]\n")
	if !strings.Contains(o.Sections["proxy65"], "listen") {
		b.WriteString("listen = \"\"\n")
	}
	section("proxy65")
	fmt.Fprintf(&b, "\n[http]\nlisten = %s\ntls = %t\n", tomlString(s.HTTPAddr), o.HTTPTLS)
	section("http")
	fmt.Fprintf(&b, "\n[debug]\nlisten = %s\n", tomlString(s.DebugAddr))
	section("debug")
	b.WriteString("\n[log]\nlevel = \"debug\"\nformat = \"json\"\n")
	section("log")
	names := make([]string, 0, len(o.Sections))
	for name := range o.Sections {
		if !written[name] {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		fmt.Fprintf(&b, "\n[%s]\n%s\n", name, o.Sections[name])
	}
	if o.ExtraTOML != "" {
		b.WriteString("\n")
		b.WriteString(o.ExtraTOML)
		b.WriteString("\n")
	}
	return b.String()
}

// start runs the process and waits for readiness.
func (s *Server) start() error {
	lf, err := os.OpenFile(s.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	fmt.Fprintf(lf, "=== harness: starting %s serve -c %s at %s\n", s.Bin, s.ConfigPath, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(s.Bin, "serve", "-c", s.ConfigPath)
	cmd.Stdout = lf
	cmd.Stderr = lf
	cmd.Dir = filepath.Dir(s.ConfigPath)
	// Own process group, so a stray ^C to the test does not reach it first
	// and Kill can take any children with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return err
	}
	exited := make(chan struct{})
	s.mu.Lock()
	if s.logFile != nil && s.logFile != lf {
		s.logFile.Close() // from a run that exited on its own
	}
	s.cmd = cmd
	s.logFile = lf
	s.exited = exited
	s.waitErr = nil
	s.mu.Unlock()
	go func() {
		err := cmd.Wait()
		s.mu.Lock()
		s.waitErr = err
		s.mu.Unlock()
		close(exited)
	}()

	deadline := time.Now().Add(startTimeout)
	for {
		select {
		case <-exited:
			s.mu.Lock()
			werr := s.waitErr
			s.cmd = nil
			s.mu.Unlock()
			lf.Close()
			return fmt.Errorf("xmppd exited during startup (%v); log tail:\n%s", werr, s.tail(40))
		default:
		}
		if s.ready() {
			pool, err := loadPool(s.CAFile)
			if err == nil {
				s.CertPool = pool
				return nil
			}
		}
		if time.Now().After(deadline) {
			s.kill()
			return fmt.Errorf("xmppd not ready after %v (c2s %s, direct TLS %s, cert %s); log tail:\n%s",
				startTimeout, s.C2SAddr, s.DirectTLSAddr, s.CAFile, s.tail(40))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *Server) ready() bool {
	// The HTTP listener starts last, so it goes first: until it is up, the c2s ports (whose connect-rate limits
	// some tests measure) are not probed again and again.
	for _, a := range []string{s.HTTPAddr, s.C2SAddr, s.DirectTLSAddr} {
		c, err := net.DialTimeout("tcp", a, 200*time.Millisecond)
		if err != nil {
			return false
		}
		c.Close()
	}
	return true
}

func loadPool(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, errors.New("no PEM block (yet)")
	}
	if _, err := x509.ParseCertificate(blk.Bytes); err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, errors.New("no certificate in PEM")
	}
	return pool, nil
}

// PID is the id of the server process, 0 when none was started: a benchmark reads the server's own CPU time
// from /proc/PID/stat.
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil || s.cmd.Process == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// Running reports whether the process is alive.
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return false
	}
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

// Signal sends sig to the server process (no-op when it is not running).
func (s *Server) Signal(sig os.Signal) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return errors.New("harness: server not running")
	}
	return s.cmd.Process.Signal(sig)
}

// WaitExit waits up to d for the process to exit and returns its exit code
// (-1 if killed by a signal). ok is false on timeout.
func (s *Server) WaitExit(d time.Duration) (code int, ok bool) {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.mu.Unlock()
	if cmd == nil {
		return 0, false
	}
	select {
	case <-exited:
	case <-time.After(d):
		return 0, false
	}
	return cmd.ProcessState.ExitCode(), true
}

// Shutdown is Stop returning its outcome instead of failing a test: SIGTERM,
// wait up to 10 s (then SIGKILL), and an error unless the exit code was 0.
// Calling it on a stopped server returns nil.
func (s *Server) Shutdown() error {
	s.mu.Lock()
	cmd, exited, lf := s.cmd, s.exited, s.logFile
	s.mu.Unlock()
	if cmd == nil {
		return nil
	}
	defer func() {
		s.mu.Lock()
		s.cmd = nil
		s.mu.Unlock()
		lf.Close()
	}()
	select {
	case <-exited:
		// Already gone (crashed or killed): report it unless Kill was used,
		// which clears cmd.
		return fmt.Errorf("xmppd had already exited: %v", cmd.ProcessState)
	default:
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(stopTimeout):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
		return fmt.Errorf("xmppd did not exit within %v of SIGTERM; killed", stopTimeout)
	}
	if code := cmd.ProcessState.ExitCode(); code != 0 {
		return fmt.Errorf("xmppd exited with %v after SIGTERM, want 0", cmd.ProcessState)
	}
	if n := s.RaceReports(); n > 0 {
		return fmt.Errorf("the race-enabled xmppd reported %d data races (see %s)", n, s.LogPath)
	}
	return nil
}

// RaceReports counts the data races a race-enabled server has written to its
// log so far (they go to stderr, which the harness captures).
func (s *Server) RaceReports() int {
	b, err := os.ReadFile(s.LogPath)
	if err != nil {
		return 0
	}
	return bytes.Count(b, []byte("WARNING: DATA RACE"))
}

// Stop sends SIGTERM and waits; the owning test fails if the process does not
// exit 0 within 10 s. It is idempotent.
func (s *Server) Stop() {
	if err := s.Shutdown(); err != nil {
		if s.tb != nil {
			s.tb.Errorf("harness: %v; log tail:\n%s", err, s.tail(100))
		} else {
			fmt.Fprintf(os.Stderr, "harness: %v; log tail:\n%s\n", err, s.tail(100))
		}
	}
}

// Kill sends SIGKILL (for crash tests) and waits for the process to go.
func (s *Server) Kill() { s.kill() }

func (s *Server) kill() {
	s.mu.Lock()
	cmd, exited, lf := s.cmd, s.exited, s.logFile
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-exited
	lf.Close()
}

// Restart starts the server again with the same config and data directory
// (after Stop or Kill; a running server is stopped first).
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	if s.Running() {
		if err := s.Shutdown(); err != nil {
			t.Errorf("harness: restart: %v", err)
		}
	}
	if err := s.start(); err != nil {
		t.Fatalf("harness: restart: %v", err)
	}
}

// AddUser creates local@domain with the given password through the CLI.
func (s *Server) AddUser(t testing.TB, local, password string) {
	t.Helper()
	j := local + "@" + s.Domain
	if _, stderr, err := s.Run("user", "add", j, "--password", password); err != nil {
		t.Fatalf("harness: xmppd user add %s: %v\nstderr: %s", j, err, stderr)
	}
}

// Run runs another xmppd subcommand against this server's config; "-c FILE"
// is appended unless args already name a config.
func (s *Server) Run(args ...string) (stdout, stderr string, err error) {
	return s.RunInput("", args...)
}

// RunInput is Run with the given text on stdin.
func (s *Server) RunInput(stdin string, args ...string) (stdout, stderr string, err error) {
	hasConfig := false
	for _, a := range args {
		if a == "-c" || a == "--c" || a == "-config" || a == "--config" || strings.HasPrefix(a, "-c=") || strings.HasPrefix(a, "--config=") {
			hasConfig = true
		}
	}
	if !hasConfig {
		args = append(args, "-c", s.ConfigPath)
	}
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.Bin, args...)
	cmd.Dir = filepath.Dir(s.ConfigPath)
	var out, errb bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &errb
	cmd.Stdin = strings.NewReader(stdin)
	err = cmd.Run()
	return out.String(), errb.String(), err
}

// LogTail logs the last n lines of the server's output to t.
func (s *Server) LogTail(t testing.TB, n int) {
	t.Helper()
	t.Logf("xmppd log (%s), last %d lines:\n%s", s.LogPath, n, s.tail(n))
}

// LogContains reports whether the server log contains sub (for checks such as
// "never logs a password").
func (s *Server) LogContains(sub string) bool {
	b, err := os.ReadFile(s.LogPath)
	return err == nil && bytes.Contains(b, []byte(sub))
}

func (s *Server) tail(n int) string {
	f, err := os.Open(s.LogPath)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64*1024), 4*1024*1024)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}
