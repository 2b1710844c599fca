package avatar

import (
	"strings"
	"testing"

	"github.com/xmppd/xmppd/protocol/jid"
	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/protocol/xmlstream"
)

// png1 is a 1×1 PNG; its SHA-1 is pngHash.
const (
	png1    = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
	pngHash = "4a5eb7171b58e08a6881721e3b43d5a44419a2be"
)

func node(t testing.TB, s, ns string) *xmlstream.Node {
	t.Helper()
	n, err := xmlstream.ParseNode(s, ns)
	if err != nil {
		t.Fatalf("%s: %v", s, err)
	}
	return n
}

func TestHash(t *testing.T) {
	h, size, ok := Hash(png1[:20] + "\n  " + png1[20:])
	if !ok || size != 70 {
		t.Fatalf("Hash = %q %d %v", h, size, ok)
	}
	if h != pngHash {
		t.Fatalf("hash %q, want %q", h, pngHash)
	}
	if _, _, ok := Hash("not base64!"); ok {
		t.Fatal("bad base64 accepted")
	}
	if _, _, ok := Hash(""); ok {
		t.Fatal("empty image accepted")
	}
}

func TestPhotoAndWithPhoto(t *testing.T) {
	v := node(t, "<vCard xmlns='vcard-temp'><FN>Juliet</FN><PHOTO><TYPE>image/png</TYPE><BINVAL>"+png1[:10]+"\n"+png1[10:]+"</BINVAL></PHOTO><NICKNAME>J</NICKNAME></vCard>", "")
	typ, bv, ok := Photo(v)
	if !ok || typ != "image/png" || bv != png1 {
		t.Fatalf("Photo = %q %q %v", typ, bv, ok)
	}
	removed := node(t, WithPhoto(v, "", ""), "")
	if _, _, ok := Photo(removed); ok || removed.Child("vcard-temp", "FN") == nil || removed.Child("vcard-temp", "NICKNAME") == nil {
		t.Fatalf("WithPhoto remove: %s", removed)
	}
	set := node(t, WithPhoto(nil, "image/jpeg", "AAAA"), "")
	if typ, bv, ok := Photo(set); !ok || typ != "image/jpeg" || bv != "AAAA" {
		t.Fatalf("WithPhoto on no vCard: %s", set)
	}
	if _, _, ok := Photo(node(t, "<vCard xmlns='vcard-temp'><PHOTO><EXTVAL>http://x</EXTVAL></PHOTO></vCard>", "")); ok {
		t.Fatal("EXTVAL taken for an embedded photo")
	}
}

func TestPick(t *testing.T) {
	m := node(t, "<metadata xmlns='urn:xmpp:avatar:metadata'><info id='AAA' url='http://x' bytes='1' type='image/gif'/><info id='BBB' bytes='12' type='image/png'/></metadata>", "")
	i, ok, off := Pick(m)
	if !ok || off || i != (Info{ID: "bbb", Type: "image/png", Bytes: 12}) {
		t.Fatalf("Pick = %+v %v %v", i, ok, off)
	}
	if _, ok, off := Pick(node(t, "<metadata xmlns='urn:xmpp:avatar:metadata'/>", "")); ok || !off {
		t.Fatal("empty metadata is not 'disabled'")
	}
	back, ok, _ := Pick(node(t, MetadataPayload(Info{ID: "abc", Type: "image/png", Bytes: 70}), ""))
	if !ok || back != (Info{ID: "abc", Type: "image/png", Bytes: 70}) {
		t.Fatalf("MetadataPayload round trip: %+v", back)
	}
	if Data(node(t, DataPayload("QUJD"), "")) != "QUJD" {
		t.Fatal("DataPayload round trip")
	}
}

func TestStamp(t *testing.T) {
	from, _ := jid.Parse("juliet@example.com/balcony")
	pres := func(raw string) *stanza.Routed {
		return stanza.New(stanza.Head{Name: "presence", From: from.String()}, from, jid.JID{}, raw)
	}
	const h = "0123456789abcdef0123456789abcdef01234567"
	cases := []struct {
		in   string
		want string // "" : unchanged
	}{
		{"<presence from='juliet@example.com/balcony'/>", "<presence from='juliet@example.com/balcony'><x xmlns='vcard-temp:x:update'><photo>" + h + "</photo></x></presence>"},
		{"<presence from='juliet@example.com/balcony'><show>away</show></presence>", "<presence from='juliet@example.com/balcony'><show>away</show><x xmlns='vcard-temp:x:update'><photo>" + h + "</photo></x></presence>"},
		{"<presence from='juliet@example.com/balcony'><x xmlns='vcard-temp:x:update'><photo/></x></presence>", ""},
		{"<presence from='juliet@example.com/balcony'><x xmlns='vcard-temp:x:update'><photo>ffff</photo></x></presence>", ""},
		{"<presence from='juliet@example.com/balcony'><x xmlns='vcard-temp:x:update'/><status>hi</status></presence>", "<presence from='juliet@example.com/balcony'><status>hi</status><x xmlns='vcard-temp:x:update'><photo>" + h + "</photo></x></presence>"},
	}
	for _, c := range cases {
		st := pres(c.in)
		got := Stamp(st, h)
		if c.want == "" {
			if got != st {
				t.Errorf("%s changed to %s", c.in, got.Raw)
			}
			continue
		}
		if got.Raw != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.in, got.Raw, c.want)
		}
	}
	un := stanza.New(stanza.Head{Name: "presence", Type: "unavailable"}, from, jid.JID{}, "<presence type='unavailable'/>")
	if Stamp(un, h) != un {
		t.Error("unavailable presence stamped")
	}
	if st := pres("<presence/>"); Stamp(st, "") != st {
		t.Error("stamped without a hash")
	}
}

// FuzzStamp: any presence a client may send stays well-formed after stamping, and the hash is there unless the
// client put a photo in itself.
func FuzzStamp(f *testing.F) {
	f.Add("<presence><x xmlns='vcard-temp:x:update'/></presence>")
	f.Add("<presence><show>dnd</show><x xmlns='vcard-temp:x:update'><photo/></x></presence>")
	f.Add("<presence/>")
	f.Fuzz(func(t *testing.T, raw string) {
		n, err := xmlstream.ParseNode(raw, stanza.NSClient)
		if err != nil || n.Name.Local != "presence" || n.Name.Space != stanza.NSClient || n.Attr("type") != "" {
			return
		}
		st := stanza.New(stanza.Head{Name: "presence"}, jid.JID{}, jid.JID{}, raw)
		out := Stamp(st, "da39a3ee5e6b4b0d3255bfef95601890afd80709")
		m, err := xmlstream.ParseNode(out.Raw, stanza.NSClient)
		if err != nil {
			t.Fatalf("%q stamped into malformed %q: %v", raw, out.Raw, err)
		}
		if out != st && !strings.Contains(out.Raw, "da39a3ee5e6b4b0d3255bfef95601890afd80709") {
			t.Fatalf("changed without the hash: %q", out.Raw)
		}
		if out == st && m.Child(NSUpdate, "x") == nil {
			t.Fatalf("left %q without the hash", raw)
		}
	})
}
