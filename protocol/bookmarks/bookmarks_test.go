package bookmarks

import (
	"testing"

	"github.com/xmppd/xmppd/protocol/xmlstream"
)

func parse(t testing.TB, s string) *xmlstream.Node {
	t.Helper()
	n, err := xmlstream.ParseNode(s, "")
	if err != nil {
		t.Fatalf("%s: %v", s, err)
	}
	return n
}

func TestParseLegacy(t *testing.T) {
	l, ok := ParseLegacy(parse(t, `<storage xmlns='storage:bookmarks'>
		<conference name='Council of Oberon' autojoin='1' jid='Council@Chat.Shakespeare.lit'><nick>Puck</nick><password>pw&amp;1</password></conference>
		<conference jid='not a jid@'/>
		<conference jid='room@chat.example/res'/>
		<url name='Complete Works' url='http://the-tech.mit.edu/Shakespeare/'/>
		<conference jid='council@chat.shakespeare.lit' name='again'/>
	</storage>`))
	if !ok {
		t.Fatal("not recognised")
	}
	want := []Bookmark{{JID: "council@chat.shakespeare.lit", Name: "again"}}
	if len(l.Rooms) != 1 || l.Rooms[0] != want[0] {
		t.Fatalf("rooms = %+v, want %+v (later duplicate wins, invalid JIDs dropped)", l.Rooms, want)
	}
	if len(l.Other) != 1 {
		t.Fatalf("other = %q, want the url element", l.Other)
	}
	if _, ok := ParseLegacy(parse(t, `<storage xmlns='storage:rosternotes'/>`)); ok {
		t.Fatal("another namespace accepted")
	}
}

func TestRoundTrip(t *testing.T) {
	b := Bookmark{JID: "room@muc.example", Name: "a 'quoted' <name>", Autojoin: true, Nick: "n&n", Password: "p<"}
	it, ok := ParseItem(b.JID, parse(t, b.Item()))
	if !ok || it != b {
		t.Fatalf("item round trip: %+v, %v; want %+v", it, ok, b)
	}
	l := Legacy{Rooms: []Bookmark{b}, Other: []string{"<url xmlns='storage:bookmarks' url='x'/>"}}
	back, ok := ParseLegacy(parse(t, l.String()))
	if !ok || len(back.Rooms) != 1 || back.Rooms[0] != b || len(back.Other) != 1 {
		t.Fatalf("legacy round trip: %+v", back)
	}
	ext := Bookmark{JID: "room@muc.example", Extensions: "<extensions xmlns='urn:xmpp:bookmarks:1'><state xmlns='urn:example'/></extensions>"}
	got, ok := ParseItem(ext.JID, parse(t, ext.Item()))
	if !ok || got.Extensions != ext.Extensions {
		t.Fatalf("extensions not kept: %q", got.Extensions)
	}
	if !Same(got, Bookmark{JID: "room@muc.example"}) {
		t.Fatal("Same looks at extensions")
	}
}

func TestParseItemRejects(t *testing.T) {
	for _, c := range []struct{ id, payload string }{
		{"room@muc.example", "<conference xmlns='storage:bookmarks'/>"},
		{"muc.example", "<conference xmlns='urn:xmpp:bookmarks:1'/>"},
		{"room@muc.example/nick", "<conference xmlns='urn:xmpp:bookmarks:1'/>"},
		{"room@muc.example", "<other xmlns='urn:xmpp:bookmarks:1'/>"},
	} {
		if _, ok := ParseItem(c.id, parse(t, c.payload)); ok {
			t.Errorf("%s %s accepted", c.id, c.payload)
		}
	}
}

// FuzzConvert: whatever a client stores, converting it never panics, and what comes out parses back to the
// same rooms.
func FuzzConvert(f *testing.F) {
	f.Add("<storage xmlns='storage:bookmarks'><conference jid='a@b' autojoin='true' name='x'><nick>n</nick></conference><url url='u'/></storage>")
	f.Add("<conference xmlns='urn:xmpp:bookmarks:1' name='n' autojoin='1'><nick>x</nick><extensions><y xmlns='z'/></extensions></conference>")
	f.Fuzz(func(t *testing.T, s string) {
		n, err := xmlstream.ParseNode(s, "")
		if err != nil {
			return
		}
		if l, ok := ParseLegacy(n); ok {
			back, ok := ParseLegacy(parse(t, l.String()))
			if !ok || len(back.Rooms) != len(l.Rooms) {
				t.Fatalf("legacy %q did not round-trip: %q", s, l.String())
			}
			for i := range l.Rooms {
				if back.Rooms[i] != l.Rooms[i] {
					t.Fatalf("room %d: %+v != %+v", i, back.Rooms[i], l.Rooms[i])
				}
			}
		}
		if b, ok := ParseItem("room@muc.example", n); ok {
			back, ok := ParseItem(b.JID, parse(t, b.Item()))
			if !ok || !Same(back, b) {
				t.Fatalf("item %q did not round-trip: %q", s, b.Item())
			}
		}
	})
}
