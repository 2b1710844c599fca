package e2e

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xmppd/xmppd/test/harness"
	"github.com/xmppd/xmppd/test/xmppclient"
)

// XEP-0388 SASL2 with XEP-0386 Bind 2, inline XEP-0198 and XEP-0484 FAST, written as exact bytes against the real
// server, with this package's own SCRAM client (scram_test.go) and an HT client written from
// draft-schmaus-kitten-sasl-ht. Debian's slixmpp (1.8.3) has no SASL2, so there is no third-party client here; the
// slixmpp and mellium suites check that the legacy profile is unchanged beside it.

const (
	nsSASL2 = "urn:xmpp:sasl:2"
	nsBind2 = "urn:xmpp:bind:0"
	nsFast  = "urn:xmpp:fast:0"
	nsSCB   = "urn:xmpp:sasl-cb:0"
	nsCarb  = "urn:xmpp:carbons:2"
)

// s2Dial opens an encrypted stream (STARTTLS) and returns the pre-authentication features.
func s2Dial(t testing.TB, srv *testServer) (*rawConn, *xmppclient.Elem) {
	t.Helper()
	rc := dialRaw(t, srv)
	rc.open(srv.Domain)
	return rc, rc.starttls()
}

// s2Opts is one SASL2 authentication: the SCRAM hash, the channel binding (cbNone: plain SCRAM), the user-agent
// id, and children for <authenticate/> (bind, resume, request-token).
type s2Opts struct {
	h      scramHash
	cb     cbType
	ua     string
	inline string
	badPW  bool
}

func userAgent(id string) string {
	if id == "" {
		return ""
	}
	return "<user-agent id='" + id + "'><software>xmppd-e2e</software><device>test</device></user-agent>"
}

// sasl2Scram runs a SCRAM exchange in the XEP-0388 profile and returns the server's last element (<success/> or
// <failure/>). On the way it checks the XEP-0474 hash in server-first against the lists in features and, on
// success, the server's signature in <additional-data/>.
func (rc *rawConn) sasl2Scram(features *xmppclient.Elem, user, password string, o s2Opts) *xmppclient.Elem {
	rc.T.Helper()
	mech, gs2 := o.h.name, "n,,"
	var cbData []byte
	if o.cb != cbNone {
		mech += "-PLUS"
		gs2 = "p=" + string(o.cb) + ",,"
		var err error
		if cbData, err = channelBinding(rc.TLSState(), o.cb); err != nil {
			rc.T.Fatal(err)
		}
	}
	nonceRaw := make([]byte, 18)
	rand.Read(nonceRaw)
	cnonce := base64.RawStdEncoding.EncodeToString(nonceRaw)
	clientFirstBare := "n=" + user + ",r=" + cnonce
	rc.Write("<authenticate xmlns='" + nsSASL2 + "' mechanism='" + mech + "'><initial-response>" +
		b64(gs2+clientFirstBare) + "</initial-response>" + userAgent(o.ua) + o.inline + "</authenticate>")
	e, err := rc.Next(xmppclient.WaitTimeout)
	if err != nil {
		rc.T.Fatalf("%s: waiting for challenge: %v", mech, err)
	}
	if !e.Is(nsSASL2, "challenge") {
		return e
	}
	sf, err := base64.StdEncoding.DecodeString(strings.TrimSpace(e.Text))
	if err != nil {
		rc.T.Fatalf("challenge not base64: %s", e)
	}
	serverFirst := string(sf)
	// XEP-0474 §4.2: the hash of what the features advertised.
	var mechs, cbs []string
	for _, m := range features.Child(nsSASL2, "authentication").Children(nsSASL2, "mechanism") {
		mechs = append(mechs, m.Text)
	}
	scb := features.Child(nsSCB, "sasl-channel-binding")
	for _, c := range scb.Children(nsSCB, "channel-binding") {
		cbs = append(cbs, c.Get("type"))
	}
	slices.Sort(mechs)
	slices.Sort(cbs)
	s := strings.Join(mechs, "\x1e")
	if scb != nil {
		s += "\x1f" + strings.Join(cbs, "\x1e")
	}
	d := o.h.new()
	d.Write([]byte(s))
	if want := "h=" + base64.StdEncoding.EncodeToString(d.Sum(nil)); !slices.Contains(strings.Split(serverFirst, ","), want) {
		rc.T.Fatalf("server-first %q lacks the XEP-0474 hash %s of %q", serverFirst, want, s)
	}
	pw := password
	if o.badPW {
		pw += "x"
	}
	final, wantFinal := rc.scramFinal(o.h, mech, pw, cnonce, clientFirstBare, serverFirst, gs2, cbData)
	rc.Write("<response xmlns='" + nsSASL2 + "'>" + b64(final) + "</response>")
	e, err = rc.Next(xmppclient.WaitTimeout)
	if err != nil {
		rc.T.Fatalf("%s: waiting for outcome: %v", mech, err)
	}
	if e.Is(nsSASL2, "success") {
		got, err := base64.StdEncoding.DecodeString(strings.TrimSpace(e.ChildText("additional-data")))
		if err != nil || string(got) != wantFinal {
			rc.T.Fatalf("%s: additional-data %q, want the server signature %q", mech, got, wantFinal)
		}
	}
	return e
}

// htCB is the channel binding of an HT mechanism name.
func htCB(mech string) cbType {
	switch {
	case strings.HasSuffix(mech, "-EXPR"):
		return cbExporter
	case strings.HasSuffix(mech, "-ENDP"):
		return cbEndPoint
	}
	return cbNone
}

// sasl2Fast authenticates with a FAST token (draft-schmaus-kitten-sasl-ht §3: authcid NUL HMAC(token, "Initiator"
// || cb-data)); fast is the <fast/> element's attributes. On success it checks HMAC(token, "Responder" || cb-data)
// in <additional-data/>.
func (rc *rawConn) sasl2Fast(user, token, mech, ua, fast, inline string) *xmppclient.Elem {
	rc.T.Helper()
	cbData, err := channelBinding(rc.TLSState(), htCB(mech))
	if err != nil {
		rc.T.Fatal(err)
	}
	mac := func(label string) []byte {
		m := hmac.New(sha256.New, []byte(token))
		m.Write([]byte(label))
		m.Write(cbData)
		return m.Sum(nil)
	}
	rc.Write("<authenticate xmlns='" + nsSASL2 + "' mechanism='" + mech + "'><initial-response>" +
		base64.StdEncoding.EncodeToString(append([]byte(user+"\x00"), mac("Initiator")...)) + "</initial-response>" +
		userAgent(ua) + "<fast xmlns='" + nsFast + "' " + fast + "/>" + inline + "</authenticate>")
	e, err := rc.Next(xmppclient.WaitTimeout)
	if err != nil {
		rc.T.Fatalf("FAST %s: %v", mech, err)
	}
	if e.Is(nsSASL2, "success") {
		got, _ := base64.StdEncoding.DecodeString(strings.TrimSpace(e.ChildText("additional-data")))
		if !hmac.Equal(got, mac("Responder")) {
			rc.T.Fatalf("FAST %s: additional-data is not HMAC(token, Responder||cb)", mech)
		}
	}
	return e
}

// wantSuccess fails unless e is a SASL2 <success/> and returns its authorization identifier.
func wantSuccess(t testing.TB, e *xmppclient.Elem) string {
	t.Helper()
	if !e.Is(nsSASL2, "success") {
		t.Fatalf("want SASL2 <success/>, got %s", e)
	}
	return e.ChildText("authorization-identifier")
}

// wantFailure fails unless e is a SASL2 <failure/> with the RFC 6120 §6.5 condition cond.
func wantFailure(t *testing.T, e *xmppclient.Elem, cond string) {
	t.Helper()
	if !e.Is(nsSASL2, "failure") || e.Child(xmppclient.NSSASL, cond) == nil {
		t.Fatalf("want SASL2 <failure/> with <%s/>, got %s", cond, e)
	}
}

// bind2 is a Bind 2 request with tag and extra inline elements.
func bind2(tag, extra string) string {
	return "<bind xmlns='" + nsBind2 + "'><tag>" + tag + "</tag>" + extra + "</bind>"
}

const inlineAll = "<enable xmlns='urn:xmpp:carbons:2'/><enable xmlns='urn:xmpp:sm:3' resume='true'/>"

func newUA() string {
	b := make([]byte, 16)
	rand.Read(b)
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// What is offered before authentication: SASL2 with the same mechanisms as RFC 6120 SASL, Bind 2 with the inline
// features that are enabled, inline SM, FAST with the HT mechanisms this TLS connection can bind to.
func TestSASL2Features(t *testing.T) {
	srv := shared(t)
	rc, f := s2Dial(t, srv)
	auth := f.Child(nsSASL2, "authentication")
	if auth == nil {
		t.Fatalf("no <authentication/>: %s", f)
	}
	var legacy, s2 []string
	for _, m := range f.Child(xmppclient.NSSASL, "mechanisms").Children(xmppclient.NSSASL, "mechanism") {
		legacy = append(legacy, m.Text)
	}
	for _, m := range auth.Children(nsSASL2, "mechanism") {
		s2 = append(s2, m.Text)
	}
	if len(s2) == 0 || strings.Join(s2, " ") != strings.Join(legacy, " ") {
		t.Fatalf("SASL2 mechanisms %v, legacy %v", s2, legacy)
	}
	in := auth.Child(nsSASL2, "inline")
	var vars []string
	for _, v := range in.Child(nsBind2, "bind").Child(nsBind2, "inline").Children(nsBind2, "feature") {
		vars = append(vars, v.Get("var"))
	}
	for _, want := range []string{nsCarb, "urn:xmpp:csi:0", nsSM} {
		if !slices.Contains(vars, want) {
			t.Errorf("Bind 2 inline features %v lack %s", vars, want)
		}
	}
	if in.Child(nsSM, "sm") == nil {
		t.Error("no inline <sm/>")
	}
	var ht []string
	for _, m := range in.Child(nsFast, "fast").Children(nsFast, "mechanism") {
		ht = append(ht, m.Text)
	}
	// TLS 1.3 (the harness's default): tls-exporter and tls-server-end-point, never tls-unique (RFC 8446 §C.5).
	if rc.TLSState().Version == 0x0304 {
		if strings.Join(ht, " ") != "HT-SHA-256-EXPR HT-SHA-256-ENDP HT-SHA-256-NONE" {
			t.Errorf("FAST mechanisms on TLS 1.3: %v", ht)
		}
		var cbs []string
		for _, c := range f.Child(nsSCB, "sasl-channel-binding").Children(nsSCB, "channel-binding") {
			cbs = append(cbs, c.Get("type"))
		}
		if strings.Join(cbs, " ") != "tls-exporter tls-server-end-point" {
			t.Errorf("XEP-0440 types on TLS 1.3: %v", cbs)
		}
	}
}

// One round trip after the SCRAM exchange: authenticate, bind with a tag, carbons and SM enabled, all answered in
// <success/>; no stream restart, the bound stream's features follow at once. Both plain SCRAM and -PLUS.
func TestSASL2ScramBind2(t *testing.T) {
	srv := shared(t)
	pw := secret()
	a, b := newName(t, "s2a"), newName(t, "s2b")
	srv.AddUser(t, a, pw)
	srv.AddUser(t, b, pw)
	for _, cb := range []cbType{cbNone, cbExporter, cbEndPoint} {
		t.Run("cb="+string(cb), func(t *testing.T) {
			rc, f := s2Dial(t, srv)
			ua := newUA()
			succ := rc.sasl2Scram(f, a, pw, s2Opts{h: scramSHA256, cb: cb, ua: ua, inline: bind2("AwesomeXMPP", inlineAll)})
			full := wantSuccess(t, succ)
			// XEP-0386 §2.3: [tag]/[server part]; the user-agent id is not in it.
			if !strings.HasPrefix(full, a+"@"+srv.Domain+"/AwesomeXMPP/") || strings.Contains(full, ua) {
				t.Fatalf("authorization identifier %q", full)
			}
			en := succ.Child(nsBind2, "bound").Child(nsSM, "enabled")
			if en == nil || en.Get("id") == "" || en.Get("resume") != "true" {
				t.Fatalf("no resumable <enabled/> in <bound/>: %s", succ)
			}
			feats := rc.Expect(xmppclient.NSStream, "features")
			if feats.Child(xmppclient.NSBind, "bind") != nil {
				t.Fatalf("bind offered on a bound stream: %s", feats)
			}
			// Bound: stanzas work at once, and stream management counts from the <enabled/>.
			rc.Write("<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>")
			if e := rc.ExpectIQ("p1"); e.Get("type") != "result" {
				t.Fatalf("ping: %s", e)
			}
			rc.Write("<r xmlns='urn:xmpp:sm:3'/>")
			if ack := nextNot(t, rc, true); !ack.Is(nsSM, "a") || ack.Get("h") != "1" {
				t.Fatalf("want <a h='1'/> after one stanza, got %s", ack)
			}
			// Carbons are on: a message to the user's other resource comes as a <received/> carbon.
			other, _ := smLogin(t, srv, a, pw, "laptop", true)
			rb, _ := smLogin(t, srv, b, pw, "pc", true)
			sendChat(rb, a+"@"+srv.Domain+"/laptop", "copy me")
			if got := bodies(t, other, 1); got[0] != "copy me" {
				t.Fatalf("laptop got %v", got)
			}
			for {
				e := nextNot(t, rc, true)
				if e.Is(xmppclient.NSClient, "message") {
					if e.Child(nsCarb, "received") == nil {
						t.Fatalf("want a carbon, got %s", e)
					}
					break
				}
			}
			rc.Write("<a xmlns='urn:xmpp:sm:3' h='1'/>")
		})
	}
}

// The same client (user-agent id and tag) gets the same resource again (XEP-0386 §2.3 stability), which replaces
// its older session (§2.2: earlier sessions of the same client SHOULD be terminated); another client gets
// another resource. Without Bind 2 the success carries the bare JID and the bind features follow.
func TestSASL2ResourceAndNoBind(t *testing.T) {
	srv := shared(t)
	a, pw := srv.user(t, "s2r")
	ua := newUA()
	r1, f := s2Dial(t, srv)
	full1 := wantSuccess(t, r1.sasl2Scram(f, a, pw, s2Opts{h: scramSHA256, ua: ua, inline: bind2("App", "")}))
	r1.Expect(xmppclient.NSStream, "features")
	r2, f := s2Dial(t, srv)
	full2 := wantSuccess(t, r2.sasl2Scram(f, a, pw, s2Opts{h: scramSHA256, ua: ua, inline: bind2("App", "")}))
	if full1 != full2 {
		t.Fatalf("same client, resources %q and %q", full1, full2)
	}
	if end := r1.ReadStreamEnd(); end.Condition() != "conflict" {
		t.Fatalf("the older session ended with %q, want conflict", end.Condition())
	}
	r3, f := s2Dial(t, srv)
	if full3 := wantSuccess(t, r3.sasl2Scram(f, a, pw, s2Opts{h: scramSHA256, ua: newUA(), inline: bind2("App", "")})); full3 == full1 {
		t.Fatal("another client got the same resource")
	}

	r4, f := s2Dial(t, srv)
	if id := wantSuccess(t, r4.sasl2Scram(f, a, pw, s2Opts{h: scramSHA512})); id != a+"@"+srv.Domain {
		t.Fatalf("without bind the authorization identifier is %q, want the bare JID", id)
	}
	feats := r4.Expect(xmppclient.NSStream, "features") // no restart: the features come at once
	if feats.Child(xmppclient.NSBind, "bind") == nil {
		t.Fatalf("no bind feature after SASL2 without Bind 2: %s", feats)
	}
	r4.Bind("legacy")
}

// A phone drops its connection; it authenticates again with the inline <resume/> and gets, in one round trip,
// <resumed/> inside <success/> and what it had not acknowledged, exactly once.
func TestSASL2InlineResume(t *testing.T) {
	srv := shared(t)
	pw := secret()
	a, b := newName(t, "s2m"), newName(t, "s2n")
	srv.AddUser(t, a, pw)
	srv.AddUser(t, b, pw)
	ua := newUA()
	ra, f := s2Dial(t, srv)
	succ := ra.sasl2Scram(f, a, pw, s2Opts{h: scramSHA256, cb: cbExporter, ua: ua, inline: bind2("Phone", inlineAll)})
	full := wantSuccess(t, succ)
	id := succ.Child(nsBind2, "bound").Child(nsSM, "enabled").Get("id")
	ra.Expect(xmppclient.NSStream, "features")
	rb, _ := smLogin(t, srv, b, pw, "pc", true)
	for i := 1; i <= 3; i++ {
		sendChat(rb, full, fmt.Sprintf("m%d", i))
	}
	if got := bodies(t, ra, 3); strings.Join(got, " ") != "m1 m2 m3" {
		t.Fatalf("a got %v", got)
	}
	sendChat(ra, b+"@"+srv.Domain, "hi") // the server has handled 1 stanza of ours
	ra.Write("<a xmlns='urn:xmpp:sm:3' h='1'/>")
	ra.Write("<r xmlns='urn:xmpp:sm:3'/>")
	if ack := nextNot(t, ra, true); !ack.Is(nsSM, "a") || ack.Get("h") != "1" {
		t.Fatalf("want <a h='1'/>, got %s", ack)
	}
	ra.Conn().Close()
	time.Sleep(200 * time.Millisecond)
	sendChat(rb, full, "m4") // waits in the hibernating session

	ra2, f := s2Dial(t, srv)
	succ = ra2.sasl2Scram(f, a, pw, s2Opts{h: scramSHA256, cb: cbExporter, ua: ua,
		inline: "<resume xmlns='urn:xmpp:sm:3' previd='" + id + "' h='1'/>" + bind2("Phone", inlineAll)})
	if got := wantSuccess(t, succ); got != full {
		t.Fatalf("resumed as %q, want %q", got, full)
	}
	res := succ.Child(nsSM, "resumed")
	if res == nil || res.Get("previd") != id || res.Get("h") != "1" {
		t.Fatalf("no <resumed h='1'/> in <success/>: %s", succ)
	}
	if succ.Child(nsBind2, "bound") != nil {
		t.Fatalf("a resumed session was bound again (XEP-0386 §2.2 note): %s", succ)
	}
	ra2.Expect(xmppclient.NSStream, "features")
	if got := bodies(t, ra2, 3); strings.Join(got, " ") != "m2+delay m3+delay m4+delay" {
		t.Fatalf("after resumption a got %v", got)
	}
	sendChat(rb, full, "m5")
	if got := bodies(t, ra2, 1); got[0] != "m5" {
		t.Fatalf("after resumption a got %v", got)
	}
	ra2.Write("<a xmlns='urn:xmpp:sm:3' h='5'/>")
	for {
		e, err := ra2.Next(time.Second)
		if err != nil {
			break
		}
		if e.Is(xmppclient.NSClient, "message") {
			t.Fatalf("delivered twice: %s", e)
		}
	}

	// A resumption that fails: <failed/> in <success/>, then the bind happens anyway.
	ra3, f := s2Dial(t, srv)
	succ = ra3.sasl2Scram(f, a, pw, s2Opts{h: scramSHA256, ua: newUA(),
		inline: "<resume xmlns='urn:xmpp:sm:3' previd='no-such-session' h='0'/>" + bind2("Other", "")})
	if fl := succ.Child(nsSM, "failed"); fl == nil || fl.Child(xmppclient.NSStanzas, "item-not-found") == nil {
		t.Fatalf("no <failed/> with item-not-found: %s", succ)
	}
	if succ.Child(nsBind2, "bound") == nil || !strings.Contains(wantSuccess(t, succ), "/Other/") {
		t.Fatalf("not bound after the failed resumption: %s", succ)
	}
}

// FAST: a token asked for with a password login, re-login with it (-NONE and channel-bound), the replay counter,
// the mechanism the token is bound to, rotation, invalidation, and a password change killing every token.
func TestSASL2Fast(t *testing.T) {
	srv := shared(t)
	a, pw := srv.user(t, "s2f")
	ua := newUA()
	token := func(succ *xmppclient.Elem) (string, time.Time) {
		t.Helper()
		tok := succ.Child(nsFast, "token")
		exp, err := time.Parse(time.RFC3339, tok.Get("expiry"))
		if tok == nil || len(tok.Get("token")) < 64 || err != nil {
			t.Fatalf("no usable <token/>: %s", succ)
		}
		return tok.Get("token"), exp
	}
	rc, f := s2Dial(t, srv)
	t1, exp := token(rc.sasl2Scram(f, a, pw, s2Opts{h: scramSHA256, ua: ua,
		inline: bind2("Fast", "") + "<request-token xmlns='" + nsFast + "' mechanism='HT-SHA-256-NONE'/>"}))
	if d := time.Until(exp); d < 29*24*time.Hour || d > 31*24*time.Hour {
		t.Fatalf("expiry %v, want about 30 days (fast.token_lifetime)", exp)
	}
	if srv.LogContains(t1) {
		t.Fatal("the server logged the token")
	}

	fast := func(tok, mech, attrs, inline string) *xmppclient.Elem {
		t.Helper()
		rc, _ := s2Dial(t, srv)
		return rc.sasl2Fast(a, tok, mech, ua, attrs, inline)
	}
	// One round trip: token, bind, success with the full JID.
	if id := wantSuccess(t, fast(t1, "HT-SHA-256-NONE", "count='1'", bind2("Fast", ""))); !strings.Contains(id, "/Fast/") {
		t.Fatalf("FAST login bound as %q", id)
	}
	wantFailure(t, fast(t1, "HT-SHA-256-NONE", "count='1'", ""), "not-authorized") // replay
	wantSuccess(t, fast(t1, "HT-SHA-256-NONE", "count='2'", ""))
	wantSuccess(t, fast(t1, "HT-SHA-256-NONE", "", "")) // no count: no 0-RTT, allowed
	// §4.4: a token works only with the mechanism it was issued for.
	wantFailure(t, fast(t1, "HT-SHA-256-ENDP", "count='3'", ""), "not-authorized")
	// Another client (user-agent id) cannot use it.
	rcx, _ := s2Dial(t, srv)
	wantFailure(t, rcx.sasl2Fast(a, t1, "HT-SHA-256-NONE", newUA(), "count='4'", ""), "not-authorized")

	// A channel-bound token, asked for in a FAST login (rotation on request): bound to this TLS connection's
	// exporter, so the same initial response on another connection fails.
	rcb, _ := s2Dial(t, srv)
	t2, _ := token(rcb.sasl2Fast(a, t1, "HT-SHA-256-NONE", ua, "count='5'",
		"<request-token xmlns='"+nsFast+"' mechanism='HT-SHA-256-EXPR'/>"))
	// Until the new token is used, the old one still works (§4.5) ...
	wantSuccess(t, fast(t1, "HT-SHA-256-NONE", "count='6'", ""))
	wantSuccess(t, fast(t2, "HT-SHA-256-EXPR", "count='1'", ""))
	// ... and once it was, the old one is dead.
	wantFailure(t, fast(t1, "HT-SHA-256-NONE", "count='7'", ""), "not-authorized")
	rce, _ := s2Dial(t, srv)
	cbData, _ := channelBinding(rce.TLSState(), cbExporter)
	other := make([]byte, len(cbData)) // the binding of some other connection
	m := hmac.New(sha256.New, []byte(t2))
	m.Write([]byte("Initiator"))
	m.Write(other)
	rce.Write("<authenticate xmlns='" + nsSASL2 + "' mechanism='HT-SHA-256-EXPR'><initial-response>" +
		base64.StdEncoding.EncodeToString(append([]byte(a+"\x00"), m.Sum(nil)...)) + "</initial-response>" + userAgent(ua) +
		"<fast xmlns='" + nsFast + "' count='2'/></authenticate>")
	wantFailure(t, rce.Expect(nsSASL2, "failure"), "not-authorized")

	// Invalidation (§4.6): the login succeeds, no new token comes, the token is dead afterwards.
	succ := fast(t2, "HT-SHA-256-EXPR", "count='3' invalidate='true'", "")
	wantSuccess(t, succ)
	if succ.Child(nsFast, "token") != nil {
		t.Fatalf("a token after invalidation: %s", succ)
	}
	wantFailure(t, fast(t2, "HT-SHA-256-EXPR", "count='4'", ""), "not-authorized")

	// A password change invalidates every token of the account.
	rc, f = s2Dial(t, srv)
	t3, _ := token(rc.sasl2Scram(f, a, pw, s2Opts{h: scramSHA256, ua: ua, inline: "<request-token xmlns='" + nsFast + "' mechanism='HT-SHA-256-ENDP'/>"}))
	wantSuccess(t, fast(t3, "HT-SHA-256-ENDP", "count='1'", ""))
	if _, stderr, err := srv.Run("user", "passwd", a+"@"+srv.Domain, "--password", secret()); err != nil {
		t.Fatalf("user passwd: %v %s", err, stderr)
	}
	wantFailure(t, fast(t3, "HT-SHA-256-ENDP", "count='2'", ""), "not-authorized")
}

// The failure conditions of XEP-0388 §2.5.2 (the RFC 6120 §6.5 ones inside <failure/>); after each the stream is
// unchanged and a right authentication still works.
func TestSASL2Failures(t *testing.T) {
	srv := shared(t)
	a, pw := srv.user(t, "s2x")
	rc, f := s2Dial(t, srv)
	wantFailure(t, rc.sasl2Scram(f, a, pw, s2Opts{h: scramSHA256, badPW: true}), "not-authorized")
	rc.Write("<authenticate xmlns='" + nsSASL2 + "' mechanism='NO-SUCH-MECH'/>")
	wantFailure(t, rc.Expect(nsSASL2, "failure"), "invalid-mechanism")
	rc.Write("<authenticate xmlns='" + nsSASL2 + "'/>") // no mechanism
	wantFailure(t, rc.Expect(nsSASL2, "failure"), "malformed-request")
	rc.Write("<authenticate xmlns='" + nsSASL2 + "' mechanism='SCRAM-SHA-256'><initial-response>!!!</initial-response></authenticate>")
	wantFailure(t, rc.Expect(nsSASL2, "failure"), "incorrect-encoding")
	rc.Write("<response xmlns='" + nsSASL2 + "'>YWJj</response>") // no exchange
	wantFailure(t, rc.Expect(nsSASL2, "failure"), "malformed-request")
	rc.Write("<authenticate xmlns='" + nsSASL2 + "' mechanism='SCRAM-SHA-256'/>") // no initial response: a challenge
	if e := rc.Expect(nsSASL2, "challenge"); strings.TrimSpace(e.Text) != "" {
		t.Fatalf("challenge for a missing initial response: %s", e)
	}
	rc.Write("<abort xmlns='" + nsSASL2 + "'/>")
	wantFailure(t, rc.Expect(nsSASL2, "failure"), "aborted")
	rc.Write("<authenticate xmlns='" + nsSASL2 + "' mechanism='HT-SHA-256-NONE'><initial-response>" + b64(a+"\x00short") +
		"</initial-response>" + userAgent(newUA()) + "<fast xmlns='" + nsFast + "'/></authenticate>")
	wantFailure(t, rc.Expect(nsSASL2, "failure"), "malformed-request")
	rc.Write("<authenticate xmlns='" + nsSASL2 + "' mechanism='HT-SHA-256-NONE'><initial-response>" + b64(a+"\x00"+strings.Repeat("x", 32)) +
		"</initial-response><fast xmlns='" + nsFast + "'/></authenticate>") // no user-agent id
	wantFailure(t, rc.Expect(nsSASL2, "failure"), "malformed-request")
	if id := wantSuccess(t, rc.sasl2Scram(f, a, pw, s2Opts{h: scramSHA1, inline: bind2("after", "")})); !strings.Contains(id, "/after/") {
		t.Fatalf("bound as %q", id)
	}
	// Authenticated: another <authenticate/> is not part of this stream any more.
	rc.Expect(xmppclient.NSStream, "features")
	rc.Write("<authenticate xmlns='" + nsSASL2 + "' mechanism='PLAIN'/>")
	rc.ExpectStreamError("unsupported-stanza-type")
	if srv.LogContains(pw) {
		t.Error("the server logged the password")
	}
}

// Rotation near expiry (XEP-0484 §4.5: a login with a token that has less than half of fast.token_lifetime left
// gets a new one without asking; the old one works until the new one is used) and expiry (§5.2:
// credentials-expired), on a server whose tokens live six seconds.
func TestSASL2FastRotationAndExpiry(t *testing.T) {
	srv := own(t, harness.Options{Sections: map[string]string{"fast": `token_lifetime = "6s"`}})
	a, pw := srv.user(t, "s2rot")
	ua, ua2 := newUA(), newUA()
	issued := time.Now()
	issue := func(ua string) string {
		t.Helper()
		rc, f := s2Dial(t, srv)
		succ := rc.sasl2Scram(f, a, pw, s2Opts{h: scramSHA256, ua: ua, inline: "<request-token xmlns='" + nsFast + "' mechanism='HT-SHA-256-NONE'/>"})
		tok := succ.Child(nsFast, "token").Get("token")
		if tok == "" {
			t.Fatalf("no token: %s", succ)
		}
		return tok
	}
	t1, t3 := issue(ua), issue(ua2)
	fast := func(tok, ua string, count int) *xmppclient.Elem {
		t.Helper()
		rc, _ := s2Dial(t, srv)
		return rc.sasl2Fast(a, tok, "HT-SHA-256-NONE", ua, fmt.Sprintf("count='%d'", count), "")
	}
	if succ := fast(t1, ua, 1); succ.Child(nsFast, "token") != nil {
		t.Fatalf("a new token while most of the lifetime is left: %s", succ)
	}
	time.Sleep(time.Until(issued.Add(3500 * time.Millisecond)))
	succ := fast(t1, ua, 2)
	wantSuccess(t, succ)
	t2 := succ.Child(nsFast, "token").Get("token")
	if t2 == "" || t2 == t1 {
		t.Fatalf("no rotation with less than half of the lifetime left: %s", succ)
	}
	// The old token is still valid, the new one not being used yet; rotation is still due, so it gets another new
	// one, which replaces the one never used (§4.5: SHOULD invalidate tokens generated and not used).
	succ = fast(t1, ua, 3)
	t2b := succ.Child(nsFast, "token").Get("token")
	if t2b == "" || t2b == t2 {
		t.Fatalf("no second rotation: %s", succ)
	}
	wantFailure(t, fast(t2, ua, 1), "not-authorized")
	if succ := fast(t2b, ua, 1); succ.Child(nsFast, "token") != nil {
		t.Fatalf("a fresh token rotated at once: %s", succ)
	}
	wantFailure(t, fast(t1, ua, 4), "not-authorized") // the new one was used: the old one is dead
	time.Sleep(time.Until(issued.Add(7 * time.Second)))
	wantFailure(t, fast(t3, ua2, 1), "credentials-expired")
}

// XEP-0474 in the RFC 6120 profile too: server-first carries h, the hash of the <mechanisms/> list and the XEP-0440
// channel-binding types.
func TestSSDPLegacySASL(t *testing.T) {
	srv := shared(t)
	rc, f := s2Dial(t, srv)
	var mechs, cbs []string
	for _, m := range f.Child(xmppclient.NSSASL, "mechanisms").Children(xmppclient.NSSASL, "mechanism") {
		mechs = append(mechs, m.Text)
	}
	for _, c := range f.Child(nsSCB, "sasl-channel-binding").Children(nsSCB, "channel-binding") {
		cbs = append(cbs, c.Get("type"))
	}
	slices.Sort(mechs)
	slices.Sort(cbs)
	d := sha256.Sum256([]byte(strings.Join(mechs, "\x1e") + "\x1f" + strings.Join(cbs, "\x1e")))
	rc.Write("<auth xmlns='" + xmppclient.NSSASL + "' mechanism='SCRAM-SHA-256'>" + b64("n,,n=someone,r=abcdefgh") + "</auth>")
	sf, err := base64.StdEncoding.DecodeString(rc.Expect(xmppclient.NSSASL, "challenge").Text)
	if err != nil {
		t.Fatal(err)
	}
	if want := "h=" + base64.StdEncoding.EncodeToString(d[:]); !slices.Contains(strings.Split(string(sf), ","), want) {
		t.Fatalf("server-first %q lacks %s", sf, want)
	}
	rc.Write("<abort xmlns='" + xmppclient.NSSASL + "'/>")
	rc.Expect(xmppclient.NSSASL, "failure")
}

// Advertised exactly when enabled: [fast] enabled = false leaves SASL2 without FAST (no inline <fast/>, no token,
// the HT mechanisms unknown); [sasl2] enabled = false leaves the RFC 6120 profile alone.
func TestSASL2Disabled(t *testing.T) {
	t.Run("fast", func(t *testing.T) {
		srv := own(t, harness.Options{Sections: map[string]string{"fast": "enabled = false"}})
		a, pw := srv.user(t, "nofast")
		rc, f := s2Dial(t, srv)
		if in := f.Child(nsSASL2, "authentication").Child(nsSASL2, "inline"); in == nil || in.Child(nsFast, "fast") != nil {
			t.Fatalf("inline features with FAST off: %s", f)
		}
		succ := rc.sasl2Scram(f, a, pw, s2Opts{h: scramSHA256, ua: newUA(), inline: "<request-token xmlns='" + nsFast + "' mechanism='HT-SHA-256-NONE'/>"})
		wantSuccess(t, succ)
		if succ.Child(nsFast, "token") != nil {
			t.Fatalf("a token with FAST off: %s", succ)
		}
		rc2, _ := s2Dial(t, srv)
		wantFailure(t, rc2.sasl2Fast(a, strings.Repeat("x", 88), "HT-SHA-256-NONE", newUA(), "", ""), "invalid-mechanism")
	})
	t.Run("sasl2", func(t *testing.T) {
		srv := own(t, harness.Options{Sections: map[string]string{"sasl2": "enabled = false"}})
		rc, f := s2Dial(t, srv)
		if f.Child(nsSASL2, "authentication") != nil || f.Child(xmppclient.NSSASL, "mechanisms") == nil {
			t.Fatalf("features with SASL2 off: %s", f)
		}
		rc.Write("<authenticate xmlns='" + nsSASL2 + "' mechanism='PLAIN'/>")
		rc.ExpectStreamError("unsupported-stanza-type")
	})
}

// XEP-0386 §2.2: <bound/> carries the XEP-0313 <metadata/> of the user's archive as of the bind: empty for an
// empty archive; after messages arrived while the user was away, <end/> is the newest of them (the stanza-id the
// offline copy is delivered with) and the same as what a <metadata/> query answers on the bound stream.
func TestSASL2Bind2MAMMetadata(t *testing.T) {
	srv := shared(t)
	pw := secret()
	a, b := newName(t, "s2ma"), newName(t, "s2mb")
	srv.AddUser(t, a, pw)
	srv.AddUser(t, b, pw)
	A := a + "@" + srv.Domain
	rc, f := s2Dial(t, srv)
	succ := rc.sasl2Scram(f, a, pw, s2Opts{h: scramSHA256, ua: newUA(), inline: bind2("MAMTest", "")})
	wantSuccess(t, succ)
	md := succ.Child(nsBind2, "bound").Child(nsMAM, "metadata")
	if md == nil || md.Child(nsMAM, "start") != nil || md.Child(nsMAM, "end") != nil {
		t.Fatalf("empty archive: want an empty <metadata/> in <bound/>, got %s", succ)
	}
	rc.Close()

	rb, _ := smLogin(t, srv, b, pw, "pc", true)
	for i := 0; i < 3; i++ {
		sendChat(rb, A, fmt.Sprintf("while away %d", i))
	}
	// An IQ to a's account is handled after the messages before it (ARCHITECTURE.md "Durability").
	rb.Write("<iq type='get' id='d1' to='" + A + "'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
	rb.ExpectIQ("d1")

	rc, f = s2Dial(t, srv)
	succ = rc.sasl2Scram(f, a, pw, s2Opts{h: scramSHA256, ua: newUA(), inline: bind2("MAMTest", inlineAll)})
	wantSuccess(t, succ)
	bound := succ.Child(nsBind2, "bound")
	md = bound.Child(nsMAM, "metadata")
	if md == nil || md.Child(nsMAM, "start").Get("id") == "" || md.Child(nsMAM, "end").Get("timestamp") == "" || bound.Child(nsSM, "enabled") == nil {
		t.Fatalf("want <metadata/> with start and end and SM <enabled/> in <bound/>, got %s", succ)
	}
	start, end := md.Child(nsMAM, "start").Get("id"), md.Child(nsMAM, "end").Get("id")
	rc.Expect(xmppclient.NSStream, "features")
	rc.Write("<iq type='get' id='md'><metadata xmlns='" + nsMAM + "'/></iq>")
	q := rc.ExpectIQ("md").Child(nsMAM, "metadata")
	if q.Child(nsMAM, "start").Get("id") != start || q.Child(nsMAM, "end").Get("id") != end {
		t.Errorf("<bound/> metadata %s..%s, the query's %s", start, end, q)
	}
	// §2.2: the bind cleared the offline messages (the archive holds them); the client syncs from the archive.
	rc.Write("<presence/>")
	res, others := rawMAMQuery(t, rc, "sync", "")
	if len(others) != 0 {
		t.Errorf("a Bind 2 client got messages outside the archive query: %v", others)
	}
	if len(res) != 3 || res[0].id != start || res[2].id != end {
		t.Errorf("archive query after the bind: %v; <bound/> said %s..%s", res, start, end)
	}
}

// mamResult is one XEP-0313 result message: the archive id and the archived body.
type mamResult struct{ id, body string }

// rawMAMQuery sends a mam:2 query (form: XML or "") on a raw stream and reads until its IQ answer: the result
// messages of the query, and every other message that came before the answer (presence and <r/> are skipped).
// The answer comes after the results (XEP-0313 §4.2), and after what the user actor sent the session before it
// handled the query (one mailbox, in order).
func rawMAMQuery(t *testing.T, rc *rawConn, qid, form string) (res []mamResult, others []string) {
	t.Helper()
	rc.Write("<iq type='set' id='" + qid + "'><query xmlns='" + nsMAM + "' queryid='" + qid + "'>" + form + "</query></iq>")
	for {
		e := nextNot(t, rc, true)
		switch {
		case e.Is(xmppclient.NSClient, "iq") && e.Get("id") == qid:
			if e.Get("type") != "result" || e.Child(nsMAM, "fin") == nil {
				t.Fatalf("query %s: %s", qid, e)
			}
			return res, others
		case e.Is(xmppclient.NSClient, "message"):
			if r := e.Child(nsMAM, "result"); r != nil && r.Get("queryid") == qid {
				res = append(res, mamResult{r.Get("id"), r.Child(nsForward, "forwarded").Child(xmppclient.NSClient, "message").ChildText("body")})
				continue
			}
			b := e.ChildText("body")
			if e.Child(xmppclient.NSDelay, "delay") != nil {
				b += "+delay"
			}
			others = append(others, b)
		}
	}
}

// XEP-0386 §2.2: a Bind 2 bind clears the user's offline messages "without sending them (as they will be provided
// by MAM)", and only those the archive holds: a message with <no-store/> (XEP-0334) or from a JID the user's
// preferences never archive was not archived, stays queued and is delivered at the first available presence.
// The cleared ones are gone from the queue, not only skipped: a later legacy login gets nothing either.
func TestSASL2Bind2OfflineFromArchive(t *testing.T) {
	srv := shared(t)
	a, pw := srv.user(t, "s2oa")
	b, bpw := srv.user(t, "s2ob")
	c, cpw := srv.user(t, "s2oc")
	A, C := srv.bare(a), srv.bare(c)
	// The preferences, set from a session that never becomes available: messages to the bare JID go offline
	// whether or not it is still bound when they arrive (RFC 6121 §8.5.2.1.1).
	ra, _ := smLogin(t, srv, a, pw, "setup", true)
	ra.Write("<iq type='set' id='p1'><prefs xmlns='" + nsMAM + "' default='always'><always/><never><jid>" + C + "</jid></never></prefs></iq>")
	if r := ra.ExpectIQ("p1"); r.Get("type") != "result" {
		t.Fatalf("prefs: %s", r)
	}
	ra.Close()

	bob := xmppclient.Online(t, srv.Server, b, bpw, "b")
	carol := xmppclient.Online(t, srv.Server, c, cpw, "c")
	bob.Send("<message type='chat' to='" + A + "'><body>archived 0</body></message>")
	bob.Send("<message type='chat' to='" + A + "'><body>not stored</body><no-store xmlns='urn:xmpp:hints'/></message>")
	bob.Send("<message type='chat' to='" + A + "'><body>archived 1</body></message>")
	carol.Send("<message type='chat' to='" + A + "'><body>never archived</body></message>")
	// An IQ to a's account is handled after the messages before it (ARCHITECTURE.md "Durability").
	for _, cl := range []*xmppclient.Client{bob, carol} {
		cl.IQ("<iq type='get' to='" + A + "'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
	}

	rc, f := s2Dial(t, srv)
	succ := rc.sasl2Scram(f, a, pw, s2Opts{h: scramSHA256, ua: newUA(), inline: bind2("OffTest", "")})
	wantSuccess(t, succ)
	md := succ.Child(nsBind2, "bound").Child(nsMAM, "metadata")
	if md == nil || md.Child(nsMAM, "end") == nil {
		t.Fatalf("want <metadata/> with <end/> in <bound/>, got %s", succ)
	}
	rc.Expect(xmppclient.NSStream, "features")
	rc.Write("<presence/>")
	res, offline := rawMAMQuery(t, rc, "sync", "")
	slices.Sort(offline)
	if want := []string{"never archived+delay", "not stored+delay"}; !slices.Equal(offline, want) {
		t.Errorf("offline messages delivered to the Bind 2 session: %v, want %v", offline, want)
	}
	if len(res) != 2 || res[0].body != "archived 0" || res[1].body != "archived 1" || res[1].id != md.Child(nsMAM, "end").Get("id") {
		t.Errorf("archive: %v, <bound/> metadata %s", res, md)
	}
	rc.Close()

	// Nothing is left in the queue: the non-archived messages were delivered, the archived ones cleared.
	again := xmppclient.Online(t, srv.Server, a, pw, "legacy")
	again.IQ("<iq type='get' to='" + A + "'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
	if m, err := again.Wait(func(e *xmppclient.Elem) bool { return e.Is(xmppclient.NSClient, "message") }, 0); err == nil {
		t.Errorf("a later legacy login got an offline message: %s", m)
	}
}

// Without an archive ([mam] enabled = false) a Bind 2 bind clears nothing: the client cannot get the offline
// messages from MAM, so they are delivered at its first presence as to any client.
func TestSASL2Bind2OfflineWithoutArchive(t *testing.T) {
	srv := own(t, harness.Options{Sections: map[string]string{"mam": "enabled = false"}})
	a, pw := srv.user(t, "alice")
	b, bpw := srv.user(t, "bob")
	A := srv.bare(a)
	bob := xmppclient.Online(t, srv.Server, b, bpw, "b")
	bob.Send("<message type='chat' to='" + A + "'><body>kept offline</body></message>")
	info := bob.IQ("<iq type='get' to='" + A + "'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
	// MAM off: none of its versions is advertised (mam:2, mam:1, mam:0), nor served.
	for _, f := range info.Child("", "query").Children("", "feature") {
		if strings.HasPrefix(f.Get("var"), "urn:xmpp:mam:") {
			t.Errorf("MAM off, yet the account advertises %s", f.Get("var"))
		}
	}
	if r := bob.IQ("<iq type='set'><query xmlns='urn:xmpp:mam:0' queryid='off'/></iq>"); r.Get("type") != "error" {
		t.Errorf("MAM off, a mam:0 query answered: %s", r)
	}

	rc, f := s2Dial(t, srv)
	succ := rc.sasl2Scram(f, a, pw, s2Opts{h: scramSHA256, ua: newUA(), inline: bind2("NoMAM", "")})
	wantSuccess(t, succ)
	if succ.Child(nsBind2, "bound").Child(nsMAM, "metadata") != nil {
		t.Errorf("archive metadata with MAM off: %s", succ)
	}
	rc.Expect(xmppclient.NSStream, "features")
	rc.Write("<presence/>")
	if got := bodies(t, rc, 1); got[0] != "kept offline+delay" {
		t.Errorf("offline message to a Bind 2 client without an archive: %v", got)
	}
}
