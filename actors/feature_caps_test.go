package actors

import (
	"testing"

	"github.com/xmppd/xmppd/config"

	"github.com/xmppd/xmppd/protocol/xmlstream"
)

// XEP-0115 §5.2 and §5.3 test vectors, plus the §5.4 ill-formedness rules.
func TestCapsVerification(t *testing.T) {
	const simple = `<query xmlns='http://jabber.org/protocol/disco#info'>
<identity category='client' name='Exodus 0.9.1' type='pc'/>
<feature var='http://jabber.org/protocol/caps'/>
<feature var='http://jabber.org/protocol/disco#info'/>
<feature var='http://jabber.org/protocol/disco#items'/>
<feature var='http://jabber.org/protocol/muc'/>
</query>`
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
	tests := []struct {
		name, xml, algo, ver string
		ok                   bool
	}{
		{"5.2 simple", simple, "sha-1", "QgayPKawpkPSDYmwT/WM94uAlu0=", true},
		{"5.3 complex", complex, "sha-1", "q07IKJEyjvHSyhy//CH0CxmKi8w=", true},
		{"wrong ver", simple, "sha-1", "q07IKJEyjvHSyhy//CH0CxmKi8w=", false},
		{"unsupported hash", simple, "md5", "QgayPKawpkPSDYmwT/WM94uAlu0=", false},
		{"duplicate feature", `<query xmlns='http://jabber.org/protocol/disco#info'><identity category='client' name='Exodus 0.9.1' type='pc'/>
<feature var='http://jabber.org/protocol/caps'/><feature var='http://jabber.org/protocol/caps'/>
<feature var='http://jabber.org/protocol/disco#info'/><feature var='http://jabber.org/protocol/disco#items'/>
<feature var='http://jabber.org/protocol/muc'/></query>`, "sha-1", "QgayPKawpkPSDYmwT/WM94uAlu0=", false},
		{"duplicate identity", `<query xmlns='http://jabber.org/protocol/disco#info'><identity category='client' name='a' type='pc'/><identity category='client' name='a' type='pc'/></query>`, "sha-1", capsHash("sha-1", "client/pc//a<client/pc//a<"), false},
		{"two forms with one FORM_TYPE", `<query xmlns='http://jabber.org/protocol/disco#info'>
<x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE' type='hidden'><value>urn:a</value></field></x>
<x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE' type='hidden'><value>urn:a</value></field></x></query>`, "sha-1", capsHash("sha-1", "urn:a<urn:a<"), false},
		{"form without hidden FORM_TYPE ignored", `<query xmlns='http://jabber.org/protocol/disco#info'><feature var='a'/>
<x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE'><value>urn:a</value></field><field var='f'><value>v</value></field></x></query>`, "sha-1", capsHash("sha-1", "a<"), true},
		{"sha-256", simple, "sha-256", capsHash("sha-256", "client/pc//Exodus 0.9.1<http://jabber.org/protocol/caps<http://jabber.org/protocol/disco#info<http://jabber.org/protocol/disco#items<http://jabber.org/protocol/muc<"), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, err := xmlstream.ParseNode(tc.xml, "")
			if err != nil {
				t.Fatal(err)
			}
			if got := verifyCaps(n, tc.algo, tc.ver); got != tc.ok {
				s, err := capsString(n)
				t.Errorf("verifyCaps = %v, want %v (S=%q, err=%v)", got, tc.ok, s, err)
			}
		})
	}
}

// The server's own caps hash changes exactly when what it advertises changes.
func TestServerCapsFollowFeatures(t *testing.T) {
	cfg := config.Default()
	a := serverCapsVer(&cfg)
	if a == "" {
		t.Fatal("no caps ver")
	}
	cfg.Features.Disable = []string{"carbons"}
	b := serverCapsVer(&cfg)
	if a == b {
		t.Errorf("disabling carbons did not change the caps ver")
	}
	n, err := xmlstream.ParseNode(serverDiscoInfo(&cfg, ""), "")
	if err != nil {
		t.Fatal(err)
	}
	if !verifyCaps(n, "sha-1", b) {
		t.Errorf("the server's disco#info does not verify against its own ver")
	}
	for _, v := range discoVars(&cfg, false) {
		if v == nsCarbons {
			t.Errorf("carbons advertised while disabled")
		}
	}
	cfg.Features.Disable = []string{"nonsense"}
	if err := cfg.Validate(); err == nil {
		t.Errorf("unknown feature name accepted")
	}
}
