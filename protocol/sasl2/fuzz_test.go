package sasl2

import (
	"testing"

	"github.com/xmppd/xmppd/protocol/xmlstream"
)

// FuzzParseAuthenticate: whatever a client sends parses or fails with an error, never panics, and what parses keeps
// the limits the conn relies on (a mechanism name, bounded user-agent id and tag).
func FuzzParseAuthenticate(f *testing.F) {
	for _, s := range []string{
		"<authenticate xmlns='urn:xmpp:sasl:2' mechanism='SCRAM-SHA-256'><initial-response>biwsbj11LHI9YQ==</initial-response></authenticate>",
		"<authenticate xmlns='urn:xmpp:sasl:2' mechanism='PLAIN'><user-agent id='x'><software>s</software></user-agent>" +
			"<bind xmlns='urn:xmpp:bind:0'><tag>t</tag><enable xmlns='urn:xmpp:sm:3' resume='1'/><enable xmlns='urn:xmpp:carbons:2'/></bind></authenticate>",
		"<authenticate xmlns='urn:xmpp:sasl:2' mechanism='HT-SHA-256-NONE'><fast xmlns='urn:xmpp:fast:0' count='1'/>" +
			"<resume xmlns='urn:xmpp:sm:3' previd='p' h='0'/><request-token xmlns='urn:xmpp:fast:0' mechanism='HT-SHA-256-NONE'/></authenticate>",
		"<authenticate xmlns='urn:xmpp:sasl:2'/>",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := xmlstream.ParseNode(s, "jabber:client")
		if err != nil {
			return
		}
		a, err := ParseAuthenticate(n)
		if err != nil {
			return
		}
		if a.Mechanism == "" || len(a.UserAgent.ID) > MaxUserAgentID {
			t.Fatalf("accepted %+v", a)
		}
		if a.Bind != nil && len(a.Bind.Inline) > maxInline {
			t.Fatalf("%d inline elements", len(a.Bind.Inline))
		}
		if a.HasInitial {
			_ = Challenge(a.Initial)
		}
	})
}
