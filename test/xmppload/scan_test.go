package xmppload

import (
	"errors"
	"io"
	"strings"
	"testing"
)

// chunkReader returns at most n bytes per Read, to exercise partial elements.
type chunkReader struct {
	s string
	n int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if c.s == "" {
		return 0, io.EOF
	}
	k := min(c.n, len(p), len(c.s))
	copy(p, c.s[:k])
	c.s = c.s[k:]
	return k, nil
}

const sampleStream = `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='a>b' from='localhost' version='1.0'>` +
	`<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>SCRAM-SHA-1</mechanism><mechanism>PLAIN</mechanism></mechanisms></stream:features>` +
	"\n \n" +
	`<presence from="a@b/c"/>` +
	`<message to='x' title="1 > 0"><body>xl1 7 1 42 1000</body><x><![CDATA[</message><a>]]></x><!-- c --></message>` +
	` </stream:stream>`

func TestScannerEvents(t *testing.T) {
	for _, chunk := range []int{1, 3, 7, 64, 100000} {
		sc := newScanner(&chunkReader{s: sampleStream, n: chunk})
		var got []string
		for {
			ev, el, err := sc.next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("chunk %d: %v", chunk, err)
			}
			got = append(got, string(rune('0'+ev))+":"+string(elemName(el)))
		}
		want := "1:stream:stream 2:stream:features 2:presence 2:message 3:"
		if strings.Join(got, " ") != want {
			t.Fatalf("chunk %d: events %q, want %q", chunk, strings.Join(got, " "), want)
		}
	}
}

func TestScannerElementBytes(t *testing.T) {
	sc := newScanner(strings.NewReader(sampleStream))
	var msg []byte
	for {
		ev, el, err := sc.next()
		if err != nil {
			t.Fatal(err)
		}
		if ev == evElement && string(elemName(el)) == "message" {
			msg = append([]byte(nil), el...)
			break
		}
	}
	if !strings.HasSuffix(string(msg), "<!-- c --></message>") || !strings.HasPrefix(string(msg), "<message to='x'") {
		t.Fatalf("message element = %q", msg)
	}
	if v := string(attr(msg, "title")); v != "1 > 0" {
		t.Fatalf("attr title = %q", v)
	}
	if v := string(childText(msg, "body")); v != "xl1 7 1 42 1000" {
		t.Fatalf("body = %q", v)
	}
	p, ok := parsePayload(childText(msg, "body")[4:])
	if !ok || p != (payload{run: 7, from: 1, seq: 42, ts: 1000}) {
		t.Fatalf("payload = %+v %v", p, ok)
	}
}

func TestScannerGrowsAndLimits(t *testing.T) {
	big := "<stream:stream><message><body>" + strings.Repeat("a", 3*scanInitial) + "</body></message>"
	sc := newScanner(strings.NewReader(big))
	if ev, _, err := sc.next(); err != nil || ev != evStreamOpen {
		t.Fatal(ev, err)
	}
	ev, el, err := sc.next()
	if err != nil || ev != evElement || len(el) != len(big)-len("<stream:stream>") {
		t.Fatalf("big element: ev=%d len=%d err=%v", ev, len(el), err)
	}
	sc = newScanner(strings.NewReader(big))
	sc.maxElement = scanInitial * 2
	sc.next()
	if _, _, err := sc.next(); !errors.Is(err, errElementTooLarge) {
		t.Fatalf("want errElementTooLarge, got %v", err)
	}
}

func TestScannerResetAndBeforeFill(t *testing.T) {
	sc := newScanner(&chunkReader{s: "<stream:stream><proceed/>", n: 5})
	fills := 0
	sc.beforeFill = func() { fills++ }
	sc.next()
	if ev, el, err := sc.next(); err != nil || ev != evElement || string(el) != "<proceed/>" {
		t.Fatalf("%d %q %v", ev, el, err)
	}
	if fills < 2 {
		t.Fatalf("beforeFill ran %d times", fills)
	}
	sc.reset(strings.NewReader("<stream:stream><success/>"))
	if ev, _, _ := sc.next(); ev != evStreamOpen {
		t.Fatal("no stream header after reset")
	}
	if _, el, _ := sc.next(); string(el) != "<success/>" {
		t.Fatalf("after reset: %q", el)
	}
}

func TestElementHelpers(t *testing.T) {
	f := []byte(`<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/></failure>`)
	if c := firstChildName(f); c != "not-authorized" {
		t.Fatalf("condition %q", c)
	}
	e := []byte(`<message type='error'><body>x</body><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>`)
	if c := stanzaErrorCondition(e); c != "service-unavailable" {
		t.Fatalf("stanza condition %q", c)
	}
	se := []byte(`<stream:error><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>`)
	if c := firstChildName(se); c != "host-unknown" {
		t.Fatalf("stream error %q", c)
	}
	if v := string(elementText([]byte("<challenge xmlns='x'>cj1h</challenge>"))); v != "cj1h" {
		t.Fatalf("text %q", v)
	}
	bind := []byte(`<iq type='result' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>u1@localhost/xl</jid></bind></iq>`)
	if v := string(childText(bind, "jid")); v != "u1@localhost/xl" {
		t.Fatalf("jid %q", v)
	}
	if attr([]byte(`<iq id="x"/>`), "type") != nil {
		t.Fatal("missing attribute should be nil")
	}
	for _, bad := range []string{"", "1 2 3", "1 2 x 4", "1  2 3 4", "a"} {
		if _, ok := parsePayload([]byte(bad)); ok {
			t.Fatalf("parsePayload(%q) accepted", bad)
		}
	}
}
