package bosh

import (
	"strings"
	"testing"

	"github.com/xmppd/xmppd/protocol/stream"
)

func TestParse(t *testing.T) {
	b, err := Parse([]byte("<body rid='1573741820' to='localhost' xml:lang='en' wait='60' hold='1' ver='1.6' xmpp:version='1.0' xmlns:xmpp='urn:xmpp:xbosh' xmlns='"+NS+"'/>"), 10000)
	if err != nil || b.RID != 1573741820 || b.To != "localhost" || b.Wait != 60 || b.Hold != 1 || b.Version != "1.0" || b.Lang != "en" || b.SID != "" || b.Inactivity != -1 {
		t.Fatalf("%+v %v", b, err)
	}
	b, err = Parse([]byte("<body rid='2' sid='s' xmlns='"+NS+"'><message xmlns='jabber:client' to='a@b'><body>x</body></message><iq xmlns='jabber:client' type='get' id='1'/></body>"), 10000)
	if err != nil || len(b.Elements) != 2 || b.Elements[0].Name.Local != "message" || b.Elements[1].ID != "1" {
		t.Fatalf("%+v %v", b, err)
	}
	b, err = Parse([]byte("<body rid='3' sid='s' xmpp:restart='true' xmlns:xmpp='urn:xmpp:xbosh' xmlns='"+NS+"'/>"), 10000)
	if err != nil || !b.Restart {
		t.Fatalf("%+v %v", b, err)
	}
	for _, bad := range []string{"", "<body/>", "<body xmlns='" + NS + "'/>", "<body rid='x' xmlns='" + NS + "'/>",
		"<body rid='1' xmlns='" + NS + "'><message/></body>", "<body rid='1' xmlns='" + NS + "'><message xmlns='jabber:client'>",
		"<body rid='1' wait='-1' xmlns='" + NS + "'/>", "<other rid='1' xmlns='" + NS + "'/>"} {
		if _, err := Parse([]byte(bad), 10000); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
}

func TestResponse(t *testing.T) {
	got := string(Response([]Attr{{"sid", "a'b"}}, [][]byte{[]byte("<message to='x'/>"), []byte("<stream:features/>")}))
	want := "<body xmlns='" + NS + "' sid='a&apos;b'><message xmlns='jabber:client' to='x'/><stream:features xmlns:stream='" + stream.NS + "'/></body>"
	if got != want {
		t.Errorf("got %s\nwant %s", got, want)
	}
	if got := string(Terminate("item-not-found", nil)); got != "<body xmlns='"+NS+"' type='terminate' condition='item-not-found'/>" {
		t.Error(got)
	}
	if e := StreamEnd([]byte(string(stream.AppendError(nil, stream.PolicyViolation, "")) + stream.Close)); !strings.Contains(string(e), "policy-violation") {
		t.Errorf("stream end: %q", e)
	}
	if e := StreamEnd([]byte(stream.Close)); e != nil {
		t.Errorf("clean end: %q", e)
	}
	if id := StreamID([]byte(stream.Header("abc", "localhost", ""))); id != "abc" {
		t.Errorf("stream id %q", id)
	}
}

func FuzzParse(f *testing.F) {
	f.Add("<body rid='1' sid='s' xmlns='" + NS + "'><iq xmlns='jabber:client' type='get' id='1'/></body>")
	f.Add("<body rid='1' to='localhost' wait='60' hold='1' xmlns='" + NS + "'/>")
	f.Fuzz(func(t *testing.T, s string) {
		b, err := Parse([]byte(s), 4096)
		if err != nil {
			return
		}
		for _, el := range b.Elements {
			if el.Name.Space == NS || el.Name.Space == "" {
				t.Fatalf("payload in the wrapper's namespace: %q", el.Raw)
			}
		}
	})
}
