package stream

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/xmppd/xmppd/protocol/jid"
	"github.com/xmppd/xmppd/protocol/xmlstream"
)

// FuzzCheckHeader feeds arbitrary bytes to the stream decoder as an initial stream header, then checks the
// header it yields. CheckHeader must not panic, must only answer the conditions its contract names, must accept
// exactly the headers that pass every check, and the response header we would write (with ResponseTo) must
// decode back to what we put in it.
func FuzzCheckHeader(f *testing.F) {
	for _, s := range []string{
		hdr + ` to='example.com' version='1.0'>`,
		`<?xml version='1.0'?>` + hdr + ` from='juliet@example.com' to='example.com' version='1.0' xml:lang='en'>`,
		`<s:stream xmlns='jabber:client' xmlns:s='http://etherx.jabber.org/streams' to='example.com' version='1.0'>`,
		`<stream xmlns='http://etherx.jabber.org/streams' to='example.com' version='1.0'>`,
		`<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' to='xmpp.test' version='1.0'>`,
		hdr + ` to='juliet@example.com/r' from='a&apos;b@c' version='2.0'>`,
	} {
		f.Add([]byte(s), false)
	}
	f.Add([]byte(hdr+` to='xmpp.test' version='1.0'>`), true)
	f.Fuzz(func(t *testing.T, data []byte, restart bool) {
		d := xmlstream.NewDecoder(strings.NewReader(string(data)), 4096)
		k, err := d.Next()
		if err != nil {
			var xe *xmlstream.Error
			if err != io.EOF && !errors.As(err, &xe) {
				t.Fatalf("decoder error %T %v", err, err)
			}
			return
		}
		if k != xmlstream.KindStreamStart {
			return
		}
		h := d.Header()
		before := *h
		prev := ""
		if restart {
			prev = "example.com"
		}
		domain, cond, text := CheckHeader(h, served, prev)
		if *h != before {
			t.Fatalf("CheckHeader changed the header: %+v → %+v", before, *h)
		}
		switch cond {
		case "":
			if text != "" {
				t.Fatalf("accepted with text %q", text)
			}
			if h.StreamNS != NS || h.Local != "stream" || h.Prefix != "stream" || h.DefaultNS != NSClient ||
				!strings.HasPrefix(h.Version, "1.") {
				t.Fatalf("accepted %+v", *h)
			}
			to, err := jid.Parse(h.To)
			if err != nil || !to.IsBare() || to.Local() != "" || to.Domain() != domain || !served(domain) {
				t.Fatalf("accepted 'to' %q as domain %q (%v)", h.To, domain, err)
			}
			if restart && domain != prev {
				t.Fatalf("restart of %q accepted for %q", prev, domain)
			}
		case InvalidNamespace, BadNamespacePrefix, UnsupportedVersion, HostUnknown:
			if domain != "" || text == "" {
				t.Fatalf("refused with %q but domain %q text %q", cond, domain, text)
			}
		default:
			t.Fatalf("condition %q outside CheckHeader's contract", cond)
		}
		// Our answer to this header decodes to what we meant, and the error follows it as one element.
		to := ResponseTo(h)
		from := domain
		if from == "" {
			from = "example.com"
		}
		out := Header("id", from, to) + string(AppendError(nil, UndefinedCondition, text)) + Close
		od := xmlstream.NewDecoder(strings.NewReader(out), 1<<16)
		if k, err := od.Next(); err != nil || k != xmlstream.KindStreamStart {
			t.Fatalf("our header %q: %v %v", out, k, err)
		}
		if oh := od.Header(); oh.From != from || oh.To != to || oh.ID != "id" {
			t.Fatalf("our header reads as %+v, want from %q to %q", *oh, from, to)
		}
		if k, err := od.Next(); err != nil || k != xmlstream.KindElement {
			t.Fatalf("our error: %v %v", k, err)
		}
		if k, err := od.Next(); err != nil || k != xmlstream.KindStreamEnd {
			t.Fatalf("our close: %v %v", k, err)
		}
	})
}

// FuzzEncoders gives arbitrary strings to the encoders: whatever they are, the output is well-formed, decodes
// back to the values given (when those are made of XML Chars) and never opens more than it closes.
func FuzzEncoders(f *testing.F) {
	f.Add("AbC-_123", "example.com", "juliet@example.com/balcony", "")
	f.Add("a'b", `d<&>"'`, "t\t\n\r", "x]]>y</text></stream:error>")
	f.Add("\x00", "\xff", "é", "\r\n&#xD;")
	f.Add("", "", "", "<stream:stream>")
	f.Fuzz(func(t *testing.T, id, from, to, text string) {
		out := Header(id, from, to) + Features("<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>") +
			string(AppendError(nil, PolicyViolation, text)) + Close
		d := xmlstream.NewDecoder(strings.NewReader(out), 1<<16)
		k, err := d.Next()
		if err != nil || k != xmlstream.KindStreamStart {
			t.Fatalf("header of %q: %v %v", out, k, err)
		}
		h := d.Header()
		if h.StreamNS != NS || h.Prefix != Prefix || h.DefaultNS != NSClient || h.Version != "1.0" || h.Lang != "en" {
			t.Fatalf("header %+v", *h)
		}
		for _, v := range []struct{ got, want string }{{h.ID, id}, {h.From, from}, {h.To, to}} {
			if validChars(v.want) && v.got != v.want {
				t.Fatalf("header value %q read back as %q", v.want, v.got)
			}
		}
		if k, err := d.Next(); err != nil || k != xmlstream.KindElement || d.Element().Name.Local != "features" {
			t.Fatalf("features: %v %v", k, err)
		}
		if k, err := d.Next(); err != nil || k != xmlstream.KindElement || d.Element().Name.Local != "error" {
			t.Fatalf("error: %v %v", k, err)
		}
		n, err := d.Element().Parse()
		if err != nil {
			t.Fatal(err)
		}
		if tn := n.Child(NSErrors, "text"); (tn != nil) != (text != "") || tn != nil && validChars(text) && tn.TextContent() != text {
			t.Fatalf("text %q: %+v", text, tn)
		}
		if k, err := d.Next(); err != nil || k != xmlstream.KindStreamEnd {
			t.Fatalf("close: %v %v", k, err)
		}
	})
}
