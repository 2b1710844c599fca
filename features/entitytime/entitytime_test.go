package entitytime

import (
	"testing"
	"time"

	"github.com/xmppd/xmppd/feature/featuretest"
	"github.com/xmppd/xmppd/protocol/stanza"
)

func TestPayload(t *testing.T) {
	at := time.Date(2024, 2, 29, 23, 4, 5, 678_900_000, time.FixedZone("x", 3600))
	want := "<time xmlns='urn:xmpp:time'><tzo>+00:00</tzo><utc>2024-02-29T22:04:05.678Z</utc></time>"
	if got := Payload(at); got != want {
		t.Errorf("%q, want %q", got, want)
	}
}

func TestTime(t *testing.T) {
	if Feature.Name != "time" || len(Feature.IQs) != 1 || Feature.IQs[0].Session != nil || Feature.IQs[0].Account != nil {
		t.Fatalf("feature %+v", Feature)
	}
	srv := featuretest.NewServer(t, Feature)
	s := featuretest.NewSession(srv, "a@example.com/r")
	before := time.Now().UTC().Truncate(time.Millisecond)
	Feature.IQs[0].Server(featuretest.IQ(t, s, nil, "<iq from='a@example.com/r' to='example.com' type='get' id='t1'><time xmlns='urn:xmpp:time'/></iq>"))
	after := time.Now().UTC()
	if len(s.Client) != 1 || s.Client[0].Head.Type != "result" || s.Client[0].Head.ID != "t1" {
		t.Fatalf("answers %+v", s.Client)
	}
	tm := featuretest.Node(t, s.Client[0]).Child(NS, "time")
	if tm == nil || tm.Child(NS, "tzo").TextContent() != "+00:00" {
		t.Fatalf("answer %q", s.Client[0].Raw)
	}
	utc, err := time.Parse("2006-01-02T15:04:05.000Z", tm.Child(NS, "utc").TextContent())
	if err != nil || utc.Before(before) || utc.After(after) {
		t.Errorf("utc %v (%v) not within [%v, %v]", utc, err, before, after)
	}
}

func TestTimeSetRefused(t *testing.T) {
	srv := featuretest.NewServer(t, Feature)
	s := featuretest.NewSession(srv, "a@example.com/r")
	Feature.IQs[0].Server(featuretest.IQ(t, s, nil, "<iq from='a@example.com/r' to='example.com' type='set' id='t2'><time xmlns='urn:xmpp:time'/></iq>"))
	if len(s.Client) != 1 || featuretest.ErrorCondition(t, s.Client[0]) != string(stanza.BadRequest) {
		t.Fatalf("answers %+v", s.Client)
	}
}
