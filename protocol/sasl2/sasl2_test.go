package sasl2

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/xmppd/xmppd/protocol/sasl"
	"github.com/xmppd/xmppd/protocol/xmlstream"
)

func parse(t testing.TB, s string) *xmlstream.Node {
	t.Helper()
	n, err := xmlstream.ParseNode(s, "jabber:client")
	if err != nil {
		t.Fatalf("ParseNode(%s): %v", s, err)
	}
	return n
}

func TestParseAuthenticate(t *testing.T) {
	const head = "<authenticate xmlns='urn:xmpp:sasl:2' mechanism='SCRAM-SHA-256'>"
	for _, tc := range []struct {
		name, xml string
		err       error
		check     func(t *testing.T, a Authenticate)
	}{
		{name: "initial response, user agent", xml: head + "<initial-response>\n  biwsbj11c2VyLHI9YWJj\n</initial-response>" +
			"<user-agent id='d4565fa7-4d72-4749-b3d3-740edbf87770'><software>AwesomeXMPP</software><device>Kiva's Phone</device></user-agent></authenticate>",
			check: func(t *testing.T, a Authenticate) {
				if a.Mechanism != "SCRAM-SHA-256" || !a.HasInitial || string(a.Initial) != "n,,n=user,r=abc" {
					t.Fatalf("%+v", a)
				}
				if a.UserAgent != (UserAgent{ID: "d4565fa7-4d72-4749-b3d3-740edbf87770", Software: "AwesomeXMPP", Device: "Kiva's Phone"}) {
					t.Fatalf("user agent %+v", a.UserAgent)
				}
				if a.Bind != nil || a.Resume != nil || a.Fast != nil || a.RequestToken != "" {
					t.Fatalf("extras: %+v", a)
				}
			}},
		{name: "no initial response", xml: head + "</authenticate>", check: func(t *testing.T, a Authenticate) {
			if a.HasInitial {
				t.Fatal("HasInitial")
			}
		}},
		{name: "empty initial response", xml: head + "<initial-response/></authenticate>", check: func(t *testing.T, a Authenticate) {
			if !a.HasInitial || len(a.Initial) != 0 {
				t.Fatal("empty initial response")
			}
		}},
		{name: "bind with inline features", xml: head + "<bind xmlns='urn:xmpp:bind:0'><tag> AwesomeXMPP </tag>" +
			"<enable xmlns='urn:xmpp:carbons:2'/><enable xmlns='urn:xmpp:sm:3' resume='true' max='60'/><inactive xmlns='urn:xmpp:csi:0'/></bind></authenticate>",
			check: func(t *testing.T, a Authenticate) {
				b := a.Bind
				if b == nil || b.Tag != "AwesomeXMPP" || b.SM == nil || !b.SM.Resume || b.SM.Max != 60 || len(b.Inline) != 2 {
					t.Fatalf("bind %+v", b)
				}
				if b.Inline[0].Name.Space != "urn:xmpp:carbons:2" || b.Inline[1].Name.Local != "inactive" {
					t.Fatalf("inline %v %v", b.Inline[0].Name, b.Inline[1].Name)
				}
			}},
		{name: "resume and fast", xml: "<authenticate xmlns='urn:xmpp:sasl:2' mechanism='HT-SHA-256-NONE'><initial-response>dXNlcgA=</initial-response>" +
			"<resume xmlns='urn:xmpp:sm:3' previd='abc' h='4294967295'/><fast xmlns='urn:xmpp:fast:0' count='7' invalidate='1'/>" +
			"<request-token xmlns='urn:xmpp:fast:0' mechanism='HT-SHA-256-EXPR'/></authenticate>",
			check: func(t *testing.T, a Authenticate) {
				if a.Resume == nil || a.Resume.PrevID != "abc" || a.Resume.H != 4294967295 {
					t.Fatalf("resume %+v", a.Resume)
				}
				if a.Fast == nil || !a.Fast.HasCount || a.Fast.Count != 7 || !a.Fast.Invalidate || a.RequestToken != "HT-SHA-256-EXPR" {
					t.Fatalf("fast %+v, token %q", a.Fast, a.RequestToken)
				}
			}},
		{name: "fast without count", xml: head + "<fast xmlns='urn:xmpp:fast:0'/></authenticate>", check: func(t *testing.T, a Authenticate) {
			if a.Fast == nil || a.Fast.HasCount || a.Fast.Invalidate {
				t.Fatalf("%+v", a.Fast)
			}
		}},
		{name: "unknown children ignored", xml: head + "<supported><mechanism>X</mechanism></supported><x xmlns='urn:other'/></authenticate>"},
		{name: "no mechanism", xml: "<authenticate xmlns='urn:xmpp:sasl:2'/>", err: ErrMalformed},
		{name: "mechanism too long", xml: "<authenticate xmlns='urn:xmpp:sasl:2' mechanism='ABCDEFGHIJKLMNOPQRSTU'/>", err: ErrMalformed},
		{name: "wrong element", xml: "<auth xmlns='urn:xmpp:sasl:2' mechanism='PLAIN'/>", err: ErrMalformed},
		{name: "bad base64", xml: head + "<initial-response>!!</initial-response></authenticate>", err: &sasl.Failure{}},
		{name: "two initial responses", xml: head + "<initial-response/><initial-response/></authenticate>", err: ErrMalformed},
		{name: "resume without previd", xml: head + "<resume xmlns='urn:xmpp:sm:3' h='1'/></authenticate>", err: ErrMalformed},
		{name: "count not a number", xml: head + "<fast xmlns='urn:xmpp:fast:0' count='-1'/></authenticate>", err: ErrMalformed},
		{name: "count too big", xml: head + "<fast xmlns='urn:xmpp:fast:0' count='4294967296'/></authenticate>", err: ErrMalformed},
		{name: "bad invalidate", xml: head + "<fast xmlns='urn:xmpp:fast:0' invalidate='yes'/></authenticate>", err: ErrMalformed},
		{name: "request-token without mechanism", xml: head + "<request-token xmlns='urn:xmpp:fast:0'/></authenticate>", err: ErrMalformed},
		{name: "tag too long", xml: head + "<bind xmlns='urn:xmpp:bind:0'><tag>" + strings.Repeat("x", 65) + "</tag></bind></authenticate>", err: ErrMalformed},
		{name: "two sm enables", xml: head + "<bind xmlns='urn:xmpp:bind:0'><enable xmlns='urn:xmpp:sm:3'/><enable xmlns='urn:xmpp:sm:3'/></bind></authenticate>", err: ErrMalformed},
		{name: "user agent id too long", xml: head + "<user-agent id='" + strings.Repeat("a", 257) + "'/></authenticate>", err: ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := ParseAuthenticate(parse(t, tc.xml))
			switch e := tc.err.(type) {
			case nil:
				if err != nil {
					t.Fatalf("err = %v", err)
				}
			case *sasl.Failure:
				var f *sasl.Failure
				if !errors.As(err, &f) || f.Condition != sasl.IncorrectEncoding {
					t.Fatalf("err = %v, want incorrect-encoding", err)
				}
			default:
				if !errors.Is(err, e) {
					t.Fatalf("err = %v, want %v", err, e)
				}
			}
			if tc.check != nil && err == nil {
				tc.check(t, a)
			}
		})
	}
}

func TestParseResponse(t *testing.T) {
	if b, err := ParseResponse(parse(t, "<response xmlns='urn:xmpp:sasl:2'> YWJj </response>")); err != nil || string(b) != "abc" {
		t.Fatalf("%q %v", b, err)
	}
	if _, err := ParseResponse(parse(t, "<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>YWJj</response>")); err == nil {
		t.Fatal("SASL1 response accepted")
	}
}

func TestEncoders(t *testing.T) {
	exp := time.Date(2020, 3, 12, 14, 36, 15, 0, time.UTC)
	for _, tc := range []struct{ got, want string }{
		{Challenge([]byte("r=abc")), "<challenge xmlns='urn:xmpp:sasl:2'>cj1hYmM=</challenge>"},
		{Challenge(nil), "<challenge xmlns='urn:xmpp:sasl:2'></challenge>"},
		{Success([]byte("v=x"), "a@b/c&d", "<x/>"), "<success xmlns='urn:xmpp:sasl:2'><additional-data>dj14</additional-data>" +
			"<authorization-identifier>a@b/c&amp;d</authorization-identifier><x/></success>"},
		{Success(nil, "a@b", ""), "<success xmlns='urn:xmpp:sasl:2'><authorization-identifier>a@b</authorization-identifier></success>"},
		{Failure("not-authorized", "a<b"), "<failure xmlns='urn:xmpp:sasl:2'><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>" +
			"<text xml:lang='en'>a&lt;b</text></failure>"},
		{Failure("aborted", ""), "<failure xmlns='urn:xmpp:sasl:2'><aborted xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/></failure>"},
		{Feature([]string{"SCRAM-SHA-1"}, "<sm xmlns='urn:xmpp:sm:3'/>"), "<authentication xmlns='urn:xmpp:sasl:2'><mechanism>SCRAM-SHA-1</mechanism>" +
			"<inline><sm xmlns='urn:xmpp:sm:3'/></inline></authentication>"},
		{BindFeature([]string{"urn:xmpp:carbons:2"}), "<bind xmlns='urn:xmpp:bind:0'><inline><feature var='urn:xmpp:carbons:2'/></inline></bind>"},
		{BindFeature(nil), "<bind xmlns='urn:xmpp:bind:0'></bind>"},
		{Bound(""), "<bound xmlns='urn:xmpp:bind:0'/>"},
		{FastFeature([]string{"HT-SHA-256-NONE"}), "<fast xmlns='urn:xmpp:fast:0'><mechanism>HT-SHA-256-NONE</mechanism></fast>"},
		{Token("t'k", exp), "<token xmlns='urn:xmpp:fast:0' expiry='2020-03-12T14:36:15Z' token='t&apos;k'/>"},
		{Resource("AwesomeXMPP", "rQ7L"), "AwesomeXMPP/rQ7L"},
		{Resource("", "rQ7L"), "rQ7L"},
	} {
		if tc.got != tc.want {
			t.Errorf("got  %s\nwant %s", tc.got, tc.want)
		}
	}
	// What we encode parses back.
	if _, err := xmlstream.ParseNode(Token("a&b", exp), ""); err != nil {
		t.Fatal(err)
	}
}
