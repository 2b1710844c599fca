package debugapi

import (
	"bufio"
	"crypto/tls"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/xmppd/xmppd/test/harness"
)

// A deliberately small XMPP client over raw sockets: direct TLS (XEP-0368), in-band registration (XEP-0077),
// SASL PLAIN, resource binding, then a reader goroutine that hands every <message/> to a callback. It is cheap
// enough to run 200 of them on a small machine next to a race-enabled server.

const (
	nsStream   = "http://etherx.jabber.org/streams"
	streamOpen = `<?xml version='1.0'?><stream:stream to='%s' version='1.0' xml:lang='en' xmlns='jabber:client' xmlns:stream='` + nsStream + `'>`
	ioTimeout  = 20 * time.Second
)

type elem struct {
	XMLName xml.Name
	Attrs   []xml.Attr `xml:",any,attr"`
	Inner   string     `xml:",innerxml"`
}

func (e *elem) attr(name string) string {
	for _, a := range e.Attrs {
		if a.Name.Local == name && a.Name.Space == "" {
			return a.Value
		}
	}
	return ""
}

type client struct {
	local, full string
	conn        *tls.Conn
	dec         *xml.Decoder
	wmu         sync.Mutex
	done        chan struct{}
	readErr     error
}

func (c *client) write(s string) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.conn.SetWriteDeadline(time.Now().Add(ioTimeout))
	_, err := io.WriteString(c.conn, s)
	return err
}

// next returns the next top-level element (the stream header comes back as an elem without content).
func (c *client) next() (*elem, error) {
	for {
		tok, err := c.dec.Token()
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if t.Name.Space == nsStream && t.Name.Local == "stream" {
				return &elem{XMLName: t.Name, Attrs: t.Attr}, nil
			}
			var e elem
			if err := c.dec.DecodeElement(&e, &t); err != nil {
				return nil, err
			}
			return &e, nil
		case xml.EndElement:
			return nil, io.EOF
		}
	}
}

func (c *client) expect(local string) (*elem, error) {
	e, err := c.next()
	if err != nil {
		return nil, fmt.Errorf("waiting for <%s>: %w", local, err)
	}
	if e.XMLName.Local != local {
		return nil, fmt.Errorf("got <%s xmlns='%s'> %s, want <%s>", e.XMLName.Local, e.XMLName.Space, e.Inner, local)
	}
	return e, nil
}

func (c *client) open(domain string) error {
	c.dec = xml.NewDecoder(bufio.NewReader(c.conn))
	if err := c.write(fmt.Sprintf(streamOpen, domain)); err != nil {
		return err
	}
	if _, err := c.expect("stream"); err != nil {
		return err
	}
	_, err := c.expect("features")
	return err
}

// connect registers local (when register is set), logs in with PLAIN, binds resource and sends initial
// presence. onMessage, when not nil, runs on the reader goroutine for every message received.
func connect(srv *harness.Server, local, password, resource string, register bool, onMessage func(*elem)) (*client, error) {
	nc, err := net.DialTimeout("tcp", srv.DirectTLSAddr, ioTimeout)
	if err != nil {
		return nil, err
	}
	tc := tls.Client(nc, &tls.Config{RootCAs: srv.CertPool, ServerName: srv.Domain, NextProtos: []string{"xmpp-client"}})
	c := &client{local: local, conn: tc, done: make(chan struct{})}
	fail := func(err error) (*client, error) {
		nc.Close()
		return nil, fmt.Errorf("%s/%s: %w", local, resource, err)
	}
	_ = tc.SetDeadline(time.Now().Add(ioTimeout))
	if err := tc.Handshake(); err != nil {
		return fail(err)
	}
	if err := c.open(srv.Domain); err != nil {
		return fail(err)
	}
	if register {
		if err := c.write(`<iq type='set' id='reg'><query xmlns='jabber:iq:register'><username>` + local +
			`</username><password>` + password + `</password></query></iq>`); err != nil {
			return fail(err)
		}
		e, err := c.expect("iq")
		if err != nil {
			return fail(err)
		}
		if e.attr("type") != "result" {
			return fail(fmt.Errorf("registration: %s", e.Inner))
		}
	}
	creds := base64.StdEncoding.EncodeToString([]byte("\x00" + local + "\x00" + password))
	if err := c.write(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>` + creds + `</auth>`); err != nil {
		return fail(err)
	}
	if _, err := c.expect("success"); err != nil {
		return fail(err)
	}
	if err := c.open(srv.Domain); err != nil {
		return fail(err)
	}
	if err := c.write(`<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>` + resource +
		`</resource></bind></iq>`); err != nil {
		return fail(err)
	}
	e, err := c.expect("iq")
	if err != nil {
		return fail(err)
	}
	if e.attr("type") != "result" {
		return fail(fmt.Errorf("bind: %s", e.Inner))
	}
	c.full = between(e.Inner, "<jid>", "</jid>")
	if err := c.write(`<presence/>`); err != nil {
		return fail(err)
	}
	_ = tc.SetDeadline(time.Time{})
	go c.readLoop(onMessage)
	return c, nil
}

func (c *client) readLoop(onMessage func(*elem)) {
	defer close(c.done)
	for {
		e, err := c.next()
		if err != nil {
			c.readErr = err
			return
		}
		if e.XMLName.Local == "message" && onMessage != nil {
			onMessage(e)
		}
	}
}

// close ends the stream politely and waits for the server's closing tag (or a read error).
func (c *client) close() {
	_ = c.write(`</stream:stream>`)
	select {
	case <-c.done:
	case <-time.After(5 * time.Second):
	}
	_ = c.conn.Close()
}

func between(s, a, b string) string {
	_, rest, ok := strings.Cut(s, a)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, b)
	return v
}
