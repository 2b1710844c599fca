package stanza

import (
	"testing"

	"github.com/xmppd/xmppd/protocol/stream"
)

const (
	xmlnsStanzas = " xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'"
	textOpen     = "<text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas' xml:lang='en'>"
)

func TestNamespaces(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{NSClient, "jabber:client"},
		{NSServer, "jabber:server"},
		{NSStanzas, "urn:ietf:params:xml:ns:xmpp-stanzas"},
		{NSTLS, "urn:ietf:params:xml:ns:xmpp-tls"},
		{NSSASL, "urn:ietf:params:xml:ns:xmpp-sasl"},
		{NSBind, "urn:ietf:params:xml:ns:xmpp-bind"},
		{NSSession, "urn:ietf:params:xml:ns:xmpp-session"},
		{NSRoster, "jabber:iq:roster"},
		{NSRegister, "jabber:iq:register"},
		{NSRegFeat, "http://jabber.org/features/iq-register"},
		{NSPing, "urn:xmpp:ping"},
		{NSDelay, "urn:xmpp:delay"},
		{NSPreApp, "urn:xmpp:features:pre-approval"},
		{NSRosterV, "urn:xmpp:features:rosterver"},
		{NSDiscoInf, "http://jabber.org/protocol/disco#info"},
		{NSDiscoIt, "http://jabber.org/protocol/disco#items"},
		{NSVersion, "jabber:iq:version"},
		{NSXData, "jabber:x:data"},
		{NSClient, stream.NSClient},
	} {
		if tc.got != tc.want {
			t.Errorf("%q, want %q", tc.got, tc.want)
		}
	}
}

// Every stanza condition of RFC 6120 §8.3.3 with the type the RFC gives as usual, in the order of its subsections.
var conditions = []struct {
	c    Condition
	name string
	typ  string
}{
	{BadRequest, "bad-request", Modify},
	{Conflict, "conflict", Cancel},
	{FeatureNotImplemented, "feature-not-implemented", Cancel},
	{Forbidden, "forbidden", Auth},
	{Gone, "gone", Cancel},
	{InternalServerError, "internal-server-error", Cancel},
	{ItemNotFound, "item-not-found", Cancel},
	{JIDMalformed, "jid-malformed", Modify},
	{NotAcceptable, "not-acceptable", Modify},
	{NotAllowed, "not-allowed", Cancel},
	{NotAuthorized, "not-authorized", Auth},
	{PolicyViolation, "policy-violation", Modify},
	{RecipientUnavailable, "recipient-unavailable", Wait},
	{Redirect, "redirect", Modify},
	{RegistrationRequired, "registration-required", Auth},
	{RemoteServerNotFound, "remote-server-not-found", Cancel},
	{RemoteServerTimeout, "remote-server-timeout", Wait},
	{ResourceConstraint, "resource-constraint", Wait},
	{ServiceUnavailable, "service-unavailable", Cancel},
	{SubscriptionRequired, "subscription-required", Auth},
	{UndefinedCondition, "undefined-condition", Cancel},
	{UnexpectedRequest, "unexpected-request", Wait},
}

func TestConditions(t *testing.T) {
	if len(conditions) != 22 {
		t.Fatalf("RFC 6120 §8.3.3 defines 22 conditions, table has %d", len(conditions))
	}
	for _, tc := range conditions {
		if string(tc.c) != tc.name {
			t.Errorf("%q, want %q", tc.c, tc.name)
		}
		if !tc.c.Defined() {
			t.Errorf("%q not Defined", tc.c)
		}
		if e := NewError(tc.c); e != (Error{Type: tc.typ, Condition: tc.c}) {
			t.Errorf("NewError(%q) = %+v, want type %q", tc.c, e, tc.typ)
		}
	}
	for _, c := range []Condition{"", PaymentRequired, "host-unknown", "Bad-Request", "x"} {
		if c.Defined() {
			t.Errorf("%q Defined", c)
		}
		if e := NewError(c); e != (Error{Type: Cancel, Condition: c}) {
			t.Errorf("NewError(%q) = %+v, want type cancel", c, e)
		}
	}
	if PaymentRequired != "payment-required" {
		t.Errorf("PaymentRequired = %q", PaymentRequired)
	}
}

func TestErrorAppendXML(t *testing.T) {
	tests := []struct {
		name string
		e    Error
		want string
	}{
		{"bare", NewError(ItemNotFound),
			"<error type='cancel'><item-not-found" + xmlnsStanzas + "/></error>"},
		{"text", NewError(BadRequest).WithText("invalid resourcepart"),
			"<error type='modify'><bad-request" + xmlnsStanzas + "/>" + textOpen + "invalid resourcepart</text></error>"},
		{"text escaped", NewError(NotAcceptable).WithText("a<b>&c\"d'e\r\n\tf"),
			"<error type='modify'><not-acceptable" + xmlnsStanzas + "/>" + textOpen + "a&lt;b&gt;&amp;c\"d'e&#xD;\n\tf</text></error>"},
		{"text invalid chars", NewError(Forbidden).WithText("x\x01y\xc3"),
			"<error type='auth'><forbidden" + xmlnsStanzas + "/>" + textOpen + "x\uFFFDy\uFFFD</text></error>"},
		{"by", Error{Type: Wait, Condition: ResourceConstraint, By: "example.com"},
			"<error type='wait' by='example.com'><resource-constraint" + xmlnsStanzas + "/></error>"},
		{"by escaped", Error{Type: Cancel, Condition: Gone, By: "a'b\"<&>\n"},
			"<error type='cancel' by='a&apos;b&quot;&lt;&amp;&gt;&#xA;'><gone" + xmlnsStanzas + "/></error>"},
		{"extra after text", Error{Type: Cancel, Condition: NotAcceptable, Text: "blocked",
			Extra: "<blocked xmlns='urn:xmpp:blocking:errors'/>"},
			"<error type='cancel'><not-acceptable" + xmlnsStanzas + "/>" + textOpen + "blocked</text>" +
				"<blocked xmlns='urn:xmpp:blocking:errors'/></error>"},
		{"all", Error{Type: Modify, Condition: PolicyViolation, Text: "t", By: "b", Extra: "<x xmlns='u'/>"},
			"<error type='modify' by='b'><policy-violation" + xmlnsStanzas + "/>" + textOpen + "t</text><x xmlns='u'/></error>"},
		{"shared name", NewError(InternalServerError),
			"<error type='cancel'><internal-server-error" + xmlnsStanzas + "/></error>"},
	}
	for _, tc := range tests {
		if got := string(tc.e.AppendXML(nil)); got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, got, tc.want)
		}
		if got := string(tc.e.AppendXML([]byte("<iq>"))); got != "<iq>"+tc.want {
			t.Errorf("%s: AppendXML does not append: %s", tc.name, got)
		}
	}
}

func TestWithText(t *testing.T) {
	e := NewError(Conflict)
	e2 := e.WithText("the username is taken")
	if e.Text != "" {
		t.Error("WithText changed its receiver")
	}
	if e2 != (Error{Type: Cancel, Condition: Conflict, Text: "the username is taken"}) {
		t.Errorf("%+v", e2)
	}
	if e3 := e2.WithText(""); e3.Text != "" {
		t.Errorf("WithText(\"\") kept %q", e3.Text)
	}
}

func TestErrorReply(t *testing.T) {
	nf := "<error type='cancel'><item-not-found" + xmlnsStanzas + "/></error>"
	tests := []struct {
		name string
		h    Head
		from string
		e    Error
		want string
	}{
		{"iq", Head{Name: "iq", ID: "q1", Type: "get", From: "juliet@example.com/balcony", To: "example.com"}, "example.com",
			NewError(ItemNotFound),
			"<iq from='example.com' to='juliet@example.com/balcony' type='error' id='q1'>" + nf + "</iq>"},
		{"message, no id", Head{Name: "message", Type: "chat", From: "a@example.com/r", To: "b@example.com"}, "b@example.com",
			NewError(ServiceUnavailable),
			"<message from='b@example.com' to='a@example.com/r' type='error'><error type='cancel'><service-unavailable" +
				xmlnsStanzas + "/></error></message>"},
		{"no from, no original from", Head{Name: "iq", ID: "b1", Type: "set"}, "", NewError(BadRequest).WithText("invalid resourcepart"),
			"<iq type='error' id='b1'><error type='modify'><bad-request" + xmlnsStanzas + "/>" + textOpen +
				"invalid resourcepart</text></error></iq>"},
		{"presence", Head{Name: "presence", From: "a@example.com"}, "b@example.com", NewError(ItemNotFound),
			"<presence from='b@example.com' to='a@example.com' type='error'>" + nf + "</presence>"},
		// The original 'to' is not what the error comes from unless the caller says so.
		{"to ignored", Head{Name: "iq", ID: "x", To: "ignored@example.com"}, "", NewError(ItemNotFound),
			"<iq type='error' id='x'>" + nf + "</iq>"},
		{"attributes escaped", Head{Name: "iq", ID: `a'"<&>`, From: "x\ty"}, "f'", NewError(ItemNotFound),
			"<iq from='f&apos;' to='x&#x9;y' type='error' id='a&apos;&quot;&lt;&amp;&gt;'>" + nf + "</iq>"},
	}
	for _, tc := range tests {
		if got := ErrorReply(tc.h, tc.from, tc.e); got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, got, tc.want)
		}
	}
}

func TestIQResult(t *testing.T) {
	tests := []struct {
		name          string
		h             Head
		from, payload string
		want          string
	}{
		{"empty", Head{Name: "iq", ID: "p1", Type: "get", From: "juliet@example.com/balcony"}, "example.com", "",
			"<iq type='result' from='example.com' to='juliet@example.com/balcony' id='p1'/>"},
		{"payload", Head{Name: "iq", ID: "b1", Type: "set"}, "",
			"<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>a@example.com/r</jid></bind>",
			"<iq type='result' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>a@example.com/r</jid></bind></iq>"},
		// The id is always written, even empty (a result without an id would answer nothing).
		{"empty id", Head{Name: "iq"}, "", "", "<iq type='result' id=''/>"},
		// Name and Type of the request do not matter: a result is an iq of type result.
		{"head name ignored", Head{Name: "message", Type: "chat", ID: "m", To: "x@example.com"}, "", "",
			"<iq type='result' id='m'/>"},
		{"escaped", Head{ID: "<&'\">", From: "a\nb"}, "c&d", "<q xmlns='u'>&amp;</q>",
			"<iq type='result' from='c&amp;d' to='a&#xA;b' id='&lt;&amp;&apos;&quot;&gt;'><q xmlns='u'>&amp;</q></iq>"},
	}
	for _, tc := range tests {
		if got := IQResult(tc.h, tc.from, tc.payload); got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, got, tc.want)
		}
	}
}

func TestBuild(t *testing.T) {
	tests := []struct {
		name, sname, from, to, typ, id, payload string
		want                                    string
	}{
		{"full", "message", "a@example.com/r", "b@example.com", "chat", "m1", "<body>hi</body>",
			"<message from='a@example.com/r' to='b@example.com' type='chat' id='m1'><body>hi</body></message>"},
		{"self-closed", "presence", "a@example.com/r", "b@example.com", "subscribed", "", "",
			"<presence from='a@example.com/r' to='b@example.com' type='subscribed'/>"},
		{"nothing", "presence", "", "", "", "", "", "<presence/>"},
		{"only id", "iq", "", "", "", "x", "", "<iq id='x'/>"},
		{"only type", "iq", "", "", "get", "", "<ping xmlns='urn:xmpp:ping'/>",
			"<iq type='get'><ping xmlns='urn:xmpp:ping'/></iq>"},
		{"only to", "message", "", "b@example.com", "", "", "", "<message to='b@example.com'/>"},
		{"payload as is", "message", "", "", "", "", "<body>a &amp; b</body>x&amp;",
			"<message><body>a &amp; b</body>x&amp;</message>"},
		{"escaped", "message", `a'b"c`, "<d>", "&", "\t\r\n", "",
			"<message from='a&apos;b&quot;c' to='&lt;d&gt;' type='&amp;' id='&#x9;&#xD;&#xA;'/>"},
		{"invalid chars", "message", "\x00", "\xff\xfe", "", "\uFFFE", "",
			"<message from='\uFFFD' to='\uFFFD\uFFFD' id='\uFFFD'/>"},
		{"prefixed name", "db:result", "a.example", "b.example", "valid", "", "",
			"<db:result from='a.example' to='b.example' type='valid'/>"},
	}
	for _, tc := range tests {
		if got := Build(tc.sname, tc.from, tc.to, tc.typ, tc.id, tc.payload); got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, got, tc.want)
		}
	}
}

func TestDelay(t *testing.T) {
	tests := []struct {
		from, stamp, reason string
		want                string
	}{
		{"example.com", "2002-09-10T23:08:25Z", "",
			"<delay xmlns='urn:xmpp:delay' from='example.com' stamp='2002-09-10T23:08:25Z'/>"},
		{"example.com", "2002-09-10T23:08:25.123Z", "Offline Storage",
			"<delay xmlns='urn:xmpp:delay' from='example.com' stamp='2002-09-10T23:08:25.123Z'>Offline Storage</delay>"},
		// from and stamp are always written.
		{"", "", "", "<delay xmlns='urn:xmpp:delay' from='' stamp=''/>"},
		{"a'b", "<now>", "x<y>&z\"'\r", "<delay xmlns='urn:xmpp:delay' from='a&apos;b' stamp='&lt;now&gt;'>x&lt;y&gt;&amp;z\"'&#xD;</delay>"},
		{"e.com", "s", "\x00", "<delay xmlns='urn:xmpp:delay' from='e.com' stamp='s'>\uFFFD</delay>"},
	}
	for _, tc := range tests {
		if got := Delay(tc.from, tc.stamp, tc.reason); got != tc.want {
			t.Errorf("Delay(%q, %q, %q)\n got %s\nwant %s", tc.from, tc.stamp, tc.reason, got, tc.want)
		}
	}
}

func TestInsertChild(t *testing.T) {
	const d = "<delay xmlns='urn:xmpp:delay' from='example.com' stamp='2002-09-10T23:08:25Z'/>"
	tests := []struct {
		name, raw, elName, child string
		want                     string
	}{
		{"usual", "<message to='b@example.com'><body>hi</body></message>", "message", d,
			"<message to='b@example.com'><body>hi</body>" + d + "</message>"},
		{"self-closed", "<presence from='a@example.com/r'/>", "presence", d,
			"<presence from='a@example.com/r'>" + d + "</presence>"},
		{"self-closed with space", "<presence />", "presence", d, "<presence >" + d + "</presence>"},
		{"empty content", "<message></message>", "message", d, "<message>" + d + "</message>"},
		{"end tag with whitespace", "<message><body>x</body></message >", "message", d,
			"<message><body>x</body>" + d + "</message >"},
		{"prefixed root", "<c:message xmlns:c='jabber:client'><c:body>x</c:body></c:message>", "c:message", d,
			"<c:message xmlns:c='jabber:client'><c:body>x</c:body>" + d + "</c:message>"},
		{"prefixed self-closed", "<c:message xmlns:c='jabber:client'/>", "c:message", d,
			"<c:message xmlns:c='jabber:client'>" + d + "</c:message>"},
		// Markup-like bytes inside text, attributes and CDATA are before the root's end tag.
		{"lookalikes", "<message a='/>'><body>&lt;/x&gt; /></body><![CDATA[</y>]]></message>", "message", "<c/>",
			"<message a='/>'><body>&lt;/x&gt; /></body><![CDATA[</y>]]><c/></message>"},
		{"nested self-closed last", "<message><x/></message>", "message", "<c/>", "<message><x/><c/></message>"},
		{"empty child", "<message><x/></message>", "message", "", "<message><x/></message>"},
		{"empty child self-closed", "<message/>", "message", "", "<message></message>"},
		// Not an element with an end tag: unchanged.
		{"no end tag", "<message>", "message", "<c/>", "<message>"},
		{"empty", "", "message", "<c/>", ""},
		{"short", "/", "message", "<c/>", "/"},
		{"just slash-gt", "/>", "m", "<c/>", "><c/></m>"},
	}
	for _, tc := range tests {
		if got := InsertChild(tc.raw, tc.elName, tc.child); got != tc.want {
			t.Errorf("%s: InsertChild(%q, %q, %q)\n got %s\nwant %s", tc.name, tc.raw, tc.elName, tc.child, got, tc.want)
		}
	}
}
