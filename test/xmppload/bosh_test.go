package xmppload

import "testing"

func TestAppendQualified(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"<message to='a@b'><body>x</body></message>", "<message xmlns='jabber:client' to='a@b'><body>x</body></message>"},
		{"<presence/>", "<presence xmlns='jabber:client'/>"},
		{"<iq type='get' id='1'><query xmlns='jabber:iq:roster'/></iq>", "<iq xmlns='jabber:client' type='get' id='1'><query xmlns='jabber:iq:roster'/></iq>"},
		{"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AA==</auth>", "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AA==</auth>"},
		{"<r xmlns='urn:xmpp:sm:3'/>", "<r xmlns='urn:xmpp:sm:3'/>"},
	} {
		if got := string(appendQualified(nil, []byte(tc.in))); got != tc.want {
			t.Errorf("appendQualified(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestSplitBody(t *testing.T) {
	for _, tc := range []struct {
		in                   string
		ok                   bool
		sid, typ, cond, kids string
	}{
		{"<body xmlns='http://jabber.org/protocol/httpbind' sid='s1' requests='2'/>", true, "s1", "", "", ""},
		{"<body xmlns='http://jabber.org/protocol/httpbind'><message xmlns='jabber:client'/><r xmlns='urn:xmpp:sm:3'/></body>", true, "", "", "", "<message xmlns='jabber:client'/><r xmlns='urn:xmpp:sm:3'/>"},
		{"<?xml version='1.0'?>\n<body type=\"terminate\" condition=\"item-not-found\" xmlns=\"http://jabber.org/protocol/httpbind\"/>", true, "", "terminate", "item-not-found", ""},
		// 'xmpp:sid' is not 'sid'; a '>' inside a quoted value does not end the tag.
		{"<body xmlns='http://jabber.org/protocol/httpbind' xmpp:sid='no' authid='a>b' sid='yes'></body>", true, "yes", "", "", ""},
		{"<html>502</html>", false, "", "", "", ""},
		{"<body xmlns='http://jabber.org/protocol/httpbind'><message/>", false, "", "", "", ""},
	} {
		attrs, kids, ok := splitBody([]byte(tc.in))
		if ok != tc.ok {
			t.Errorf("splitBody(%q) ok = %v", tc.in, ok)
			continue
		}
		if !ok {
			continue
		}
		if got := attrOf(attrs, "sid"); got != tc.sid {
			t.Errorf("%q: sid %q, want %q", tc.in, got, tc.sid)
		}
		if got := attrOf(attrs, "type"); got != tc.typ {
			t.Errorf("%q: type %q, want %q", tc.in, got, tc.typ)
		}
		if got := attrOf(attrs, "condition"); got != tc.cond {
			t.Errorf("%q: condition %q, want %q", tc.in, got, tc.cond)
		}
		if string(kids) != tc.kids {
			t.Errorf("%q: children %q, want %q", tc.in, kids, tc.kids)
		}
	}
}
