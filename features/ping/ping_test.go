package ping

import (
	"testing"

	"github.com/xmppd/xmppd/feature"
	"github.com/xmppd/xmppd/feature/featuretest"
	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/protocol/xmlstream"
)

func route(t *testing.T) feature.IQRoute {
	t.Helper()
	if len(Feature.IQs) != 1 || Feature.IQs[0].Name != (xmlstream.Name{Space: stanza.NSPing, Local: "ping"}) {
		t.Fatalf("routes %+v", Feature.IQs)
	}
	r := Feature.IQs[0]
	if r.Account != nil {
		t.Fatal("ping is not answered on behalf of other users")
	}
	return r
}

func TestPing(t *testing.T) {
	r := route(t)
	srv := featuretest.NewServer(t, Feature)
	for _, tc := range []struct {
		name, raw, want string
		h               func(*feature.IQ)
	}{
		{"to the server", "<iq from='a@example.com/r' to='example.com' type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>",
			"<iq type='result' from='example.com' to='a@example.com/r' id='p1'/>", r.Server},
		{"no to", "<iq from='a@example.com/r' type='get' id='p2'><ping xmlns='urn:xmpp:ping'/></iq>",
			"<iq type='result' to='a@example.com/r' id='p2'/>", r.Session},
		{"own bare JID", "<iq from='a@example.com/r' to='a@example.com' type='get' id='p3'><ping xmlns='urn:xmpp:ping'/></iq>",
			"<iq type='result' from='a@example.com' to='a@example.com/r' id='p3'/>", r.Session},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := featuretest.NewSession(srv, "a@example.com/r")
			tc.h(featuretest.IQ(t, s, nil, tc.raw))
			if len(s.Client) != 1 || s.Client[0].Raw != tc.want {
				t.Fatalf("answers %+v, want %q", s.Client, tc.want)
			}
			if len(s.Routed) != 0 || len(s.Sent) != 0 {
				t.Errorf("routed %v sent %v", s.Routed, s.Sent)
			}
		})
	}
	if Feature.Name != "ping" || len(Feature.ServerVars) != 1 || Feature.ServerVars[0] != "urn:xmpp:ping" {
		t.Errorf("feature %+v", Feature)
	}
}
