package extdisco

import (
	"testing"
	"time"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/feature/featuretest"
	"github.com/xmppd/xmppd/protocol/turncred"
	"github.com/xmppd/xmppd/protocol/xmlstream"
)

func parse(t *testing.T, s string) *xmlstream.Node {
	t.Helper()
	n, err := featuretest.Stanza(t, "<iq xmlns='jabber:client' type='result' id='x'><services xmlns='"+NS+"'>"+s+"</services></iq>").Node()
	if err != nil {
		t.Fatal(err)
	}
	return n.Elements()[0].Elements()[0]
}

func TestAppendService(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	turn := &config.ExternalService{Type: "turns", Host: "turn.example.org", Port: 5349, Transport: "tcp", Name: "TURN",
		Secret: "s3cret", TTL: config.Duration{Duration: 2 * time.Hour}}
	n := parse(t, string(appendService(nil, turn, "alice@localhost", now)))
	if n.Attr("type") != "turns" || n.Attr("host") != "turn.example.org" || n.Attr("port") != "5349" || n.Attr("transport") != "tcp" ||
		n.Attr("restricted") != "1" || n.Attr("expires") != "2027-01-15T10:00:00Z" || n.Attr("username") != "1800007200:alice@localhost" {
		t.Fatalf("turn service: %+v", n.Attrs)
	}
	if u, err := turncred.Verify("s3cret", n.Attr("username"), n.Attr("password"), now); err != nil || u != "alice@localhost" {
		t.Fatalf("credentials do not verify: %v", err)
	}
	stun := &config.ExternalService{Type: "stun", Host: "stun.example.org"}
	n = parse(t, string(appendService(nil, stun, "alice@localhost", now)))
	if n.Attr("port") != "" || n.Attr("username") != "" || n.Attr("restricted") != "" || n.Attr("host") != "stun.example.org" {
		t.Fatalf("stun service: %+v", n.Attrs)
	}
}

func TestEnabledOnlyWithServices(t *testing.T) {
	cfg := config.Default()
	if Feature.Enabled(&cfg) {
		t.Fatal("enabled without services")
	}
	cfg.ExternalServices = []config.ExternalService{{Type: "stun", Host: "h"}}
	if !Feature.Enabled(&cfg) {
		t.Fatal("disabled with a service")
	}
}
