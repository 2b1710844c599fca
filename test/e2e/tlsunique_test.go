package e2e

// Channel binding for clients that know only tls-unique (issue 11 item 7),
// and the downgrade rule that must survive it. See docs/channel-binding.md.
//
// Private servers from test/harness, the shared raw-socket client
// (xmppclient.Raw) and a SCRAM-SHA-256 client written here from RFC 5802 that
// takes arbitrary GS2 flags and binding data, so that a test can send the
// tls-unique of another connection or of none.

import (
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xmppd/xmppd/test/harness"
	"github.com/xmppd/xmppd/test/xmppclient"
)

const tuNSCB = "urn:xmpp:sasl-cb:0" // XEP-0440

// tuServer starts a private server for one test (default options:
// encryption required, PLAIN allowed over TLS, as a user's server would be).
func tuServer(t *testing.T) *harness.Server {
	t.Helper()
	return harness.Start(t, harness.Options{})
}

// tuDial connects over STARTTLS or direct TLS with cfg (trusting srv's
// certificate) and returns the features of the encrypted stream.
func tuDial(t *testing.T, srv *harness.Server, direct bool, cfg *tls.Config) (*xmppclient.Raw, *xmppclient.Elem) {
	t.Helper()
	cfg = cfg.Clone()
	cfg.RootCAs, cfg.ServerName = srv.CertPool, srv.Domain
	r := xmppclient.MustDialRaw(t, xmppclient.TargetOf(srv), xmppclient.RawOptions{Direct: direct, TLS: cfg})
	_, f := r.Open()
	if direct {
		return r, f
	}
	if f.Child(xmppclient.NSTLS, "starttls") == nil {
		t.Fatalf("no STARTTLS offered: %s", f)
	}
	return r, r.StartTLS()
}

func tuMechanisms(f *xmppclient.Elem) []string {
	var out []string
	for _, e := range f.Child(xmppclient.NSSASL, "mechanisms").Children(xmppclient.NSSASL, "mechanism") {
		out = append(out, strings.TrimSpace(e.Text))
	}
	return out
}

// tuCBTypes returns the XEP-0440 channel binding types of the features, nil
// when <sasl-channel-binding/> is absent.
func tuCBTypes(f *xmppclient.Elem) []string {
	cb := f.Child(tuNSCB, "sasl-channel-binding")
	if cb == nil {
		return nil
	}
	out := []string{}
	for _, e := range cb.Children(tuNSCB, "channel-binding") {
		out = append(out, e.Get("type"))
	}
	return out
}

// tuNext is r's next element, failing the test on a read error.
func tuNext(r *xmppclient.Raw) *xmppclient.Elem {
	r.T.Helper()
	e, err := r.Next(r.Timeout)
	if err != nil {
		r.T.Fatalf("read: %v", err)
	}
	return e
}

// tuReopen restarts the stream after <success/> and returns the new features.
func tuReopen(r *xmppclient.Raw) *xmppclient.Elem {
	r.T.Helper()
	r.Reset()
	_, f := r.Open()
	return f
}

// tuSCRAM runs SCRAM-SHA-256[-PLUS] (RFC 5802, RFC 7677) on r with the given
// GS2 flag ("n", "y" or "p=<type>") and binding data, and returns the
// server's final element. On <success/> the server signature is verified.
func tuSCRAM(r *xmppclient.Raw, user, password, flag string, cbData []byte) *xmppclient.Elem {
	r.T.Helper()
	mech := "SCRAM-SHA-256"
	if strings.HasPrefix(flag, "p=") {
		mech += "-PLUS"
	}
	nb := make([]byte, 18)
	rand.Read(nb)
	cnonce := base64.RawStdEncoding.EncodeToString(nb)
	gs2 := flag + ",,"
	first := "n=" + user + ",r=" + cnonce
	r.Write("<auth xmlns='" + xmppclient.NSSASL + "' mechanism='" + mech + "'>" +
		base64.StdEncoding.EncodeToString([]byte(gs2+first)) + "</auth>")
	e := tuNext(r)
	if !e.Is(xmppclient.NSSASL, "challenge") {
		return e
	}
	sf, err := base64.StdEncoding.DecodeString(e.Text)
	if err != nil {
		r.T.Fatalf("challenge: %v", err)
	}
	var nonce string
	var salt []byte
	iter := 0
	for _, a := range strings.Split(string(sf), ",") {
		k, v, _ := strings.Cut(a, "=")
		switch k {
		case "r":
			nonce = v
		case "s":
			salt, _ = base64.StdEncoding.DecodeString(v)
		case "i":
			iter, _ = strconv.Atoi(v)
		}
	}
	if !strings.HasPrefix(nonce, cnonce) || len(salt) == 0 || iter < 4096 {
		r.T.Fatalf("bad server-first-message %q", sf)
	}
	withoutProof := "c=" + base64.StdEncoding.EncodeToString(append([]byte(gs2), cbData...)) + ",r=" + nonce
	authMsg := first + "," + string(sf) + "," + withoutProof
	salted, err := pbkdf2.Key(sha256.New, password, salt, iter, sha256.Size)
	if err != nil {
		r.T.Fatal(err)
	}
	mac := func(k []byte, m string) []byte {
		h := hmac.New(sha256.New, k)
		h.Write([]byte(m))
		return h.Sum(nil)
	}
	clientKey := mac(salted, "Client Key")
	stored := sha256.Sum256(clientKey)
	sig := mac(stored[:], authMsg)
	proof := make([]byte, len(clientKey))
	for i := range proof {
		proof[i] = clientKey[i] ^ sig[i]
	}
	r.Write("<response xmlns='" + xmppclient.NSSASL + "'>" +
		base64.StdEncoding.EncodeToString([]byte(withoutProof+",p="+base64.StdEncoding.EncodeToString(proof))) + "</response>")
	e = tuNext(r)
	if e.Is(xmppclient.NSSASL, "success") {
		v, _ := base64.StdEncoding.DecodeString(e.Text)
		if want := "v=" + base64.StdEncoding.EncodeToString(mac(mac(salted, "Server Key"), authMsg)); string(v) != want {
			r.T.Fatalf("server signature %q, want %q: the server does not know the key", v, want)
		}
	}
	return e
}

// ---- raw tests ----

// A client capped at TLS 1.2 sees tls-unique in the XEP-0440 list and logs in
// with SCRAM-SHA-256-PLUS bound to tls-unique (RFC 5929 §3), over STARTTLS and
// direct TLS.
func TestTLSUniqueSCRAMPlus(t *testing.T) {
	srv := tuServer(t)
	user, pw := xmppclient.NewAccount(t, srv, "turaw")
	for _, direct := range []bool{false, true} {
		t.Run(map[bool]string{false: "starttls", true: "direct"}[direct], func(t *testing.T) {
			c, f := tuDial(t, srv, direct, &tls.Config{MaxVersion: tls.VersionTLS12})
			cs := c.TLSState()
			if cs.Version != tls.VersionTLS12 || len(cs.TLSUnique) == 0 {
				t.Fatalf("TLS %s, tls-unique %x", tls.VersionName(cs.Version), cs.TLSUnique)
			}
			if !slices.Contains(tuMechanisms(f), "SCRAM-SHA-256-PLUS") {
				t.Fatalf("SCRAM-SHA-256-PLUS not offered: %s", f)
			}
			// crypto/tls negotiates extended master secret, so tls-exporter
			// is defined on this TLS 1.2 connection too (RFC 9266).
			if got, want := tuCBTypes(f), []string{"tls-exporter", "tls-unique", "tls-server-end-point"}; !slices.Equal(got, want) {
				t.Fatalf("XEP-0440 types %v, want %v: %s", got, want, f)
			}
			r := tuSCRAM(c, user, pw, "p=tls-unique", cs.TLSUnique)
			if !r.Is(xmppclient.NSSASL, "success") {
				t.Fatalf("SCRAM-SHA-256-PLUS with tls-unique: %s", r)
			}
			if f := tuReopen(c); f.Child(xmppclient.NSBind, "bind") == nil {
				t.Fatalf("no <bind/> after SCRAM: %s", f)
			}
		})
	}
}

// The negative twins. Supporting tls-unique must not open a way around
// channel binding: tls-unique data of another connection (a MITM relaying
// the exchange) fails; on TLS 1.3 tls-unique is neither announced nor
// accepted; and a client that sends "y" while -PLUS was offered is refused on
// both TLS versions (RFC 5802 §6), because -PLUS is offered on both: a MITM
// chooses the TLS version of its own connection to the server.
func TestTLSUniqueDowngradeRefused(t *testing.T) {
	srv := tuServer(t)
	user, pw := xmppclient.NewAccount(t, srv, "tuneg")
	refused := func(t *testing.T, r *xmppclient.Elem) {
		t.Helper()
		if !r.Is(xmppclient.NSSASL, "failure") || r.Child(xmppclient.NSSASL, "not-authorized") == nil {
			t.Fatalf("got %s, want <failure><not-authorized/></failure>", r)
		}
	}
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		for _, direct := range []bool{false, true} {
			name := strings.ReplaceAll(tls.VersionName(v), " ", "") + map[bool]string{false: "/starttls", true: "/direct"}[direct]
			t.Run(name+"/y-flag", func(t *testing.T) {
				c, f := tuDial(t, srv, direct, &tls.Config{MinVersion: v, MaxVersion: v})
				if !slices.Contains(tuMechanisms(f), "SCRAM-SHA-256-PLUS") {
					t.Fatalf("-PLUS not offered on %s: %s", tls.VersionName(v), f)
				}
				refused(t, tuSCRAM(c, user, pw, "y", nil))
			})
		}
	}
	t.Run("TLS1.2/tls-unique-of-another-connection", func(t *testing.T) {
		other, _ := tuDial(t, srv, false, &tls.Config{MaxVersion: tls.VersionTLS12})
		c, _ := tuDial(t, srv, false, &tls.Config{MaxVersion: tls.VersionTLS12})
		refused(t, tuSCRAM(c, user, pw, "p=tls-unique", other.TLSState().TLSUnique))
	})
	t.Run("TLS1.3/tls-unique-undefined", func(t *testing.T) {
		c, f := tuDial(t, srv, false, &tls.Config{MinVersion: tls.VersionTLS13})
		if got, want := tuCBTypes(f), []string{"tls-exporter", "tls-server-end-point"}; !slices.Equal(got, want) {
			t.Fatalf("XEP-0440 types on TLS 1.3 %v, want %v", got, want)
		}
		// What Python's ssl hands slixmpp as "tls-unique" on TLS 1.3 (the
		// client Finished): whatever the bytes, there is no such binding.
		refused(t, tuSCRAM(c, user, pw, "p=tls-unique", make([]byte, 32)))
		// The same stream still works with a binding that exists.
		cs := c.TLSState()
		ekm, err := cs.ExportKeyingMaterial("EXPORTER-Channel-Binding", nil, 32)
		if err != nil {
			t.Fatal(err)
		}
		if r := tuSCRAM(c, user, pw, "p=tls-exporter", ekm); !r.Is(xmppclient.NSSASL, "success") {
			t.Fatalf("tls-exporter after a refused tls-unique: %s", r)
		}
	})
}

// ---- slixmpp ----

type tuSlixReport struct {
	TLS      string `json:"tls"`
	Attempts []struct {
		Mech string `json:"mech"`
		GS2  string `json:"gs2"` // "" for mechanisms other than SCRAM
	} `json:"attempts"`
	Failures  []string `json:"failures"`
	Succeeded string   `json:"succeeded"` // "" if none
	CBTypes   []string `json:"cb_types"`
}

// tuSlixmpp runs testdata/slixmpp_login.py and returns its report and
// whether the session started.
func tuSlixmpp(t *testing.T, srv *harness.Server, user, pw string, direct bool, tlsMax string) (tuSlixReport, bool) {
	t.Helper()
	const py = "/usr/bin/python3" // not the pyenv python on PATH
	if err := exec.Command(py, "-c", "import slixmpp").Run(); err != nil {
		harness.ToolMissing(t, "python3-slixmpp", fmt.Sprintf("import slixmpp with %s: %v", py, err))
	}
	script, err := filepath.Abs(filepath.Join("testdata", "slixmpp_login.py"))
	if err != nil {
		t.Fatal(err)
	}
	addr, mode := srv.C2SAddr, "starttls"
	if direct {
		addr, mode = srv.DirectTLSAddr, "direct"
	}
	host, port, _ := strings.Cut(addr, ":")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, py, script, host, port, srv.Domain, srv.CAFile, user, pw, mode, tlsMax, "20").CombinedOutput()
	t.Logf("slixmpp output:\n%s", out)
	var rep tuSlixReport
	for _, line := range strings.Split(string(out), "\n") {
		if j, ok := strings.CutPrefix(line, "REPORT: "); ok {
			if err := json.Unmarshal([]byte(j), &rep); err != nil {
				t.Fatalf("report: %v", err)
			}
		}
	}
	return rep, err == nil && strings.Contains(string(out), "RESULT: PASS")
}

// tuServerAuthMechanism returns the mechanism the server logged for the
// authentication of user ("" if none).
func tuServerAuthMechanism(t *testing.T, srv *harness.Server, user string) string {
	t.Helper()
	b, err := os.ReadFile(srv.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) != nil {
			continue
		}
		if m["message"] == "authenticated" && m["jid"] == user+"@"+srv.Domain {
			s, _ := m["mechanism"].(string)
			return s
		}
	}
	return ""
}

// slixmpp 1.8.3 (Debian) knows one channel binding type, tls-unique, and
// ignores XEP-0440. Where tls-unique exists (TLS 1.2) its first choice,
// SCRAM-SHA-512-PLUS with p=tls-unique, must succeed: one attempt, no
// <failure/>, over STARTTLS and direct TLS.
//
// Against its stock TLS 1.3 the server keeps offering -PLUS (tls-exporter,
// tls-server-end-point) and keeps refusing "y": slixmpp then cannot do SCRAM
// at all and ends with PLAIN. That is asserted as the security property it is
// (no SCRAM exchange with "y" succeeds while -PLUS is offered), not as a
// wish; docs/channel-binding.md explains why withholding -PLUS on TLS 1.3
// would hand every client's login to a man in the middle.
func TestTLSUniqueSlixmpp(t *testing.T) {
	srv := tuServer(t)
	for _, direct := range []bool{false, true} {
		mode := map[bool]string{false: "starttls", true: "direct"}[direct]
		t.Run(mode+"/tls1.2", func(t *testing.T) {
			user, pw := xmppclient.NewAccount(t, srv, "tuslix")
			rep, ok := tuSlixmpp(t, srv, user, pw, direct, "1.2")
			if !ok {
				t.Fatal("slixmpp did not log in")
			}
			if rep.TLS != "TLSv1.2" {
				t.Fatalf("negotiated %q, want TLSv1.2", rep.TLS)
			}
			if len(rep.Failures) != 0 {
				t.Errorf("SASL failures %v, want none", rep.Failures)
			}
			if len(rep.Attempts) != 1 || rep.Attempts[0].Mech != "SCRAM-SHA-512-PLUS" || rep.Attempts[0].GS2 != "p=tls-unique" {
				t.Errorf("attempts %+v, want exactly SCRAM-SHA-512-PLUS with p=tls-unique", rep.Attempts)
			}
			if rep.Succeeded != "SCRAM-SHA-512-PLUS" {
				t.Errorf("client: succeeded with %q, want SCRAM-SHA-512-PLUS", rep.Succeeded)
			}
			if !slices.Contains(rep.CBTypes, "tls-unique") {
				t.Errorf("XEP-0440 types seen by slixmpp %v lack tls-unique", rep.CBTypes)
			}
			if m := tuServerAuthMechanism(t, srv, user); m != "SCRAM-SHA-512-PLUS" {
				t.Errorf("server: authenticated with %q, want SCRAM-SHA-512-PLUS", m)
			}
		})
		t.Run(mode+"/stock", func(t *testing.T) {
			user, pw := xmppclient.NewAccount(t, srv, "tuslix")
			rep, ok := tuSlixmpp(t, srv, user, pw, direct, "default")
			if !ok {
				t.Fatal("slixmpp did not log in")
			}
			if rep.TLS == "TLSv1.2" {
				return // a client without TLS 1.3 is the case above
			}
			if slices.Contains(rep.CBTypes, "tls-unique") {
				t.Errorf("tls-unique announced on %s", rep.TLS)
			}
			// slixmpp never retries a mechanism, so the last attempt is the one
			// that succeeded.
			if n := len(rep.Attempts); n == 0 || rep.Attempts[n-1].GS2 == "y" {
				t.Errorf("a SCRAM exchange with 'y' succeeded while -PLUS was offered: downgrade protection is gone (%+v)", rep.Attempts)
			}
			if m := tuServerAuthMechanism(t, srv, user); m == "" || m != rep.Succeeded {
				t.Errorf("server logged %q, client says %q", m, rep.Succeeded)
			}
			t.Logf("stock slixmpp on %s: attempts %+v, failures %v, succeeded with %s", rep.TLS, rep.Attempts, rep.Failures, rep.Succeeded)
		})
	}
}
