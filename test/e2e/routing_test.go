package e2e

import (
	"testing"
	"time"

	"github.com/xmppd/xmppd/test/xmppclient"
)

// RFC 6120 §8 / RFC 6121 §8 routing outcomes for stanzas the server answers
// itself.
func TestRoutingErrors(t *testing.T) {
	srv := shared(t)
	a, apw := srv.user(t, "alice")
	b, _ := srv.user(t, "offline")
	alice := mustLogin(t, srv, a, apw, loginOpts{resource: "r"})
	alice.Send(`<presence/>`)
	d := srv.Domain

	iqCases := []struct {
		name, iq  string
		wantType  string // "result" or "error"
		wantCond  string
		wantEType string
	}{
		// XEP-0199 §4: server ping.
		{"ping-server", `<iq type='get' to='` + d + `'><ping xmlns='urn:xmpp:ping'/></iq>`, "result", "", ""},
		// No 'to': handled by the server on behalf of the account (RFC 6120
		// §10.3.3), ping answered.
		{"ping-no-to", `<iq type='get'><ping xmlns='urn:xmpp:ping'/></iq>`, "result", "", ""},
		// RFC 6120 §8.2.3 / XEP-0199 §6: a namespace the server does not
		// serve.
		{"unknown-ns-get", `<iq type='get' to='` + d + `'><query xmlns='urn:example:nothing'/></iq>`, "error", "service-unavailable", "cancel"},
		{"unknown-ns-set", `<iq type='set' to='` + d + `'><query xmlns='urn:example:nothing'/></iq>`, "error", "service-unavailable", "cancel"},
		// RFC 6121 §8.5.3.2.1: IQ to a full JID with no such resource.
		{"iq-offline-full-jid", `<iq type='get' to='` + srv.bare(b) + `/nowhere'><ping xmlns='urn:xmpp:ping'/></iq>`, "error", "service-unavailable", "cancel"},
		// RFC 6121 §8.5.1: IQ to an account that does not exist.
		{"iq-no-such-user", `<iq type='get' to='nobody-at-all@` + d + `/x'><ping xmlns='urn:xmpp:ping'/></iq>`, "error", "service-unavailable", "cancel"},
		// RFC 6121 §8.5.2.2.3 (bare JID, no resources): unknown namespace
		// handled by the server on the user's behalf.
		{"iq-bare-offline-unknown-ns", `<iq type='get' to='` + srv.bare(b) + `'><query xmlns='urn:example:nothing'/></iq>`, "error", "service-unavailable", "cancel"},
		// No s2s: a domain we do not serve (RFC 6120 §8.3.3.15).
		{"iq-remote-domain", `<iq type='get' to='example.org'><ping xmlns='urn:xmpp:ping'/></iq>`, "error", "remote-server-not-found", "cancel"},
		{"iq-remote-user", `<iq type='get' to='someone@example.org/r'><ping xmlns='urn:xmpp:ping'/></iq>`, "error", "remote-server-not-found", "cancel"},
		// RFC 7622 / RFC 6120 §8.3.3.8: an address that is not a JID.
		{"iq-jid-malformed", `<iq type='get' to='@` + d + `'><ping xmlns='urn:xmpp:ping'/></iq>`, "error", "jid-malformed", "modify"},
		// An IQ get must contain exactly one child (RFC 6120 §8.2.3).
		{"iq-get-no-child", `<iq type='get' to='` + d + `'/>`, "error", "bad-request", "modify"},
	}
	for _, tc := range iqCases {
		t.Run(tc.name, func(t *testing.T) {
			e := alice.IQ(tc.iq)
			if e.Get("type") != tc.wantType {
				t.Fatalf("got %s, want type %s %s", e, tc.wantType, tc.wantCond)
			}
			if tc.wantType == "error" {
				typ, cond := e.StanzaError()
				if cond != tc.wantCond || typ != tc.wantEType {
					t.Fatalf("error %s/%s, want %s/%s: %s", typ, cond, tc.wantEType, tc.wantCond, e)
				}
			}
		})
	}

	msgCases := []struct {
		name, to, cond string
	}{
		// RFC 6121 §8.5.1 allows silently dropping; issue 2 chose to
		// return the error.
		{"message-no-such-user", "nobody-at-all@" + d, "service-unavailable"},
		{"message-remote-domain", "someone@example.org", "remote-server-not-found"},
		{"message-jid-malformed", "a@b@" + d, "jid-malformed"},
	}
	for _, tc := range msgCases {
		t.Run(tc.name, func(t *testing.T) {
			id := "m-" + tc.name
			alice.Send(`<message to='` + xmlEscape(tc.to) + `' type='chat' id='` + id + `'><body>x</body></message>`)
			e := alice.Expect("error for "+tc.name, func(e *xmppclient.Elem) bool {
				return e.Is(xmppclient.NSClient, "message") && e.Get("id") == id
			})
			if e.Get("type") != "error" {
				t.Fatalf("got %s, want an error", e)
			}
			if _, cond := e.StanzaError(); cond != tc.cond {
				t.Fatalf("error %q, want %q: %s", cond, tc.cond, e)
			}
		})
	}

	// Presence to a non-existent user is silently ignored (RFC 6121 §8.5.1).
	t.Run("presence-no-such-user", func(t *testing.T) {
		alice.Send(`<presence to='nobody-at-all@` + d + `' id='p-nobody'/>`)
		alice.IQ(`<iq type='get' to='` + d + `'><ping xmlns='urn:xmpp:ping'/></iq>`)
		alice.Absent("reply to presence for a non-existent user", 300*time.Millisecond, func(e *xmppclient.Elem) bool {
			return e.Get("id") == "p-nobody"
		})
	})

	// An IQ between two online users is routed and the answer routed back.
	t.Run("iq-between-clients", func(t *testing.T) {
		c, cpw := srv.user(t, "carol")
		carol := mustLogin(t, srv, c, cpw, loginOpts{resource: "desk"})
		carol.Send(`<presence/>`)
		// Carol's handler does not serve ping, so mellium answers
		// service-unavailable; what matters is the round trip.
		e := alice.IQ(`<iq type='get' to='` + carol.JID.String() + `'><query xmlns='urn:example:echo'/></iq>`)
		if e.Get("from") != carol.JID.String() {
			t.Fatalf("IQ answer from %q, want %q: %s", e.Get("from"), carol.JID, e)
		}
		if _, cond := e.StanzaError(); cond != "service-unavailable" {
			t.Fatalf("want carol's service-unavailable routed back: %s", e)
		}
	})
}
