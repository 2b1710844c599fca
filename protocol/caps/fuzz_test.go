package caps

import (
	"testing"

	"github.com/xmppd/xmppd/protocol/xmlstream"
)

// FuzzVerify feeds arbitrary disco#info answers, hash names and vers. It checks that nothing panics, that
// Verify holds exactly when the answer is well-formed, the hash supported and ver its hash, and that the
// verification string does not depend on how the answer is serialised (it survives AppendXML and re-parsing).
func FuzzVerify(f *testing.F) {
	f.Add(simple, "sha-1", "QgayPKawpkPSDYmwT/WM94uAlu0=")
	f.Add(complex, "sha-1", "q07IKJEyjvHSyhy//CH0CxmKi8w=")
	f.Add(simple, "md5", "")
	f.Fuzz(func(t *testing.T, xml, algo, ver string) {
		n, err := xmlstream.ParseNode(xml, "")
		if err != nil {
			return
		}
		got := Verify(n, algo, ver)
		s, serr := String(n)
		want := serr == nil && Supported(algo) && Hash(algo, s) == ver
		if got != want {
			t.Fatalf("Verify = %v, want %v (S=%q, err=%v)", got, want, s, serr)
		}
		if serr == nil && Supported(algo) && !Verify(n, algo, Hash(algo, s)) {
			t.Fatalf("own hash does not verify: S=%q", s)
		}
		n2, err := xmlstream.ParseNode(string(n.AppendXML(nil, "")), "")
		if err != nil {
			t.Fatalf("re-parse: %v", err)
		}
		s2, serr2 := String(n2)
		if s2 != s || (serr == nil) != (serr2 == nil) {
			t.Fatalf("re-serialised answer changed S: %q/%v → %q/%v", s, serr, s2, serr2)
		}
	})
}
