package e2e

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"hash"
	"strconv"
	"strings"
	"testing"

	"github.com/xmppd/xmppd/test/xmppclient"
)

// An independent SCRAM client (RFC 5802, RFC 7677, RFC 9266 tls-exporter,
// RFC 5929 tls-server-end-point), written from the RFCs for these tests:
// mellium has neither SCRAM-SHA-512 nor tls-server-end-point.

type scramHash struct {
	name string
	new  func() hash.Hash
}

var (
	scramSHA1   = scramHash{"SCRAM-SHA-1", sha1.New}
	scramSHA256 = scramHash{"SCRAM-SHA-256", sha256.New}
	scramSHA512 = scramHash{"SCRAM-SHA-512", sha512.New}
)

type cbType string

const (
	cbNone        cbType = ""
	cbExporter    cbType = "tls-exporter"
	cbEndPoint    cbType = "tls-server-end-point"
	cbClaimNoSupp cbType = "y" // client supports CB, believes the server does not
)

// channelBinding computes the channel binding data of typ for this TLS
// connection.
func channelBinding(cs tls.ConnectionState, typ cbType) ([]byte, error) {
	switch typ {
	case cbExporter:
		return cs.ExportKeyingMaterial("EXPORTER-Channel-Binding", nil, 32)
	case cbEndPoint:
		// RFC 5929 §4.1: hash the certificate with its signature's hash,
		// SHA-256 when that is MD5 or SHA-1.
		cert := cs.PeerCertificates[0]
		var h hash.Hash
		switch cert.SignatureAlgorithm {
		case x509.SHA384WithRSA, x509.ECDSAWithSHA384, x509.SHA384WithRSAPSS:
			h = sha512.New384()
		case x509.SHA512WithRSA, x509.ECDSAWithSHA512, x509.SHA512WithRSAPSS:
			h = sha512.New()
		default:
			h = sha256.New()
		}
		h.Write(cert.Raw)
		return h.Sum(nil), nil
	}
	return nil, nil
}

// authScram runs one SCRAM exchange on rc and returns the server's final
// element (<success/> or <failure/>). With a channel binding type the -PLUS
// mechanism is used. When the server's signature in <success/> is wrong the
// test fails: a server that cannot prove it knows the key is broken.
func (rc *rawConn) authScram(h scramHash, user, password string, cb cbType, corruptCB bool) *xmppclient.Elem {
	rc.T.Helper()
	mech := h.name
	gs2 := "n,,"
	var cbData []byte
	switch cb {
	case cbNone:
	case cbClaimNoSupp:
		gs2 = "y,,"
	default:
		mech += "-PLUS"
		gs2 = "p=" + string(cb) + ",,"
		var err error
		cbData, err = channelBinding(rc.TLSState(), cb)
		if err != nil {
			rc.T.Fatalf("channel binding %s: %v", cb, err)
		}
		if corruptCB {
			cbData = append([]byte(nil), cbData...)
			cbData[0] ^= 0xff
		}
	}
	nonceRaw := make([]byte, 18)
	rand.Read(nonceRaw)
	cnonce := base64.RawStdEncoding.EncodeToString(nonceRaw)
	user = strings.NewReplacer("=", "=3D", ",", "=2C").Replace(user)
	clientFirstBare := "n=" + user + ",r=" + cnonce
	rc.Write(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='` + mech + `'>` +
		base64.StdEncoding.EncodeToString([]byte(gs2+clientFirstBare)) + `</auth>`)
	e, err := rc.Next(xmppclient.WaitTimeout)
	if err != nil {
		rc.T.Fatalf("%s: waiting for challenge: %v", mech, err)
	}
	if !e.Is(xmppclient.NSSASL, "challenge") {
		return e
	}
	serverFirst, err := base64.StdEncoding.DecodeString(e.Text)
	if err != nil {
		rc.T.Fatalf("%s: challenge not base64: %s", mech, e)
	}
	final, wantFinal := rc.scramFinal(h, mech, password, cnonce, clientFirstBare, string(serverFirst), gs2, cbData)
	rc.Write(`<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>` + base64.StdEncoding.EncodeToString([]byte(final)) + `</response>`)
	e, err = rc.Next(xmppclient.WaitTimeout)
	if err != nil {
		rc.T.Fatalf("%s: waiting for outcome: %v", mech, err)
	}
	if e.Is(xmppclient.NSSASL, "success") {
		// RFC 6120 §6.4.6: SCRAM's server-final-message travels in
		// <success/> as additional data.
		sf, err := base64.StdEncoding.DecodeString(e.Text)
		if err != nil {
			rc.T.Fatalf("%s: success data not base64: %s", mech, e)
		}
		if string(sf) != wantFinal {
			rc.T.Fatalf("%s: server signature %q, want %q", mech, sf, wantFinal)
		}
	}
	return e
}

// scramFinal computes the client-final-message for serverFirst (RFC 5802 §3, §7) and the server-final-message a
// server that knows the key must answer with; it checks the server's nonce and parameters on the way.
func (rc *rawConn) scramFinal(h scramHash, mech, password, cnonce, clientFirstBare, serverFirst, gs2 string, cbData []byte) (final, wantServerFinal string) {
	rc.T.Helper()
	var nonce, saltB64 string
	iter := 0
	for _, f := range strings.Split(serverFirst, ",") {
		if len(f) < 2 || f[1] != '=' {
			continue
		}
		switch f[0] {
		case 'r':
			nonce = f[2:]
		case 's':
			saltB64 = f[2:]
		case 'i':
			iter, _ = strconv.Atoi(f[2:])
		}
	}
	if !strings.HasPrefix(nonce, cnonce) || len(nonce) == len(cnonce) {
		rc.T.Fatalf("%s: server nonce %q does not extend ours %q", mech, nonce, cnonce)
	}
	salt, err := base64.StdEncoding.DecodeString(saltB64)
	if err != nil || len(salt) == 0 {
		rc.T.Fatalf("%s: bad salt %q", mech, saltB64)
	}
	if iter < 4096 {
		// RFC 7677 §4: at least 4096 iterations.
		rc.T.Errorf("%s: iteration count %d < 4096", mech, iter)
	}
	cbind := base64.StdEncoding.EncodeToString(append([]byte(gs2), cbData...))
	clientFinalNoProof := "c=" + cbind + ",r=" + nonce
	authMessage := clientFirstBare + "," + serverFirst + "," + clientFinalNoProof
	salted, err := pbkdf2.Key(h.new, password, salt, iter, h.new().Size())
	if err != nil {
		rc.T.Fatal(err)
	}
	mac := func(key []byte, msg string) []byte {
		m := hmac.New(h.new, key)
		m.Write([]byte(msg))
		return m.Sum(nil)
	}
	clientKey := mac(salted, "Client Key")
	hh := h.new()
	hh.Write(clientKey)
	storedKey := hh.Sum(nil)
	sig := mac(storedKey, authMessage)
	proof := make([]byte, len(clientKey))
	for i := range proof {
		proof[i] = clientKey[i] ^ sig[i]
	}
	final = clientFinalNoProof + ",p=" + base64.StdEncoding.EncodeToString(proof)
	return final, "v=" + base64.StdEncoding.EncodeToString(mac(mac(salted, "Server Key"), authMessage))
}

func TestSCRAMAllVariants(t *testing.T) {
	srv := shared(t)
	u, pw := srv.user(t, "scram")
	type variant struct {
		h      scramHash
		cb     cbType
		tlsMax uint16
		direct bool
	}
	var vs []variant
	for _, h := range []scramHash{scramSHA1, scramSHA256, scramSHA512} {
		vs = append(vs,
			variant{h: h, cb: cbNone},
			variant{h: h, cb: cbExporter},
			variant{h: h, cb: cbEndPoint},
			variant{h: h, cb: cbEndPoint, direct: true},
		)
	}
	// tls-server-end-point is the binding defined for TLS 1.2 too (RFC 9266
	// restricts tls-exporter on 1.2, so that is not asserted here).
	vs = append(vs, variant{h: scramSHA256, cb: cbEndPoint, tlsMax: tls.VersionTLS12})
	for _, v := range vs {
		name := v.h.name
		if v.cb != cbNone {
			name += "-PLUS/" + string(v.cb)
		}
		if v.tlsMax != 0 {
			name += "/tls1.2"
		}
		if v.direct {
			name += "/direct"
		}
		t.Run(name, func(t *testing.T) {
			cfg := srv.tlsConfig()
			if v.tlsMax != 0 {
				cfg.MaxVersion = v.tlsMax
			}
			var rc *rawConn
			var f *xmppclient.Elem
			if v.direct {
				rc = dialRawTLS(t, srv, cfg)
				_, f = rc.Open()
			} else {
				rc = dialRaw(t, srv)
				rc.Open()
				rc.Write(`<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>`)
				rc.Expect(xmppclient.NSTLS, "proceed")
				rc.UpgradeTLS(cfg)
				_, f = rc.Open()
			}
			mech := v.h.name
			if v.cb != cbNone {
				mech += "-PLUS"
			}
			offered := false
			for _, m := range f.Child(xmppclient.NSSASL, "mechanisms").Children(xmppclient.NSSASL, "mechanism") {
				offered = offered || m.Text == mech
			}
			if !offered {
				t.Fatalf("%s not offered: %s", mech, f)
			}
			r := rc.authScram(v.h, u, pw, v.cb, false)
			if !r.Is(xmppclient.NSSASL, "success") {
				t.Fatalf("%s: %s", mech, r)
			}
			rc.Reset()
			_, f = rc.Open()
			if f.Child(xmppclient.NSBind, "bind") == nil {
				t.Fatalf("no bind after SCRAM: %s", f)
			}
		})
	}
}

// Channel binding must actually bind: wrong binding data fails, and a client
// that claims "y" (I support binding but think you do not) while the server
// offers -PLUS is a downgrade the server must refuse (RFC 5802 §6).
func TestSCRAMChannelBindingEnforced(t *testing.T) {
	srv := shared(t)
	u, pw := srv.user(t, "cb")
	for _, tc := range []struct {
		name    string
		cb      cbType
		corrupt bool
	}{
		{"wrong-exporter-data", cbExporter, true},
		{"wrong-endpoint-data", cbEndPoint, true},
		{"downgrade-y-flag", cbClaimNoSupp, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc := dialRaw(t, srv)
			rc.Open()
			rc.StartTLS()
			r := rc.authScram(scramSHA256, u, pw, tc.cb, tc.corrupt)
			if !r.Is(xmppclient.NSSASL, "failure") {
				t.Fatalf("got %s, want <failure/>", r)
			}
			if r.Child(xmppclient.NSSASL, "not-authorized") == nil && r.Child(xmppclient.NSSASL, "malformed-request") == nil {
				t.Errorf("failure condition: %s, want not-authorized", r)
			}
		})
	}
}

// The SCRAM credentials are stored for every hash at account creation
// (issue 2), so an account made by IBR, by the CLI or by a password change
// logs in with each hash.
func TestSCRAMAfterPasswordChange(t *testing.T) {
	srv := shared(t)
	u, pw := srv.user(t, "chg")
	newPW := secret()
	if _, stderr, err := srv.Run("user", "passwd", srv.bare(u), "--password", newPW); err != nil {
		t.Fatalf("user passwd: %v: %s", err, stderr)
	}
	for _, h := range []scramHash{scramSHA1, scramSHA256, scramSHA512} {
		rc := dialRaw(t, srv)
		rc.Open()
		rc.StartTLS()
		if r := rc.authScram(h, u, newPW, cbNone, false); !r.Is(xmppclient.NSSASL, "success") {
			t.Errorf("%s with the new password: %s", h.name, r)
		}
		rc2 := dialRaw(t, srv)
		rc2.Open()
		rc2.StartTLS()
		if r := rc2.authScram(h, u, pw, cbNone, false); !r.Is(xmppclient.NSSASL, "failure") {
			t.Errorf("%s with the old password: %s", h.name, r)
		}
	}
}
