package portable

import (
	"bytes"
	"errors"
	"io"
	"path"
	"reflect"
	"strings"
	"testing"
)

const full = `<?xml version='1.0' encoding='UTF-8'?>
<server-data xmlns='urn:xmpp:pie:0'>
  <host jid='Example.ORG'>
    <user name='Juliet' password='s3crEt'>
      <scram-credentials xmlns='urn:xmpp:pie:0#scram' mechanism='SCRAM-SHA-1'>
        <iter-count>4096</iter-count><salt>c2FsdA==</salt>
        <server-key>AAECAwQFBgcICQoLDA0ODxAREhM=</server-key><stored-key>FBUWFxgZGhscHR4fICEiIyQlJic=</stored-key>
      </scram-credentials>
      <query xmlns='jabber:iq:roster'>
        <item jid='romeo@montague.net' name='Romeo' subscription='both'><group>Friends</group><group>Lovers</group></item>
        <item jid='nurse@example.org' ask='subscribe'/>
      </query>
      <presence xmlns='jabber:client' type='subscribe' from='tybalt@example.org'/>
      <vCard xmlns='vcard-temp'><FN>Juliet &amp; co</FN></vCard>
      <query xmlns='jabber:iq:private'><exodus xmlns='exodus:prefs'><defaultnick>Jule</defaultnick></exodus></query>
      <blocklist xmlns='urn:xmpp:blocking'><item jid='paris@example.org'/></blocklist>
      <offline-messages>
        <message xmlns='jabber:client' from='romeo@montague.net/orchard' to='juliet@example.org' type='chat' xml:lang='en'><body>Hi</body><delay xmlns='urn:xmpp:delay' from='example.org' stamp='2020-01-02T03:04:05Z'/></message>
      </offline-messages>
      <pubsub xmlns='http://jabber.org/protocol/pubsub#owner'><configure node='urn:xmpp:avatar:data'><x xmlns='jabber:x:data' type='submit'/></configure>
        <affiliations node='urn:xmpp:avatar:data'><affiliation jid='romeo@montague.net' affiliation='member'/></affiliations></pubsub>
      <pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='urn:xmpp:avatar:data'><item id='abc'><data xmlns='urn:xmpp:avatar:data'>AAAA</data></item></items></pubsub>
      <query xmlns='jabber:iq:privacy'/>
    </user>
    <user name='romeo'/>
  </host>
  <other xmlns='urn:example:ext'><deep/></other>
</server-data>`

func readAll(t *testing.T, doc string, open Opener, lim Limits) ([]*User, *Decoder, error) {
	t.Helper()
	d := NewDecoder(strings.NewReader(doc), "main.xml", open, lim)
	defer d.Close()
	var us []*User
	for {
		u, err := d.Next()
		if err == io.EOF {
			return us, d, nil
		}
		if err != nil {
			return us, d, err
		}
		us = append(us, u)
	}
}

func TestDecodeFull(t *testing.T) {
	us, d, err := readAll(t, full, nil, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if len(us) != 2 {
		t.Fatalf("%d users", len(us))
	}
	u := us[0]
	if u.Bare() != "juliet@example.org" || u.Password != "s3crEt" || u.Line != 4 {
		t.Errorf("user %q password %q line %d", u.Bare(), u.Password, u.Line)
	}
	if len(u.SCRAM) != 1 || u.SCRAM[0].Iterations != 4096 || string(u.SCRAM[0].Salt) != "salt" || u.SCRAM[0].ServerKey[19] != 19 || u.SCRAM[0].StoredKey[0] != 20 {
		t.Errorf("scram %+v", u.SCRAM)
	}
	want := []RosterItem{{JID: "romeo@montague.net", Name: "Romeo", Subscription: "both", Groups: []string{"Friends", "Lovers"}},
		{JID: "nurse@example.org", Subscription: "none", Ask: true}}
	if !reflect.DeepEqual(u.Roster, want) {
		t.Errorf("roster %+v", u.Roster)
	}
	if !reflect.DeepEqual(u.Pending, []string{"tybalt@example.org"}) {
		t.Errorf("pending %v", u.Pending)
	}
	if u.VCard != "<vCard xmlns='vcard-temp'><FN>Juliet &amp; co</FN></vCard>" {
		t.Errorf("vcard %s", u.VCard)
	}
	if !reflect.DeepEqual(u.Private, []string{"<exodus xmlns='exodus:prefs'><defaultnick>Jule</defaultnick></exodus>"}) {
		t.Errorf("private %v", u.Private)
	}
	if !reflect.DeepEqual(u.Blocked, []string{"paris@example.org"}) {
		t.Errorf("blocked %v", u.Blocked)
	}
	if len(u.Offline) != 1 || !strings.HasPrefix(u.Offline[0], "<message xmlns='jabber:client' from='romeo@montague.net/orchard'") || !strings.Contains(u.Offline[0], "xml:lang='en'") {
		t.Errorf("offline %v", u.Offline)
	}
	if len(u.PEP) != 1 || u.PEP[0].Node != "urn:xmpp:avatar:data" || u.PEP[0].Form != "<x xmlns='jabber:x:data' type='submit'/>" ||
		len(u.PEP[0].Items) != 1 || u.PEP[0].Items[0].Payload != "<data xmlns='urn:xmpp:avatar:data'>AAAA</data>" ||
		!reflect.DeepEqual(u.PEP[0].Members, []PEPMember{{JID: "romeo@montague.net", Affiliation: "member"}}) {
		t.Errorf("pep %+v", u.PEP)
	}
	if !reflect.DeepEqual(u.Skipped, []string{"{jabber:iq:privacy}query"}) || !reflect.DeepEqual(d.Skipped, []string{"{urn:example:ext}other"}) {
		t.Errorf("skipped %v / %v", u.Skipped, d.Skipped)
	}
}

func TestRoundTrip(t *testing.T) {
	us, _, err := readAll(t, full, nil, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	us = append(us, &User{Host: "other.example", Name: "x", File: "main.xml"})
	var b bytes.Buffer
	e := NewEncoder(&b)
	for _, u := range us {
		if err := e.Encode(u); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	again, _, err := readAll(t, b.String(), nil, Limits{})
	if err != nil {
		t.Fatalf("%v\n%s", err, b.String())
	}
	for i := range us {
		us[i].Line, again[i].Line, us[i].Skipped = 0, 0, nil
	}
	if len(us) != len(again) {
		t.Fatalf("%d users, %d after the round trip", len(us), len(again))
	}
	for i := range us {
		if !reflect.DeepEqual(us[i], again[i]) {
			t.Errorf("round trip differs:\n%#v\n%#v\n%s", us[i], again[i], b.String())
		}
	}
}

// ejabberd 23.01 export_piefxis: a main file including a host file, its SCRAM values base64-encoded twice.
func TestXIncludeAndEjabberdSCRAM(t *testing.T) {
	files := map[string]string{
		"out/main.xml": `<?xml version='1.0' encoding='UTF-8'?><server-data xmlns='urn:xmpp:pie:0' xmlns:xi='http://www.w3.org/2001/XInclude'><xi:include href='h.xml'/></server-data>`,
		"out/h.xml":    `<?xml version='1.0' encoding='UTF-8'?><host xmlns='urn:xmpp:pie:0' xmlns:xi='http://www.w3.org/2001/XInclude' jid='localhost'><user name='alice'><scram-credentials xmlns='urn:xmpp:pie:0#scram' mechanism='SCRAM-SHA-1'><iter-count>4096</iter-count><salt>QjJHc3IwSW50c3U5RnhSYTJmamgxQT09</salt><server-key>ckRuTTJaeFQyYU1hU3VsVU9YSWl1L25ZaWpNPQ==</server-key><stored-key>cmhHVzA2VFVnMC9JcGpJbmRkQkIzb1hobVIwPQ==</stored-key></scram-credentials></user><xi:include href='u.xml'/></host>`,
		"out/u.xml":    `<user xmlns='urn:xmpp:pie:0' name='bob' password='pw'/>`,
	}
	open := func(base, href string) (string, io.ReadCloser, error) {
		name := path.Join(path.Dir(base), href)
		s, ok := files[name]
		if !ok {
			return "", nil, errors.New("no such file")
		}
		return name, io.NopCloser(strings.NewReader(s)), nil
	}
	d := NewDecoder(strings.NewReader(files["out/main.xml"]), "out/main.xml", open, Limits{})
	var us []*User
	for {
		u, err := d.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		us = append(us, u)
	}
	if len(us) != 2 || us[0].Bare() != "alice@localhost" || us[1].Bare() != "bob@localhost" || us[1].Password != "pw" || us[1].File != "out/u.xml" {
		t.Fatalf("users %+v", us)
	}
	c := us[0].SCRAM[0]
	if len(c.StoredKey) != 20 || len(c.ServerKey) != 20 || len(c.Salt) != 16 {
		t.Errorf("ejabberd SCRAM not decoded twice: %d %d %d", len(c.StoredKey), len(c.ServerKey), len(c.Salt))
	}
}

func TestRefused(t *testing.T) {
	head := "<server-data xmlns='urn:xmpp:pie:0'><host jid='example.org'>"
	tail := "</host></server-data>"
	for _, tc := range []struct {
		name, doc, reason string
		line              int
		lim               Limits
	}{
		{"doctype", "<?xml version='1.0'?>\n<!DOCTYPE x [<!ENTITY a 'aaaa'>]>\n<server-data xmlns='urn:xmpp:pie:0'/>", "DOCTYPE", 2, Limits{}},
		{"entity", head + "<user name='a'><vCard xmlns='vcard-temp'>&a;</vCard></user>" + tail, "malformed XML", 1, Limits{}},
		{"pi", "<?evil x?><server-data xmlns='urn:xmpp:pie:0'/>", "processing instruction", 1, Limits{}},
		{"encoding", "<?xml version='1.0' encoding='ISO-8859-1'?><server-data xmlns='urn:xmpp:pie:0'/>", "encoding", 1, Limits{}},
		{"root ns", "<server-data xmlns='urn:wrong'/>", "root element", 1, Limits{}},
		{"host ns", "<server-data xmlns='urn:xmpp:pie:0'>\n<host xmlns='urn:wrong' jid='x'/></server-data>", "namespace", 2, Limits{}},
		{"bad host", "<server-data xmlns='urn:xmpp:pie:0'><host jid='a@b'/></server-data>", "not a domain JID", 1, Limits{}},
		{"bad user", head + "\n\n<user name='a b'/>" + tail, "valid localpart", 3, Limits{}},
		{"empty user", head + "<user/>" + tail, "valid localpart", 1, Limits{}},
		{"bad roster jid", head + "<user name='a'><query xmlns='jabber:iq:roster'><item jid='@@'/></query></user>" + tail, "roster item jid", 1, Limits{}},
		{"bad subscription", head + "<user name='a'><query xmlns='jabber:iq:roster'><item jid='b@c' subscription='all'/></query></user>" + tail, "subscription", 1, Limits{}},
		{"bad scram", head + "<user name='a'><scram-credentials xmlns='urn:xmpp:pie:0#scram' mechanism='SCRAM-SHA-1'><iter-count>1</iter-count><salt>!!</salt><server-key>AA==</server-key><stored-key>AA==</stored-key></scram-credentials></user>" + tail, "base64", 1, Limits{}},
		{"short keys", head + "<user name='a'><scram-credentials xmlns='urn:xmpp:pie:0#scram' mechanism='SCRAM-SHA-1'><iter-count>1</iter-count><salt>AA==</salt><server-key>AA==</server-key><stored-key>AA==</stored-key></scram-credentials></user>" + tail, "not 20", 1, Limits{}},
		{"md5", head + "<user name='a'><scram-credentials xmlns='urn:xmpp:pie:0#scram' mechanism='DIGEST-MD5'/></user>" + tail, "not supported", 1, Limits{}},
		{"huge", head + "<user name='a'><vCard xmlns='vcard-temp'><FN>" + strings.Repeat("x", 100000) + "</FN></vCard></user>" + tail, "bigger than", 1, Limits{MaxUser: 10000}},
		{"deep", head + "<user name='a'>" + strings.Repeat("<a xmlns='urn:x'>", 100) + tail, "nested deeper", 1, Limits{}},
		{"truncated", head + "<user name='a'>", "malformed XML", 1, Limits{}},
		{"text", head + "junk<user name='a'/>" + tail, "unexpected text", 1, Limits{}},
		{"include without opener", "<server-data xmlns='urn:xmpp:pie:0'><xi:include xmlns:xi='http://www.w3.org/2001/XInclude' href='/etc/passwd'/></server-data>", "includes are not allowed", 1, Limits{}},
		{"private jabber ns", head + "<user name='a'><query xmlns='jabber:iq:private'><query xmlns='jabber:iq:roster'/></query></user>" + tail, "XEP-0049", 1, Limits{}},
		{"offline not message", head + "<user name='a'><offline-messages><iq xmlns='jabber:client'/></offline-messages></user>" + tail, "not a jabber:client message", 1, Limits{}},
		{"user outside host", "<server-data xmlns='urn:xmpp:pie:0'><user name='a'/></server-data>", "unexpected element", 1, Limits{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := readAll(t, tc.doc, nil, tc.lim)
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v, want *Error", err)
			}
			if !strings.Contains(pe.Reason, tc.reason) || pe.Line != tc.line {
				t.Errorf("got %v, want line %d and %q", pe, tc.line, tc.reason)
			}
		})
	}
}

// A file of many users is read one user at a time: the budget is per user, so the whole document may be far
// bigger than Limits.MaxUser.
func TestStreaming(t *testing.T) {
	pr, pw := io.Pipe()
	go func() {
		e := NewEncoder(pw)
		for i := 0; i < 5000; i++ {
			e.Encode(&User{Host: "example.org", Name: "u" + strings.Repeat("x", i%50) + string(rune('a'+i%26)) + "n" + itoa(i), VCard: "<vCard xmlns='vcard-temp'><FN>" + strings.Repeat("y", 500) + "</FN></vCard>"})
		}
		pw.CloseWithError(e.Close())
	}()
	d := NewDecoder(pr, "pipe", nil, Limits{MaxUser: 8192})
	n := 0
	for {
		_, err := d.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != 5000 {
		t.Errorf("%d users", n)
	}
}

func itoa(i int) string {
	return strings.TrimLeft(strings.Replace(string(rune('0'+i/1000%10))+string(rune('0'+i/100%10))+string(rune('0'+i/10%10))+string(rune('0'+i%10)), "", "", 0), "")
}

// An error in one user's data skips that user: Next returns it with User set and goes on with the next user.
func TestUserErrorSkipsUser(t *testing.T) {
	doc := "<server-data xmlns='urn:xmpp:pie:0'><host jid='localhost'>\n<user name='r' password='p'><query xmlns='jabber:iq:roster'><item jid='a@b@c'/></query><vCard xmlns='vcard-temp'/></user>\n<user name='bad name'><x/></user>\n<user name='after'/></host></server-data>"
	d := NewDecoder(strings.NewReader(doc), "f", nil, Limits{})
	var got []string
	for {
		u, err := d.Next()
		if err == io.EOF {
			break
		}
		var pe *Error
		if errors.As(err, &pe) {
			if pe.User == "" {
				t.Fatalf("fatal error %v", err)
			}
			got = append(got, "error "+pe.User)
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, u.Bare())
	}
	if want := []string{"error r@localhost", "error bad name@localhost", "after@localhost"}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}
