package actors

import "testing"

func TestStripRootNS(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`<presence xmlns="jabber:client" to="x" type="subscribe"></presence>`, `<presence to="x" type="subscribe"></presence>`},
		{`<message to='a' xmlns='jabber:server'><body xmlns='jabber:client'>x</body></message>`, `<message to='a'><body xmlns='jabber:client'>x</body></message>`},
		{`<message xmlns:db='jabber:server:dialback' to='a'/>`, `<message xmlns:db='jabber:server:dialback' to='a'/>`},
		{`<message a='>' xmlns = "jabber:client"/>`, `<message a='>'/>`},
		{`<message to='a'><x xmlns='y'/></message>`, `<message to='a'><x xmlns='y'/></message>`},
		{`<iq id='xmlns'/>`, `<iq id='xmlns'/>`},
	} {
		if got := stripRootNS(c.in); got != c.want {
			t.Errorf("stripRootNS(%s) = %s, want %s", c.in, got, c.want)
		}
	}
}
