package caps

import (
	"errors"
	"testing"

	"github.com/xmppd/xmppd/protocol/xmlstream"
)

// XEP-0115 §5.2 "Simple Generation Example".
const simple = `<query xmlns='http://jabber.org/protocol/disco#info'>
<identity category='client' name='Exodus 0.9.1' type='pc'/>
<feature var='http://jabber.org/protocol/caps'/>
<feature var='http://jabber.org/protocol/disco#info'/>
<feature var='http://jabber.org/protocol/disco#items'/>
<feature var='http://jabber.org/protocol/muc'/>
</query>`

// XEP-0115 §5.3 "Complex Generation Example".
const complex = `<query xmlns='http://jabber.org/protocol/disco#info'>
<identity xml:lang='en' category='client' name='Psi 0.11' type='pc'/>
<identity xml:lang='el' category='client' name='Ψ 0.11' type='pc'/>
<feature var='http://jabber.org/protocol/caps'/>
<feature var='http://jabber.org/protocol/disco#info'/>
<feature var='http://jabber.org/protocol/disco#items'/>
<feature var='http://jabber.org/protocol/muc'/>
<x xmlns='jabber:x:data' type='result'>
<field var='FORM_TYPE' type='hidden'><value>urn:xmpp:dataforms:softwareinfo</value></field>
<field var='ip_version'><value>ipv4</value><value>ipv6</value></field>
<field var='os'><value>Mac</value></field>
<field var='os_version'><value>10.5.1</value></field>
<field var='software'><value>Psi</value></field>
<field var='software_version'><value>0.11</value></field>
</x>
</query>`

const simpleS = "client/pc//Exodus 0.9.1<http://jabber.org/protocol/caps<http://jabber.org/protocol/disco#info<" +
	"http://jabber.org/protocol/disco#items<http://jabber.org/protocol/muc<"

func parse(t testing.TB, s string) *xmlstream.Node {
	t.Helper()
	n, err := xmlstream.ParseNode(s, "")
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// The worked examples: the exact verification string S and its sha-1 of §5.2 and §5.3.
func TestWorkedExamples(t *testing.T) {
	tests := []struct {
		name, xml, s, ver string
	}{
		{"5.2 simple", simple, simpleS, "QgayPKawpkPSDYmwT/WM94uAlu0="},
		{"5.3 complex", complex, "client/pc/el/Ψ 0.11<client/pc/en/Psi 0.11<http://jabber.org/protocol/caps<" +
			"http://jabber.org/protocol/disco#info<http://jabber.org/protocol/disco#items<http://jabber.org/protocol/muc<" +
			"urn:xmpp:dataforms:softwareinfo<ip_version<ipv4<ipv6<os<Mac<os_version<10.5.1<software<Psi<" +
			"software_version<0.11<", "q07IKJEyjvHSyhy//CH0CxmKi8w="},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := String(parse(t, tc.xml))
			if err != nil {
				t.Fatal(err)
			}
			if s != tc.s {
				t.Errorf("S = %q\nwant %q", s, tc.s)
			}
			if h := Hash("sha-1", s); h != tc.ver {
				t.Errorf("sha-1 = %q, want %q", h, tc.ver)
			}
			if v := ServerVer(tc.xml); v != tc.ver {
				t.Errorf("ServerVer = %q, want %q", v, tc.ver)
			}
		})
	}
}

// Verification, plus the §5.4 ill-formedness rules (moved from actors.TestCapsVerification).
func TestVerify(t *testing.T) {
	tests := []struct {
		name, xml, algo, ver string
		ok                   bool
	}{
		{"5.2 simple", simple, "sha-1", "QgayPKawpkPSDYmwT/WM94uAlu0=", true},
		{"5.3 complex", complex, "sha-1", "q07IKJEyjvHSyhy//CH0CxmKi8w=", true},
		{"wrong ver", simple, "sha-1", "q07IKJEyjvHSyhy//CH0CxmKi8w=", false},
		{"empty ver", simple, "sha-1", "", false},
		{"unsupported hash", simple, "md5", "QgayPKawpkPSDYmwT/WM94uAlu0=", false},
		{"no hash", simple, "", "QgayPKawpkPSDYmwT/WM94uAlu0=", false},
		{"duplicate feature", `<query xmlns='http://jabber.org/protocol/disco#info'><identity category='client' name='Exodus 0.9.1' type='pc'/>
<feature var='http://jabber.org/protocol/caps'/><feature var='http://jabber.org/protocol/caps'/>
<feature var='http://jabber.org/protocol/disco#info'/><feature var='http://jabber.org/protocol/disco#items'/>
<feature var='http://jabber.org/protocol/muc'/></query>`, "sha-1", "QgayPKawpkPSDYmwT/WM94uAlu0=", false},
		{"duplicate identity", `<query xmlns='http://jabber.org/protocol/disco#info'><identity category='client' name='a' type='pc'/><identity category='client' name='a' type='pc'/></query>`, "sha-1", Hash("sha-1", "client/pc//a<client/pc//a<"), false},
		{"two forms with one FORM_TYPE", `<query xmlns='http://jabber.org/protocol/disco#info'>
<x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE' type='hidden'><value>urn:a</value></field></x>
<x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE' type='hidden'><value>urn:a</value></field></x></query>`, "sha-1", Hash("sha-1", "urn:a<urn:a<"), false},
		{"FORM_TYPE with two values", `<query xmlns='http://jabber.org/protocol/disco#info'>
<x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE' type='hidden'><value>urn:a</value><value>urn:b</value></field></x></query>`, "sha-1", Hash("sha-1", "urn:a<"), false},
		{"FORM_TYPE repeating one value", `<query xmlns='http://jabber.org/protocol/disco#info'>
<x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE' type='hidden'><value>urn:a</value><value>urn:a</value></field></x></query>`, "sha-1", Hash("sha-1", "urn:a<"), true},
		{"form without hidden FORM_TYPE ignored", `<query xmlns='http://jabber.org/protocol/disco#info'><feature var='a'/>
<x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE'><value>urn:a</value></field><field var='f'><value>v</value></field></x></query>`, "sha-1", Hash("sha-1", "a<"), true},
		{"form without FORM_TYPE ignored", `<query xmlns='http://jabber.org/protocol/disco#info'><feature var='a'/>
<x xmlns='jabber:x:data' type='result'><field var='f'><value>v</value></field></x></query>`, "sha-1", Hash("sha-1", "a<"), true},
		{"form fields and values sorted", `<query xmlns='http://jabber.org/protocol/disco#info'>
<x xmlns='jabber:x:data' type='result'><field var='z'><value>2</value><value>1</value></field><field var='FORM_TYPE' type='hidden'><value>urn:a</value></field><field var='b'><value>x</value></field></x></query>`, "sha-1", Hash("sha-1", "urn:a<b<x<z<1<2<"), true},
		{"foreign children ignored", `<query xmlns='http://jabber.org/protocol/disco#info'><feature var='a'/><feature xmlns='urn:other' var='b'/><junk/></query>`, "sha-1", Hash("sha-1", "a<"), true},
		{"sha-256", simple, "sha-256", Hash("sha-256", simpleS), true},
		{"sha-512", simple, "sha-512", Hash("sha-512", simpleS), true},
		{"sha-1 ver with sha-256 algo", simple, "sha-256", "QgayPKawpkPSDYmwT/WM94uAlu0=", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := parse(t, tc.xml)
			if got := Verify(n, tc.algo, tc.ver); got != tc.ok {
				s, err := String(n)
				t.Errorf("Verify = %v, want %v (S=%q, err=%v)", got, tc.ok, s, err)
			}
		})
	}
}

func TestStringIllFormed(t *testing.T) {
	_, err := String(parse(t, `<query xmlns='http://jabber.org/protocol/disco#info'><feature var='a'/><feature var='a'/></query>`))
	if !errors.Is(err, ErrIllFormed) {
		t.Errorf("err = %v, want ErrIllFormed", err)
	}
}

func TestHashAndSupported(t *testing.T) {
	for _, a := range []string{"sha-1", "sha-224", "sha-256", "sha-384", "sha-512"} {
		if !Supported(a) || Hash(a, "x") == "" {
			t.Errorf("%s not supported", a)
		}
	}
	for _, a := range []string{"", "md5", "SHA-1", "sha1", "sha3-256"} {
		if Supported(a) || Hash(a, "x") != "" {
			t.Errorf("%q supported", a)
		}
	}
	// RFC 3174 / FIPS 180 test vector, base64 (§5.1 step 10).
	if h := Hash("sha-1", "abc"); h != "qZk+NkcGgWq6PiVxeFDCbJzQ2J0=" {
		t.Errorf("sha-1(abc) = %q", h)
	}
}

func TestServerVer(t *testing.T) {
	if v := ServerVer("<query"); v != "" {
		t.Errorf("unparsable: %q", v)
	}
	if v := ServerVer(`<query xmlns='http://jabber.org/protocol/disco#info'><feature var='a'/><feature var='a'/></query>`); v != "" {
		t.Errorf("ill-formed: %q", v)
	}
	// A node attribute (§6.2 node#ver answer) does not change the hash.
	withNode := `<query xmlns='http://jabber.org/protocol/disco#info' node='n#v'>` + simple[len(`<query xmlns='http://jabber.org/protocol/disco#info'>`):]
	if v := ServerVer(withNode); v != "QgayPKawpkPSDYmwT/WM94uAlu0=" {
		t.Errorf("with node: %q", v)
	}
}
