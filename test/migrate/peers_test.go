package migrate

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"mellium.im/sasl"

	"github.com/xmppd/xmppd/test/harness"
	"github.com/xmppd/xmppd/test/xmppclient"
)

// peerDir is a scratch directory the peer's own user can enter (the peers' tools switch to their system user
// when run as root). Removed when the test ends.
func peerDir(t *testing.T, owner string) string {
	t.Helper()
	d, err := os.MkdirTemp("", "xmppd-migrate-"+owner+"-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(d, 0o755)
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

func chownR(t *testing.T, dir, owner string) {
	t.Helper()
	if out, err := exec.Command("chown", "-R", owner+":"+owner, dir).CombinedOutput(); err != nil {
		t.Fatalf("chown %s: %v %s", dir, err, out)
	}
}

func needTool(t *testing.T, pkg, bin, sysUser string) {
	t.Helper()
	if _, err := exec.LookPath(bin); err != nil {
		harness.ToolMissing(t, pkg, bin+" not on PATH")
	}
	if _, err := user.Lookup(sysUser); err != nil {
		harness.ToolMissing(t, pkg, "no system user "+sysUser)
	}
	if os.Geteuid() != 0 {
		t.Skip("running " + pkg + "'s tools needs root (they switch to user " + sysUser + ")")
	}
}

// selfSigned writes a certificate for localhost (cert, key and both in one PEM) and returns the pool that trusts it.
func selfSigned(t *testing.T, dir string) (certFile, keyFile, pemFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "localhost"},
		DNSNames: []string{"localhost"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	c := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	k := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
	certFile, keyFile, pemFile = filepath.Join(dir, "localhost.crt"), filepath.Join(dir, "localhost.key"), filepath.Join(dir, "localhost.pem")
	os.WriteFile(certFile, c, 0o644)
	os.WriteFile(keyFile, k, 0o600)
	os.WriteFile(pemFile, append(append([]byte{}, k...), c...), 0o600)
	pool = x509.NewCertPool()
	pool.AppendCertsFromPEM(c)
	return
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func waitPort(t *testing.T, addr string, logFile string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	b, _ := os.ReadFile(logFile)
	t.Fatalf("%s does not listen after 60 s; log:\n%s", addr, b)
}

func mustRun(t *testing.T, dir string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// populate makes, through the peer's c2s port and a real client (mellium), what a migration must carry: alice and
// bob subscribed both ways with alice's item for bob named and grouped, carol's subscription request to alice
// left unanswered, and alice's vCard.
func populate(t *testing.T, target xmppclient.Target) {
	t.Helper()
	o := xmppclient.Options{Mechs: []sasl.Mechanism{sasl.ScramSha1}}
	alice := xmppclient.MustLogin(t, target, "alice", "alice-pw", withRes(o, "a"))
	bob := xmppclient.MustLogin(t, target, "bob", "bob-pw", withRes(o, "b"))
	alice.Send("<presence/>")
	bob.Send("<presence/>")
	alice.IQ("<iq type='set' id='rs1'><query xmlns='jabber:iq:roster'><item jid='bob@localhost' name='Bobby'><group>Friends</group></item></query></iq>")
	alice.Send("<presence to='bob@localhost' type='subscribe'/>")
	bob.Expect("alice's request", xmppclient.IsPresence("alice@localhost", "subscribe"))
	bob.Send("<presence to='alice@localhost' type='subscribed'/>")
	bob.Send("<presence to='alice@localhost' type='subscribe'/>")
	alice.Expect("bob's request", xmppclient.IsPresence("bob@localhost", "subscribe"))
	alice.Send("<presence to='bob@localhost' type='subscribed'/>")
	deadline := time.Now().Add(20 * time.Second)
	for {
		r := alice.IQ("<iq type='get' id='rg" + strconv.FormatInt(time.Now().UnixNano(), 10) + "'><query xmlns='jabber:iq:roster'/></iq>")
		if strings.Contains(r.String(), "subscription='both'") || strings.Contains(r.String(), `subscription="both"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("alice's roster on the peer never reached both: %s", r)
		}
		time.Sleep(200 * time.Millisecond)
	}
	alice.IQ("<iq type='set' id='vc1'><vCard xmlns='vcard-temp'><FN>Alice from the peer</FN></vCard></iq>")
	carol := xmppclient.MustLogin(t, target, "carol", "carol-pw", withRes(o, "c"))
	carol.Send("<presence to='alice@localhost' type='subscribe'/>")
	alice.Expect("carol's request", xmppclient.IsPresence("carol@localhost", "subscribe"))
	carol.Close()
	bob.Close()
	alice.Close()
}

func withRes(o xmppclient.Options, r string) xmppclient.Options { o.Resource = r; return o }

// checkMigrated imports files into a fresh xmppd and checks, through the live server, that the users log in
// with their old passwords (SCRAM-SHA-1, the peer's hash) and see their rosters and vCards.
func checkMigrated(t *testing.T, files ...string) {
	t.Helper()
	s := stopped(t)
	out, _ := run(t, s, append([]string{"import"}, files...)...)
	t.Logf("import summary:\n%s", out)
	if !strings.Contains(out, "accounts created 3") {
		t.Errorf("summary: want 3 accounts created:\n%s", out)
	}
	s.Restart(t)
	o := xmppclient.Options{Mechs: []sasl.Mechanism{sasl.ScramSha1}, Resource: "new"}
	alice := xmppclient.MustLoginTo(t, s, "alice", "alice-pw", o)
	r := alice.IQ("<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>").Child(xmppclient.NSRoster, "query")
	var bob *xmppclient.Elem
	for _, it := range r.Children(xmppclient.NSRoster, "item") {
		if it.Get("jid") == "bob@localhost" {
			bob = it
		}
	}
	if bob == nil || bob.Get("subscription") != "both" || bob.Get("name") != "Bobby" || bob.ChildText("group") != "Friends" {
		t.Errorf("alice's migrated roster: %s", r)
	}
	if vc := alice.IQ("<iq type='get' id='v1'><vCard xmlns='vcard-temp'/></iq>"); !strings.Contains(vc.String(), "Alice from the peer") {
		t.Errorf("alice's migrated vCard: %s", vc)
	}
	alice.Send("<presence/>")
	alice.Expect("carol's pending request, redelivered", xmppclient.IsPresence("carol@localhost", "subscribe"))
	bobc := xmppclient.MustLoginTo(t, s, "bob", "bob-pw", o)
	if r := bobc.IQ("<iq type='get' id='r2'><query xmlns='jabber:iq:roster'/></iq>"); !strings.Contains(r.String(), "alice@localhost") {
		t.Errorf("bob's migrated roster: %s", r)
	}
	// The peer kept SCRAM-SHA-1 keys only: SCRAM-SHA-256 cannot work with them (RFC 5802 §3: the keys are per
	// hash) until one PLAIN login over TLS lets the server derive the others; then it does.
	sha1only := strings.Contains(out, "credentials only for SCRAM-SHA-1")
	sha256 := xmppclient.Options{Mechs: []sasl.Mechanism{sasl.ScramSha256}, Resource: "sha256"}
	c, err := xmppclient.LoginTo(t, s, "bob", "bob-pw", sha256)
	if err == nil {
		c.Close()
	}
	if sha1only != (err != nil) {
		t.Errorf("SCRAM-SHA-256 before a PLAIN login: error %v, but the accounts have SCRAM-SHA-1 keys only: %v", err, sha1only)
	}
	xmppclient.MustLoginTo(t, s, "bob", "bob-pw", xmppclient.Options{Mechs: []sasl.Mechanism{sasl.Plain}, Resource: "plain"}).Close()
	xmppclient.MustLoginTo(t, s, "bob", "bob-pw", sha256).Close()
	if show, _ := run(t, s, "user", "show", "bob@localhost"); !strings.Contains(show, "SCRAM-SHA-256") {
		t.Errorf("bob's credentials after a PLAIN login:\n%s", show)
	}
	// A wrong password still fails.
	if c, err := xmppclient.LoginTo(t, s, "carol", "not-carols", o); err == nil {
		c.Close()
		t.Errorf("carol logged in with a wrong password")
	}
	xmppclient.MustLoginTo(t, s, "carol", "carol-pw", o).Close()
}

// Prosody 0.12: accounts (internal_hashed: SCRAM-SHA-1, 10000 iterations), roster and vCard made through a
// running Prosody, exported with its own migrator (prosody-migrator, input: the internal file store, output: the
// xep0227 storage driver, mod_storage_xep0227), imported into xmppd.
func TestMigrateFromProsody(t *testing.T) {
	needTool(t, "prosody", "prosodyctl", "prosody")
	needTool(t, "prosody", "prosody-migrator", "prosody")
	dir := peerDir(t, "prosody")
	data, out := filepath.Join(dir, "data"), filepath.Join(dir, "out")
	os.MkdirAll(data, 0o755)
	os.MkdirAll(out, 0o755)
	crt, key, _, pool := selfSigned(t, dir)
	port := freePort(t)
	cfg := filepath.Join(dir, "prosody.cfg.lua")
	os.WriteFile(cfg, []byte(`run_as_root = true
pidfile = "`+dir+`/prosody.pid"
data_path = "`+data+`"
interfaces = { "127.0.0.1" }
c2s_ports = { `+strconv.Itoa(port)+` }
c2s_direct_tls_ports = { }
s2s_ports = { }
modules_disabled = { "s2s" }
modules_enabled = { "roster"; "saslauth"; "tls"; "disco"; "vcard"; "private"; "posix" }
authentication = "internal_hashed"
storage = "internal"
c2s_require_encryption = true
log = { { levels = { min = "warn" }, to = "file", filename = "`+dir+`/prosody.log" } }
VirtualHost "localhost"
    ssl = { certificate = "`+crt+`"; key = "`+key+`" }
`), 0o644)
	for _, u := range [][2]string{{"alice", "alice-pw"}, {"bob", "bob-pw"}, {"carol", "carol-pw"}} {
		mustRun(t, dir, "prosodyctl", "--config", cfg, "register", u[0], "localhost", u[1])
	}
	cmd := exec.Command("prosody", "-F", "--config", cfg)
	cmd.Dir = dir
	logf, _ := os.Create(filepath.Join(dir, "stdout.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cmd.Process.Signal(os.Interrupt)
			done := make(chan struct{})
			go func() { cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				cmd.Process.Kill()
				<-done
			}
		}
	}
	t.Cleanup(stop)
	waitPort(t, "127.0.0.1:"+strconv.Itoa(port), filepath.Join(dir, "prosody.log"))
	populate(t, xmppclient.Target{Domain: "localhost", C2SAddr: "127.0.0.1:" + strconv.Itoa(port), TLS: xmppclient.TrustTLS("localhost", pool)})
	stop()

	// prosody-migrator writes the xep0227 output into Prosody's data path, which it takes from the compiled-in
	// CFG_DATADIR (its own config has no data_path): run a copy with that line pointing to our directory. It
	// switches to user prosody, so the directories become prosody's.
	src, err := os.ReadFile("/usr/bin/prosody-migrator")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(src), "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "CFG_DATADIR=") {
			lines[i] = "CFG_DATADIR='" + out + "';"
		}
	}
	migrator := filepath.Join(dir, "prosody-migrator")
	os.WriteFile(migrator, []byte(strings.Join(lines, "\n")), 0o755)
	mcfg := filepath.Join(dir, "migrator.cfg.lua")
	os.WriteFile(mcfg, []byte(`input { type = "internal"; path = "`+data+`"; hosts = { ["localhost"] = { "accounts", "roster", "vcard", "private" } } }
output { type = "xep0227"; path = "`+out+`" }
`), 0o644)
	chownR(t, dir, "prosody")
	mustRun(t, dir, migrator, "--config", mcfg, "input", "output")
	files, _ := filepath.Glob(filepath.Join(out, "*.xml"))
	if len(files) != 3 {
		t.Fatalf("prosody-migrator wrote %v, want one file per user", files)
	}
	b, _ := os.ReadFile(filepath.Join(out, "alice@localhost.xml"))
	t.Logf("Prosody's export of alice:\n%s", b)
	if !strings.Contains(string(b), "scram-credentials") {
		t.Fatalf("Prosody's export carries no SCRAM credentials:\n%s", b)
	}
	checkMigrated(t, files...)
}

// ejabberd 23.01: accounts (auth_password_format scram: SCRAM-SHA-1, 4096 iterations; or the default, plain),
// roster and vCard made through a running ejabberd, exported with `ejabberdctl export_piefxis DIR` (a main file
// including one file per host), imported into xmppd.
func TestMigrateFromEjabberd(t *testing.T) {
	needTool(t, "ejabberd", "ejabberdctl", "ejabberd")
	for _, format := range []string{"scram", "plain"} {
		t.Run(format, func(t *testing.T) { migrateFromEjabberd(t, format) })
	}
}

func migrateFromEjabberd(t *testing.T, format string) {
	dir := peerDir(t, "ejabberd")
	conf, spool, logs, out := filepath.Join(dir, "conf"), filepath.Join(dir, "spool"), filepath.Join(dir, "logs"), filepath.Join(dir, "out")
	for _, d := range []string{conf, spool, logs, out} {
		os.MkdirAll(d, 0o755)
	}
	_, _, pemFile, pool := selfSigned(t, conf)
	port, dist := freePort(t), freePort(t)
	if b, err := os.ReadFile("/etc/ejabberd/inetrc"); err == nil {
		os.WriteFile(filepath.Join(conf, "inetrc"), b, 0o644)
	}
	node := "xmppd-migrate-" + strconv.Itoa(dist) + "@localhost"
	// Epmd-less distribution on a port of our own (../shared/docs/peers.md §7): no epmd is started or killed.
	os.WriteFile(filepath.Join(conf, "ejabberdctl.cfg"), []byte(`ERLANG_NODE=`+node+`
ERL_DIST_PORT=`+strconv.Itoa(dist)+`
INET_DIST_INTERFACE=127.0.0.1
ERL_OPTIONS="-env ERL_CRASH_DUMP_BYTES 0 -setcookie xmppdmigrate"
EJABBERD_PID_PATH=`+dir+`/ejabberd.pid
EJABBERD_BYPASS_WARNINGS=true
`), 0o644)
	os.WriteFile(filepath.Join(conf, "ejabberd.yml"), []byte(`loglevel: warning
log_rotate_count: 0
hosts:
  - localhost
certfiles:
  - "`+pemFile+`"
acme:
  auto: false
listen:
  -
    port: `+strconv.Itoa(port)+`
    ip: "127.0.0.1"
    module: ejabberd_c2s
    starttls: true
    starttls_required: true
auth_method: internal
auth_password_format: `+format+`
acl:
  local:
    user_regexp: ""
access_rules:
  local:
    allow: local
  c2s:
    allow: all
api_permissions:
  "console commands":
    from:
      - ejabberd_ctl
    who: all
    what: "*"
modules:
  mod_roster: {}
  mod_vcard: {}
  mod_private: {}
  mod_offline: {}
`), 0o644)
	chownR(t, dir, "ejabberd")
	ctl := func(args ...string) string {
		return mustRun(t, dir, "ejabberdctl", append([]string{"--config-dir", conf, "--logs", logs, "--spool", spool}, args...)...)
	}
	cmd := exec.Command("ejabberdctl", "--config-dir", conf, "--logs", logs, "--spool", spool, "foreground")
	cmd.Dir = dir
	logf, _ := os.Create(filepath.Join(dir, "stdout.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = nil
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	running := true
	stop := func() {
		if !running {
			return
		}
		running = false
		exec.Command("ejabberdctl", "--config-dir", conf, "--logs", logs, "--spool", spool, "stop").Run()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	}
	t.Cleanup(stop)
	waitPort(t, "127.0.0.1:"+strconv.Itoa(port), filepath.Join(dir, "stdout.log"))
	ctl("started")
	for _, u := range [][2]string{{"alice", "alice-pw"}, {"bob", "bob-pw"}, {"carol", "carol-pw"}} {
		ctl("register", u[0], "localhost", u[1])
	}
	populate(t, xmppclient.Target{Domain: "localhost", C2SAddr: "127.0.0.1:" + strconv.Itoa(port), TLS: xmppclient.TrustTLS("localhost", pool)})
	ctl("export_piefxis", out)
	stop()
	mains, _ := filepath.Glob(filepath.Join(out, "*.xml"))
	var main string
	for _, m := range mains {
		b, _ := os.ReadFile(m)
		if strings.Contains(string(b), "<server-data") {
			main = m
		} else {
			t.Logf("ejabberd's export %s:\n%s", filepath.Base(m), b)
		}
	}
	if main == "" {
		t.Fatalf("export_piefxis wrote no main file: %v", mains)
	}
	checkMigrated(t, main)
}
