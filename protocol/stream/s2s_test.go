package stream

import (
	"strings"
	"testing"

	"github.com/xmppd/xmppd/protocol/xmlstream"
)

func TestCheckServerHeader(t *testing.T) {
	const ns = ` xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback'`
	for _, c := range []struct {
		name, raw, domain, from string
		cond                    Condition
	}{
		{"ok", `<stream:stream` + ns + ` to='example.com' from='Remote.Example' version='1.0'>`, "example.com", "remote.example", ""},
		{"no from", `<stream:stream` + ns + ` to='example.com' version='1.0'>`, "example.com", "", ""},
		{"client ns", `<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0'>`, "", "", InvalidNamespace},
		{"not served", `<stream:stream` + ns + ` to='other.example' from='r.example' version='1.0'>`, "", "", HostUnknown},
		{"no to", `<stream:stream` + ns + ` from='r.example' version='1.0'>`, "", "", HostUnknown},
		{"from with local", `<stream:stream` + ns + ` to='example.com' from='u@r.example' version='1.0'>`, "", "", InvalidFrom},
		{"from malformed", `<stream:stream` + ns + ` to='example.com' from='a@@b' version='1.0'>`, "", "", InvalidFrom},
		{"old version", `<stream:stream` + ns + ` to='example.com' from='r.example'>`, "", "", UnsupportedVersion},
	} {
		t.Run(c.name, func(t *testing.T) {
			d, f, cond, _ := CheckServerHeader(decodeHeader(t, c.raw), served)
			if d != c.domain || f != c.from || cond != c.cond {
				t.Errorf("got (%q, %q, %q), want (%q, %q, %q)", d, f, cond, c.domain, c.from, c.cond)
			}
		})
	}
}

func TestServerHeaderRoundTrip(t *testing.T) {
	raw := ServerHeader("id'1", "a.example", "example.com")
	d := xmlstream.NewDecoder(strings.NewReader(raw), 1<<16)
	if k, err := d.Next(); err != nil || k != xmlstream.KindStreamStart {
		t.Fatalf("%v %v", k, err)
	}
	h := d.Header()
	if h.ID != "id'1" || h.From != "a.example" || h.To != "example.com" || h.DefaultNS != NSServer {
		t.Fatalf("%+v", h)
	}
	if dom, from, cond, _ := CheckServerHeader(h, served); dom != "example.com" || from != "a.example" || cond != "" {
		t.Fatalf("check: %q %q %q", dom, from, cond)
	}
}

func FuzzCheckServerHeader(f *testing.F) {
	f.Add(ServerHeader("", "r.example", "example.com"))
	f.Add(`<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' to='a' from='@'>`)
	f.Fuzz(func(t *testing.T, raw string) {
		d := xmlstream.NewDecoder(strings.NewReader(raw), 1<<16)
		if k, err := d.Next(); err != nil || k != xmlstream.KindStreamStart {
			return
		}
		dom, _, cond, _ := CheckServerHeader(d.Header(), served)
		if (cond == "") == (dom == "") || (dom != "" && !served(dom)) {
			t.Fatalf("inconsistent: %q %q", dom, cond)
		}
	})
}
