package push

import (
	"strings"
	"testing"

	"github.com/xmppd/xmppd/protocol/xmlstream"
)

func node(t testing.TB, s string) *xmlstream.Node {
	t.Helper()
	n, err := xmlstream.ParseNode(s, "jabber:client")
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestParseEnable(t *testing.T) {
	opts := `<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options</value></field><field var='secret'><value>s3&amp;cr3t</value></field></x>`
	for _, tc := range []struct {
		in        string
		jid, node string
		options   bool
		err       bool
	}{
		{in: `<enable xmlns='urn:xmpp:push:0' jid='push-5.client.example' node='yxs32'/>`, jid: "push-5.client.example", node: "yxs32"},
		{in: `<enable xmlns='urn:xmpp:push:0' jid='push.example' node='n'>` + opts + `</enable>`, jid: "push.example", node: "n", options: true},
		{in: `<enable xmlns='urn:xmpp:push:0' jid='Push.Example' />`, jid: "push.example"},
		{in: `<enable xmlns='urn:xmpp:push:0' node='n'/>`, err: true},
		{in: `<enable xmlns='urn:xmpp:push:0' jid='a@@b' node='n'/>`, err: true},
		{in: `<enable xmlns='urn:xmpp:push:0' jid='push.example' node='n'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>urn:other</value></field></x></enable>`, err: true},
	} {
		r, err := ParseEnable(node(t, tc.in))
		if (err != nil) != tc.err {
			t.Errorf("%s: err %v", tc.in, err)
			continue
		}
		if tc.err {
			continue
		}
		if r.JID.String() != tc.jid || r.Node != tc.node || (r.Options != "") != tc.options {
			t.Errorf("%s: got %+v", tc.in, r)
		}
		if tc.options && !strings.Contains(r.Options, "s3&amp;cr3t") {
			t.Errorf("options lost their escaping: %s", r.Options)
		}
	}
}

func TestParseDisable(t *testing.T) {
	j, n, err := ParseDisable(node(t, `<disable xmlns='urn:xmpp:push:0' jid='push.example'/>`))
	if err != nil || j.String() != "push.example" || n != "" {
		t.Errorf("got %v %q %v", j, n, err)
	}
	if _, _, err := ParseDisable(node(t, `<disable xmlns='urn:xmpp:push:0'/>`)); err == nil {
		t.Error("disable without jid accepted")
	}
}

func TestPublish(t *testing.T) {
	r, err := ParseEnable(node(t, `<enable xmlns='urn:xmpp:push:0' jid='push.example' node='n&apos;1'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options</value></field><field var='secret'><value>k</value></field></x></enable>`))
	if err != nil {
		t.Fatal(err)
	}
	out := Publish(r, Summary{MessageCount: 2, LastSender: "juliet@capulet.example/balcony", LastBody: "a < b"})
	p := node(t, out)
	pub := p.Child(nsPubSub, "publish")
	if pub == nil || pub.Attr("node") != "n'1" {
		t.Fatalf("publish: %s", out)
	}
	x := pub.Child(nsPubSub, "item").Child(NS, "notification").Child("jabber:x:data", "x")
	got := map[string]string{}
	for _, f := range x.ChildrenNamed("jabber:x:data", "field") {
		got[f.Attr("var")] = f.Child("jabber:x:data", "value").TextContent()
	}
	want := map[string]string{"FORM_TYPE": SummaryFormType, "message-count": "2", "last-message-sender": "juliet@capulet.example/balcony", "last-message-body": "a < b"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q (%s)", k, got[k], v, out)
		}
	}
	po := p.Child(nsPubSub, "publish-options")
	if po == nil || po.Child("jabber:x:data", "x") == nil {
		t.Errorf("publish-options missing: %s", out)
	}
	if bare := Publish(Registration{Node: "n"}, Summary{}); strings.Contains(bare, "publish-options") || strings.Contains(bare, "message-count") {
		t.Errorf("empty summary and no options: %s", bare)
	}
}

func TestRemoteDisable(t *testing.T) {
	n := node(t, `<pubsub xmlns='http://jabber.org/protocol/pubsub' node='yxs'><affiliation jid='user@example.com' affiliation='none'/></pubsub>`)
	if node, ok := RemoteDisable(n); !ok || node != "yxs" {
		t.Errorf("got %q %v", node, ok)
	}
	n = node(t, `<pubsub xmlns='http://jabber.org/protocol/pubsub' node='yxs'><affiliation jid='user@example.com' affiliation='publish-only'/></pubsub>`)
	if _, ok := RemoteDisable(n); ok {
		t.Error("publish-only taken for a removal")
	}
}

// FuzzParse: no input makes the parsers panic, and what parses publishes as well-formed XML.
func FuzzParse(f *testing.F) {
	f.Add(`<enable xmlns='urn:xmpp:push:0' jid='push-5.client.example' node='yxs32uqsflafdk3iuqo'/>`)
	f.Add(`<enable xmlns='urn:xmpp:push:0' jid='p.example' node='n'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options</value></field><field var='secret'><value>x</value></field></x></enable>`)
	f.Add(`<disable xmlns='urn:xmpp:push:0' jid='p.example' node='n'/>`)
	f.Add(`<pubsub xmlns='http://jabber.org/protocol/pubsub' node='n'><affiliation affiliation='none'/></pubsub>`)
	f.Fuzz(func(t *testing.T, s string) {
		n, err := xmlstream.ParseNode(s, "jabber:client")
		if err != nil {
			return
		}
		_, _, _ = ParseDisable(n)
		_, _ = RemoteDisable(n)
		r, err := ParseEnable(n)
		if err != nil {
			return
		}
		out := Publish(r, Summary{MessageCount: 1, LastSender: r.JID.String(), LastBody: r.Node})
		if _, err := xmlstream.ParseNode(out, "jabber:client"); err != nil {
			t.Fatalf("publish of %q is not well-formed: %v\n%s", s, err, out)
		}
	})
}
