package dialback

import (
	"strings"
	"testing"

	"github.com/xmppd/xmppd/protocol/xmlstream"
)

// TestKey is the example of XEP-0185 §4: secret "s3cr3tf0rd14lb4ck", receiving xmpp.example.com, originating
// example.org, stream id D60000229F.
func TestKey(t *testing.T) {
	got := Key([]byte("s3cr3tf0rd14lb4ck"), "xmpp.example.com", "example.org", "D60000229F")
	const want = "37c69b1cf07a3f67c04a5ef5902fa5114f2c76fe4a2686482ba5b89323075643"
	if got != want {
		t.Fatalf("Key = %s, want %s", got, want)
	}
	for _, c := range []struct {
		key  string
		want bool
	}{{want, true}, {" " + want + "\n", true}, {want[:63] + "4", false}, {"", false}} {
		if v := Valid([]byte("s3cr3tf0rd14lb4ck"), "xmpp.example.com", "example.org", "D60000229F", c.key); v != c.want {
			t.Errorf("Valid(%q) = %v", c.key, v)
		}
	}
	if Valid([]byte("other"), "xmpp.example.com", "example.org", "D60000229F", want) {
		t.Error("another secret validates the key")
	}
}

func TestElements(t *testing.T) {
	for _, c := range []struct{ got, name, from, to, id, typ, text string }{
		{Result("a.example", "b.example", "k1"), "result", "a.example", "b.example", "", "", "k1"},
		{ResultType("b.example", "a.example", "valid"), "result", "b.example", "a.example", "", "valid", ""},
		{Verify("b.example", "a.example", "s'id", "k2"), "verify", "b.example", "a.example", "s'id", "", "k2"},
		{VerifyType("a.example", "b.example", "i", "invalid"), "verify", "a.example", "b.example", "i", "invalid", ""},
		{ResultError("b.example", "a.example", "remote-server-not-found"), "result", "b.example", "a.example", "", "error", ""},
	} {
		n, err := xmlstream.ParseNode(c.got, "jabber:server")
		if err != nil {
			t.Fatalf("%s: %v", c.got, err)
		}
		if n.Name.Space != NS || n.Name.Local != c.name || n.Attr("from") != c.from || n.Attr("to") != c.to ||
			n.Attr("id") != c.id || n.Attr("type") != c.typ || strings.TrimSpace(n.TextContent()) != c.text {
			t.Errorf("%s: parsed %+v", c.got, n.Name)
		}
	}
}
