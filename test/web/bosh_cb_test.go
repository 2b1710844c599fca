package web

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xmppd/xmppd/test/harness"
	"github.com/xmppd/xmppd/test/xmppclient"
)

// BOSH over the TLS listener offers SCRAM-*-PLUS with tls-server-end-point only (XEP-0440 lists it; the bindings
// of one TLS connection, tls-exporter and tls-unique, do not bind a session of several connections), and the
// binding is checked: the right certificate hash logs in, a wrong one fails. Over plain HTTP on loopback there
// is nothing to bind to, so no -PLUS at all.
func TestBOSHChannelBindingServerEndPoint(t *testing.T) {
	srv := harness.Start(t, harness.Options{HTTPTLS: true})
	srv.AddUser(t, "carol", "pw")
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: srv.CertPool, ServerName: srv.Domain}}
	t.Cleanup(tr.CloseIdleConnections)
	url := "https://" + srv.HTTPAddr + "/http-bind"

	// The certificate the HTTP listener presents, hashed as RFC 5929 §4.1 says (SHA-256 for an ECDSA-SHA256 or
	// RSA-SHA256 signature).
	res, err := (&http.Client{Transport: tr}).Get("https://" + srv.HTTPAddr + "/.well-known/host-meta")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	cert := res.TLS.PeerCertificates[0]
	if a := cert.SignatureAlgorithm; a != x509.ECDSAWithSHA256 && a != x509.SHA256WithRSA {
		t.Fatalf("test certificate signed with %v: this test hashes with SHA-256 only", a)
	}
	endPoint := sha256.Sum256(cert.Raw)

	for _, tc := range []struct {
		name    string
		corrupt bool
	}{{"right binding", false}, {"wrong binding", true}} {
		t.Run(tc.name, func(t *testing.T) {
			b := xmppclient.NewBOSH(t, url, srv.Domain)
			b.HTTP = &http.Client{Transport: tr, Timeout: 30 * time.Second}
			b.Create()
			f := b.Expect("stream features", 10*time.Second, func(e *xmppclient.Elem) bool { return e.Name.Local == "features" })
			var mechs, cbTypes []string
			if m := f.Child("urn:ietf:params:xml:ns:xmpp-sasl", "mechanisms"); m != nil {
				for _, e := range m.Kids {
					mechs = append(mechs, e.Text)
				}
			}
			if c := f.Child("urn:xmpp:sasl-cb:0", "sasl-channel-binding"); c != nil {
				for _, e := range c.Kids {
					cbTypes = append(cbTypes, e.Get("type"))
				}
			}
			if !strings.Contains(strings.Join(mechs, " "), "SCRAM-SHA-256-PLUS") {
				t.Fatalf("no SCRAM-SHA-256-PLUS over BOSH on TLS: %v", mechs)
			}
			if strings.Join(cbTypes, " ") != "tls-server-end-point" {
				t.Errorf("channel binding types %v, want just tls-server-end-point", cbTypes)
			}
			cbData := endPoint[:]
			if tc.corrupt {
				cbData = append([]byte(nil), cbData...)
				cbData[0] ^= 0xff
			}
			outcome := boshScramPlus(t, b, "carol", "pw", cbData)
			if tc.corrupt {
				if outcome.Name.Local != "failure" {
					t.Fatalf("a wrong tls-server-end-point was accepted: %s", outcome)
				}
				return
			}
			if outcome.Name.Local != "success" {
				t.Fatalf("SCRAM-SHA-256-PLUS with tls-server-end-point: %s", outcome)
			}
		})
	}

	// Plain HTTP on loopback (the shared server): nothing to bind to.
	plain := shared.Get(t)
	b := xmppclient.NewBOSH(t, boshURL(plain), plain.Domain)
	b.Create()
	f := b.Expect("stream features", 10*time.Second, func(e *xmppclient.Elem) bool { return e.Name.Local == "features" })
	if strings.Contains(f.String(), "-PLUS") || f.Child("urn:xmpp:sasl-cb:0", "sasl-channel-binding") != nil {
		t.Errorf("channel binding offered over plain HTTP: %s", f)
	}
}

// boshScramPlus runs SCRAM-SHA-256-PLUS (RFC 5802, RFC 7677) with tls-server-end-point data cbData over b and
// returns the server's <success/> or <failure/>; a <success/> must carry the right server signature.
func boshScramPlus(t *testing.T, b *xmppclient.BOSH, user, password string, cbData []byte) *xmppclient.Elem {
	t.Helper()
	gs2 := "p=tls-server-end-point,,"
	raw := make([]byte, 18)
	rand.Read(raw)
	cnonce := base64.RawStdEncoding.EncodeToString(raw)
	first := "n=" + user + ",r=" + cnonce
	isSASL := func(e *xmppclient.Elem) bool { return e.Name.Space == "urn:ietf:params:xml:ns:xmpp-sasl" }
	b.Do("", "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-256-PLUS'>"+
		base64.StdEncoding.EncodeToString([]byte(gs2+first))+"</auth>")
	e := b.Expect("SASL challenge", 10*time.Second, isSASL)
	if e.Name.Local != "challenge" {
		return e
	}
	sf, _ := base64.StdEncoding.DecodeString(e.Text)
	serverFirst := string(sf)
	var nonce, salt64 string
	iter := 0
	for _, f := range strings.Split(serverFirst, ",") {
		switch {
		case strings.HasPrefix(f, "r="):
			nonce = f[2:]
		case strings.HasPrefix(f, "s="):
			salt64 = f[2:]
		case strings.HasPrefix(f, "i="):
			iter, _ = strconv.Atoi(f[2:])
		}
	}
	salt, err := base64.StdEncoding.DecodeString(salt64)
	if err != nil || !strings.HasPrefix(nonce, cnonce) || iter < 4096 {
		t.Fatalf("server-first-message %q", serverFirst)
	}
	noProof := "c=" + base64.StdEncoding.EncodeToString(append([]byte(gs2), cbData...)) + ",r=" + nonce
	authMessage := first + "," + serverFirst + "," + noProof
	salted, err := pbkdf2.Key(sha256.New, password, salt, iter, sha256.Size)
	if err != nil {
		t.Fatal(err)
	}
	mac := func(key []byte, msg string) []byte {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(msg))
		return m.Sum(nil)
	}
	clientKey := mac(salted, "Client Key")
	stored := sha256.Sum256(clientKey)
	sig := mac(stored[:], authMessage)
	for i := range sig {
		sig[i] ^= clientKey[i]
	}
	b.Do("", "<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"+
		base64.StdEncoding.EncodeToString([]byte(noProof+",p="+base64.StdEncoding.EncodeToString(sig)))+"</response>")
	e = b.Expect("SASL outcome", 10*time.Second, isSASL)
	if e.Name.Local == "success" {
		got, _ := base64.StdEncoding.DecodeString(e.Text)
		if want := "v=" + base64.StdEncoding.EncodeToString(mac(mac(salted, "Server Key"), authMessage)); string(got) != want {
			t.Fatalf("server signature %q, want %q", got, want)
		}
	}
	return e
}
