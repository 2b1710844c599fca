package legacysession

import (
	"testing"

	"github.com/xmppd/xmppd/feature/featuretest"
)

func TestSession(t *testing.T) {
	if Feature.Name != "core" || len(Feature.ServerVars) != 1 || Feature.ServerVars[0] != "msgoffline" {
		t.Fatalf("feature %+v", Feature)
	}
	if len(Feature.IQs) != 1 || Feature.IQs[0].Account != nil {
		t.Fatalf("routes %+v", Feature.IQs)
	}
	srv := featuretest.NewServer(t, Feature)
	r := Feature.IQs[0]
	s := featuretest.NewSession(srv, "a@example.com/r")
	r.Server(featuretest.IQ(t, s, nil, "<iq from='a@example.com/r' to='example.com' type='set' id='s1'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>"))
	r.Session(featuretest.IQ(t, s, nil, "<iq from='a@example.com/r' type='set' id='s2'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>"))
	want := []string{
		"<iq type='result' from='example.com' to='a@example.com/r' id='s1'/>",
		"<iq type='result' to='a@example.com/r' id='s2'/>",
	}
	if len(s.Client) != len(want) {
		t.Fatalf("answers %+v", s.Client)
	}
	for i, w := range want {
		if s.Client[i].Raw != w {
			t.Errorf("answer %d %q, want %q", i, s.Client[i].Raw, w)
		}
	}
}
