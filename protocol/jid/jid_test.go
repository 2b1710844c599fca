package jid

import (
	"errors"
	"strings"
	"testing"
)

// RFC 7622 §3.5 examples, followed by our own edge cases.
var validTests = []struct {
	in                      string
	local, domain, resource string
}{
	// §3.5.1 Examples of valid JIDs.
	{"juliet@example.com", "juliet", "example.com", ""},
	{"juliet@example.com/foo", "juliet", "example.com", "foo"},
	{"juliet@example.com/foo bar", "juliet", "example.com", "foo bar"},
	{"juliet@example.com/foo@bar", "juliet", "example.com", "foo@bar"},
	{`foo\20bar@example.com`, `foo\20bar`, "example.com", ""},
	{"fussball@example.com", "fussball", "example.com", ""},
	{"fußball@example.com", "fußball", "example.com", ""},
	{"π@example.com", "π", "example.com", ""},
	{"Σ@example.com/foo", "σ", "example.com", "foo"},
	{"σ@example.com/foo", "σ", "example.com", "foo"},
	{"ς@example.com/foo", "ς", "example.com", "foo"},
	{"king@example.com/♚", "king", "example.com", "♚"},
	{"example.com", "", "example.com", ""},
	{"example.com/foobar", "", "example.com", "foobar"},
	{"a.example.com/b@example.net", "", "a.example.com", "b@example.net"},

	// Case mapping applies to local and domain, not resource.
	{"Juliet@Example.COM/Balcony", "juliet", "example.com", "Balcony"},
	// Resource may contain '/' and '@'; only the first '/' separates.
	{"juliet@example.com/a/b@c", "juliet", "example.com", "a/b@c"},
	// One trailing dot is stripped (RFC 7622 §3.2).
	{"juliet@example.com./r", "juliet", "example.com", "r"},
	// A-labels become U-labels; U-labels are lowercased.
	{"user@xn--mnchen-3ya.de", "user", "münchen.de", ""},
	{"user@MÜNCHEN.de", "user", "münchen.de", ""},
	// Fullwidth characters are width-mapped in local and domain.
	{"ｊｕｌｉｅｔ@ｅｘａｍｐｌｅ.com", "juliet", "example.com", ""},
	// IP literals.
	{"alice@127.0.0.1/x", "alice", "127.0.0.1", "x"},
	{"alice@[::1]/x", "alice", "[::1]", "x"},
	{"[0:0:0:0:0:0:0:1]", "", "[::1]", ""},
	{"[2001:DB8::1]", "", "[2001:db8::1]", ""},
	// Resource: OpaqueString maps non-ASCII spaces to U+0020 and applies NFC.
	{"a@b/x\u00a0y", "a", "b", "x y"},
	{"a@b/e\u0301", "a", "b", "\u00e9"},
	// Permitted ASCII punctuation in localpart.
	{"a.b-c_d+e!#$%*=?^`{|}~@example.com", "a.b-c_d+e!#$%*=?^`{|}~", "example.com", ""},
	// Maximum-size parts.
	{strings.Repeat("a", 1023) + "@example.com/" + strings.Repeat("r", 1023), strings.Repeat("a", 1023), "example.com", strings.Repeat("r", 1023)},
}

var invalidTests = []struct {
	in   string
	part string
}{
	// §3.5.2 Examples of invalid JIDs.
	{`"juliet"@example.com`, PartLocal},
	{"foo bar@example.com", PartLocal},
	{"juliet@example.com/", PartResource},
	{"@example.com/", PartLocal},
	{"henry\u2163@example.com", PartLocal}, // ROMAN NUMERAL FOUR
	{"♚@example.com", PartLocal},
	{"juliet@", PartDomain},
	{"/foobar", PartDomain},

	{"", PartDomain},
	{"@example.com", PartLocal},
	{"a@b@example.com", PartDomain},
	{"juliet&romeo@example.com", PartLocal},
	{"juliet'@example.com", PartLocal},
	{"jul:iet@example.com", PartLocal},
	{"ju<liet@example.com", PartLocal},
	{"ju>liet@example.com", PartLocal},
	{"ju\uff20liet@example.com", PartLocal}, // fullwidth '@' maps to '@'
	{"juliet@exa mple.com", PartDomain},
	{"juliet@example..com", PartDomain},
	{"juliet@.example.com", PartDomain},
	{"juliet@example.com..", PartDomain},
	{"juliet@.", PartDomain},
	{"juliet@-example.com", PartDomain},
	{"juliet@example-.com", PartDomain},
	{"juliet@exa_mple.com", PartDomain},
	{"juliet@[::1", PartDomain},
	{"juliet@[]", PartDomain},
	{"juliet@[127.0.0.1]", PartDomain},
	{"juliet@[fe80::1%eth0]", PartDomain},
	{"juliet@::1", PartDomain},
	{"juliet@xn--a.com", PartDomain}, // invalid punycode
	{"\xff@example.com", PartLocal},
	{"a@example.com/\xff", PartResource},
	{"a@example.com/\x00", PartResource},
	{"a@example.com/\u0007", PartResource},
	{strings.Repeat("a", 1024) + "@example.com", PartLocal},
	{"a@example.com/" + strings.Repeat("r", 1024), PartResource},
	{"a@" + strings.Repeat("a", 1030), PartDomain},
	{strings.Repeat("a", maxInputLen+1), ""},
}

func TestParseValid(t *testing.T) {
	for _, tc := range validTests {
		j, err := Parse(tc.in)
		if err != nil {
			t.Errorf("Parse(%q): unexpected error %v", tc.in, err)
			continue
		}
		if j.Local() != tc.local || j.Domain() != tc.domain || j.Resource() != tc.resource {
			t.Errorf("Parse(%q) = (%q, %q, %q), want (%q, %q, %q)", tc.in,
				j.Local(), j.Domain(), j.Resource(), tc.local, tc.domain, tc.resource)
		}
		want := tc.domain
		if tc.local != "" {
			want = tc.local + "@" + want
		}
		if tc.resource != "" {
			want += "/" + tc.resource
		}
		if j.String() != want {
			t.Errorf("Parse(%q).String() = %q, want %q", tc.in, j.String(), want)
		}
		// Round trip and New agree with Parse.
		if j2, err := Parse(j.String()); err != nil || j2 != j {
			t.Errorf("Parse(String(%q)) = %v, %v; want %v", tc.in, j2, err, j)
		}
		if j3, err := New(tc.local, tc.domain, tc.resource); err != nil || j3 != j {
			t.Errorf("New(%q, %q, %q) = %v, %v; want %v", tc.local, tc.domain, tc.resource, j3, err, j)
		}
	}
}

func TestParseInvalid(t *testing.T) {
	for _, tc := range invalidTests {
		j, err := Parse(tc.in)
		if err == nil {
			t.Errorf("Parse(%q) = %q, want error", tc.in, j)
			continue
		}
		var e *Error
		if !errors.As(err, &e) {
			t.Errorf("Parse(%q) error %T is not *Error", tc.in, err)
			continue
		}
		if e.Part != tc.part {
			t.Errorf("Parse(%q) error part = %q (%v), want %q", tc.in, e.Part, err, tc.part)
		}
	}
}

func TestEqualityIsCanonical(t *testing.T) {
	pairs := [][2]string{
		{"Juliet@EXAMPLE.com/r", "juliet@example.com/r"},
		{"juliet@example.com./r", "juliet@example.com/r"},
		{"user@xn--mnchen-3ya.de", "user@münchen.de"},
		{"[::0001]", "[::1]"},
	}
	for _, p := range pairs {
		a, b := MustParse(p[0]), MustParse(p[1])
		if a != b {
			t.Errorf("%q != %q (%q vs %q)", p[0], p[1], a, b)
		}
	}
	if MustParse("a@b/R") == MustParse("a@b/r") {
		t.Error("resourceparts must compare case-sensitively")
	}
	m := map[JID]int{MustParse("juliet@example.com"): 1}
	if m[MustParse("JULIET@example.com")] != 1 {
		t.Error("JID map lookup with a differently-cased key failed")
	}
}

func TestAccessors(t *testing.T) {
	j := MustParse("juliet@example.com/balcony")
	if j.IsBare() || j.IsZero() {
		t.Fatalf("IsBare/IsZero wrong for %q", j)
	}
	b := j.Bare()
	if b.String() != "juliet@example.com" || !b.IsBare() || b.Resource() != "" || b.Local() != "juliet" {
		t.Fatalf("Bare() = %q", b)
	}
	if b != MustParse("juliet@example.com") {
		t.Fatal("Bare() is not == to the parsed bare JID")
	}
	if d := j.DomainJID(); d != MustParse("example.com") || d.Local() != "" {
		t.Fatalf("DomainJID() = %q", d)
	}
	r, err := b.WithResource("Phone\u00a0X")
	if err != nil || r.String() != "juliet@example.com/Phone X" || r != MustParse("juliet@example.com/Phone X") {
		t.Fatalf("WithResource = %q, %v", r, err)
	}
	if r2, err := r.WithResource(""); err != nil || r2 != b {
		t.Fatalf("WithResource(\"\") = %q, %v", r2, err)
	}
	if _, err := b.WithResource("\x01"); err == nil {
		t.Fatal("WithResource accepted a control character")
	}
	if _, err := (JID{}).WithResource("x"); err == nil {
		t.Fatal("WithResource on zero JID succeeded")
	}
	var z JID
	if !z.IsZero() || z.String() != "" || z.Local() != "" || z.Domain() != "" || z.Resource() != "" || !z.IsBare() {
		t.Fatal("zero JID accessors")
	}
	d := MustParse("example.com/r")
	if d.Local() != "" || d.Domain() != "example.com" || d.Resource() != "r" || d.Bare().String() != "example.com" {
		t.Fatalf("domain JID accessors: %q %q %q", d.Local(), d.Domain(), d.Resource())
	}
}

func TestNew(t *testing.T) {
	j, err := New("Juliet", "Example.com", "r")
	if err != nil || j.String() != "juliet@example.com/r" {
		t.Fatalf("New = %q, %v", j, err)
	}
	for _, tc := range [][3]string{
		{"a@b", "example.com", ""},
		{"a", "exa/mple.com", ""},
		{"a", "", ""},
		{"a", "example.com", "\x00"},
		{"a/b", "example.com", ""},
	} {
		if j, err := New(tc[0], tc[1], tc[2]); err == nil {
			t.Errorf("New(%q, %q, %q) = %q, want error", tc[0], tc[1], tc[2], j)
		}
	}
}

func TestTextMarshaling(t *testing.T) {
	var j JID
	if err := j.UnmarshalText([]byte("Alice@Localhost/Phone")); err != nil {
		t.Fatal(err)
	}
	b, _ := j.MarshalText()
	if string(b) != "alice@localhost/Phone" {
		t.Fatalf("MarshalText = %q", b)
	}
	if err := j.UnmarshalText([]byte("@x")); err == nil {
		t.Fatal("UnmarshalText accepted invalid JID")
	}
	if err := j.UnmarshalText(nil); err != nil || !j.IsZero() {
		t.Fatal("UnmarshalText(empty) should give zero JID")
	}
}

// TestFastPathAgreesWithSlowPath checks that the ASCII fast path accepts
// only input that full preparation would leave unchanged.
func TestFastPathAgreesWithSlowPath(t *testing.T) {
	inputs := []string{
		"alice@localhost/phone", "a-b.c@d-e.f/g h", "x@xn--a.com", "x@ab--c.com",
		"a@1.2.3.4", "a@127.000.0.1", "a@b.c/~!@#$%^&*()", "!#$%@x", "a@b/ ",
		"a@b/  lead", "a@" + strings.Repeat("a", 63) + ".com", "a@" + strings.Repeat("a", 64) + ".com",
	}
	// Every single printable ASCII byte in each position.
	for c := byte(0x20); c < 0x7f; c++ {
		inputs = append(inputs, "a"+string(c)+"@b.c/r", "a@b"+string(c)+"c.d", "a@b/"+string(c))
	}
	for _, in := range inputs {
		local, domain, resource, _, _ := split(in)
		fast := fastLocal(local) && fastDomain(domain) && fastResource(resource)
		if !fast {
			continue
		}
		slow, err := build(local, domain, resource)
		if err != nil {
			t.Errorf("fast path accepts %q but slow path rejects it: %v", in, err)
			continue
		}
		if slow.String() != in {
			t.Errorf("fast path accepts %q unchanged but slow path gives %q", in, slow)
		}
	}
}

func TestParseFastPathDoesNotAllocate(t *testing.T) {
	s := strings.Clone("alice@localhost/phone")
	n := testing.AllocsPerRun(100, func() {
		j, err := Parse(s)
		if err != nil || j.Resource() != "phone" {
			t.Fatal("unexpected parse result")
		}
	})
	if n != 0 {
		t.Fatalf("Parse of canonical ASCII JID allocates %v times", n)
	}
}

func BenchmarkParse(b *testing.B) {
	for _, in := range []string{"alice@localhost/phone", "Alice@LocalHost/phone", "ünïcode@münchen.de/☃"} {
		b.Run(in, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Parse(in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	for _, tc := range validTests {
		f.Add(tc.in)
	}
	for _, tc := range invalidTests {
		if len(tc.in) < 2048 {
			f.Add(tc.in)
		}
	}
	f.Fuzz(func(t *testing.T, s string) {
		j, err := Parse(s)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T is not *Error", err)
			}
			return
		}
		if j.IsZero() {
			t.Fatalf("Parse(%q) accepted but returned zero JID", s)
		}
		j2, err := Parse(j.String())
		if err != nil {
			t.Fatalf("Parse(%q) = %q, but re-parse fails: %v", s, j, err)
		}
		if j2 != j {
			t.Fatalf("Parse(%q) = %q (%d,%d), re-parse = %q (%d,%d)", s, j, j.localLen, j.domainEnd, j2, j2.localLen, j2.domainEnd)
		}
		j3, err := New(j.Local(), j.Domain(), j.Resource())
		if err != nil || j3 != j {
			t.Fatalf("New(parts of %q) = %q, %v", j, j3, err)
		}
		for _, p := range []string{j.Local(), j.Domain(), j.Resource()} {
			if len(p) > MaxPartLen {
				t.Fatalf("part longer than %d bytes in %q", MaxPartLen, j)
			}
		}
	})
}
