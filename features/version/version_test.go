package version

import (
	"testing"

	"github.com/xmppd/xmppd/feature/featuretest"
	"github.com/xmppd/xmppd/protocol/stanza"
)

func TestVersion(t *testing.T) {
	if len(Feature.IQs) != 1 || Feature.IQs[0].Session != nil || Feature.IQs[0].Account != nil {
		t.Fatalf("routes %+v", Feature.IQs)
	}
	srv := featuretest.NewServer(t, Feature)
	srv.Ver = "1.2<3"
	s := featuretest.NewSession(srv, "a@example.com/r")
	Feature.IQs[0].Server(featuretest.IQ(t, s, nil, "<iq from='a@example.com/r' to='example.com' type='get' id='v1'><query xmlns='jabber:iq:version'/></iq>"))
	want := "<iq type='result' from='example.com' to='a@example.com/r' id='v1'><query xmlns='jabber:iq:version'><name>xmppd</name><version>1.2&lt;3</version></query></iq>"
	if len(s.Client) != 1 || s.Client[0].Raw != want {
		t.Fatalf("answers %+v\nwant %q", s.Client, want)
	}
}

func TestVersionSetRefused(t *testing.T) {
	srv := featuretest.NewServer(t, Feature)
	s := featuretest.NewSession(srv, "a@example.com/r")
	Feature.IQs[0].Server(featuretest.IQ(t, s, nil, "<iq from='a@example.com/r' to='example.com' type='set' id='v2'><query xmlns='jabber:iq:version'/></iq>"))
	if len(s.Client) != 1 || s.Client[0].Head.Type != "error" || featuretest.ErrorCondition(t, s.Client[0]) != string(stanza.BadRequest) {
		t.Fatalf("answers %+v", s.Client)
	}
}
