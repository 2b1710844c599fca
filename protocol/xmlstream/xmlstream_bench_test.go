package xmlstream

import (
	"io"
	"strings"
	"testing"
)

// Typical client traffic: chat messages with chat states, presence, pings.
var chatStanzas = []string{
	`<message to='bob@localhost' type='chat' id='abc123'><body>hello there, how are you?</body><active xmlns='http://jabber.org/protocol/chatstates'/></message>`,
	`<message to='bob@localhost' type='chat' id='abc124'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>`,
	`<presence><show>away</show><status>In a meeting</status><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='https://example.org' ver='QgayPKawpkPSDYmwT/WM94uAlu0='/></presence>`,
	`<iq type='get' id='ping-42' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`,
	`<message to='alice@localhost/phone' from='bob@localhost/desk' type='chat' id='m-991' xml:lang='en'><body>Sure, see you at 5 &amp; bring the slides</body><request xmlns='urn:xmpp:receipts'/><origin-id xmlns='urn:xmpp:sid:0' id='de305d54-75b4-431b-adb2-eb6b9e546014'/></message>`,
}

// cycleReader returns s over and over, in reads of at most chunk bytes.
type cycleReader struct {
	s     string
	off   int
	chunk int
}

func (c *cycleReader) Read(p []byte) (int, error) {
	if len(p) > c.chunk {
		p = p[:c.chunk]
	}
	n := 0
	for n < len(p) {
		k := copy(p[n:], c.s[c.off:])
		n += k
		c.off = (c.off + k) % len(c.s)
	}
	return n, nil
}

// BenchmarkDecodeChat measures Next()+Element() per stanza on a long-lived
// stream fed in 4 KiB reads: one op = one stanza.
func BenchmarkDecodeChat(b *testing.B) {
	block := strings.Join(chatStanzas, "")
	r := &cycleReader{s: block, chunk: 4096}
	d := NewDecoder(io.MultiReader(strings.NewReader(hdrC2S), r), 64<<10)
	if k, err := d.Next(); k != KindStreamStart || err != nil {
		b.Fatal(k, err)
	}
	b.SetBytes(int64(len(block) / len(chatStanzas)))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		k, err := d.Next()
		if k != KindElement || err != nil {
			b.Fatal(k, err)
		}
		_ = d.Element()
	}
}

// BenchmarkDecodeChatSmallReads is the same with 100-byte reads, so most
// stanzas straddle reads and go through the framer.
func BenchmarkDecodeChatSmallReads(b *testing.B) {
	block := strings.Join(chatStanzas, "")
	r := &cycleReader{s: block, chunk: 100}
	d := NewDecoder(io.MultiReader(strings.NewReader(hdrC2S), r), 64<<10)
	if k, err := d.Next(); k != KindStreamStart || err != nil {
		b.Fatal(k, err)
	}
	b.SetBytes(int64(len(block) / len(chatStanzas)))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if k, err := d.Next(); k != KindElement || err != nil {
			b.Fatal(k, err)
		}
	}
}

// BenchmarkDecodeStream decodes a whole 1000-stanza stream with a fresh
// decoder per op (header, whitespace keepalives, end tag included).
func BenchmarkDecodeStream(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("<?xml version='1.0'?>" + hdrC2S)
	for i := range 1000 {
		sb.WriteString(chatStanzas[i%len(chatStanzas)])
		if i%50 == 0 {
			sb.WriteString("\n")
		}
	}
	sb.WriteString("</stream:stream>")
	in := sb.String()
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	sr := strings.NewReader(in)
	for range b.N {
		sr.Reset(in)
		d := NewDecoder(sr, 64<<10)
		n := 0
		for {
			k, err := d.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			if k == KindElement {
				n++
			}
		}
		if n != 1000 {
			b.Fatal(n)
		}
	}
}

func BenchmarkParse(b *testing.B) {
	e := &Element{Raw: chatStanzas[4], Name: Name{"jabber:client", "message"}}
	b.SetBytes(int64(len(e.Raw)))
	b.ReportAllocs()
	for range b.N {
		if _, err := e.Parse(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendXML(b *testing.B) {
	n, err := ParseNode(chatStanzas[4], "jabber:client")
	if err != nil {
		b.Fatal(err)
	}
	buf := n.AppendXML(nil, "jabber:client")
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for range b.N {
		buf = n.AppendXML(buf[:0], "jabber:client")
	}
}

func BenchmarkSetHeadAttr(b *testing.B) {
	raw := chatStanzas[0]
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for range b.N {
		if s := SetHeadAttr(raw, "from", "alice@localhost/phone"); len(s) <= len(raw) {
			b.Fatal(s)
		}
	}
}
