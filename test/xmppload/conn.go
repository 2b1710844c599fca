package xmppload

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// client is one simulated user with one connection. During login the
// goroutine that dialled reads the socket itself; afterwards the same
// goroutine becomes the connection's only reader (readLoop). Writes after
// login go through a combining buffer (queue/flush): whoever finds the
// buffer idle writes it, others only append, so messages produced while a
// write is in progress leave in the next single write.
type client struct {
	r    *runner
	idx  int // 1-based account number
	user string
	jid  string // bound full JID

	nc  net.Conn
	raw net.Conn    // the TCP connection under nc (TLS), which drop resets
	tls *tls.Config // with -tls-resume: the runner's, with this client's own session cache (clientTLS)
	sc  *scanner

	wmu      sync.Mutex
	out      []byte
	spare    []byte
	flushing bool
	werr     error

	// chat: messages this client sends (out) and the one it receives (in).
	outFlow *flow
	inFlow  atomic.Pointer[flow]
	track   seqTracker
	pending int // credits earned by received messages, sent before the next read

	rosterItems int             // items in the roster fetched at login
	rosterBoth  int             // of which with subscription 'both' (RFC 6121 §2.1.2.1)
	mutual      map[string]bool // roster profile: the bare JIDs of those items
	presSent    uint64          // roster profile, touched only by the ticker
	// roster profile: contacts online when the measured phase began, the deliveries one presence update of this
	// client should make (set before the ticker starts, read only by it).
	presFanout uint64

	muc *mucState // muc profile
	sm  smClient  // XEP-0198 (sm.go)
}

// errKind is an error with a short kind used to group errors in the report.
type errKind struct {
	kind string
	err  error
}

func (e *errKind) Error() string {
	if e.err == nil {
		return e.kind
	}
	return e.kind + ": " + e.err.Error()
}
func (e *errKind) Unwrap() error { return e.err }

// kindErr wraps err with a kind; wrapping another kinded error joins the
// kinds ("register" + "iq-error:not-allowed" = "register/iq-error:not-allowed")
// so the report says both where and why.
func kindErr(kind string, err error) error {
	var inner *errKind
	if errors.As(err, &inner) {
		if inner.kind == kind {
			return err
		}
		return &errKind{kind: kind + "/" + inner.kind, err: inner.err}
	}
	return &errKind{kind: kind, err: err}
}

// errorKind classifies any error for the report.
func errorKind(err error) string {
	var ek *errKind
	if errors.As(err, &ek) {
		if ek.err != nil {
			var ne net.Error
			if errors.As(ek.err, &ne) && ne.Timeout() {
				return ek.kind + ":timeout"
			}
		}
		return ek.kind
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout"
	}
	return "other"
}

func (c *client) dial(ctx context.Context) error {
	cfg := &c.r.cfg
	if cfg.Transport == "websocket" || cfg.Transport == "bosh" {
		dial := c.dialWS
		if cfg.Transport == "bosh" {
			dial = c.dialBOSH
		}
		nc, err := dial(ctx)
		if err != nil {
			return err
		}
		c.wmu.Lock()
		c.nc, c.raw = nc, nc // drop closes the stream without its end (no terminate, no <close/>)
		c.werr = nil
		c.out = c.out[:0]
		c.wmu.Unlock()
		_ = nc.SetDeadline(time.Now().Add(cfg.LoginTimeout))
		if c.sc == nil {
			c.sc = newScanner(c.nc)
		} else {
			c.sc.reset(c.nc)
		}
		return nil
	}
	d := net.Dialer{Timeout: cfg.LoginTimeout}
	if len(c.r.sourceIPs) > 0 {
		d.LocalAddr = &net.TCPAddr{IP: c.r.sourceIPs[c.idx%len(c.r.sourceIPs)]}
	}
	nc, err := d.DialContext(ctx, "tcp", c.r.addrs[c.idx%len(c.r.addrs)])
	if err != nil {
		return kindErr("connect", err)
	}
	c.wmu.Lock()
	c.nc, c.raw = nc, nc
	c.werr = nil
	c.out = c.out[:0]
	c.wmu.Unlock()
	_ = nc.SetDeadline(time.Now().Add(cfg.LoginTimeout))
	if cfg.TLS == "direct" {
		tc := tls.Client(nc, c.clientTLS())
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return kindErr("tls", err)
		}
		c.handshook(tc)
		c.nc = tc
	}
	if c.sc == nil {
		c.sc = newScanner(c.nc)
	} else {
		c.sc.reset(c.nc)
	}
	return nil
}

func (c *client) openStream() ([]byte, error) {
	hdr := "<?xml version='1.0'?><stream:stream to='" + c.r.cfg.Domain +
		"' version='1.0' xml:lang='en' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"
	if _, err := c.nc.Write([]byte(hdr)); err != nil {
		return nil, kindErr("write", err)
	}
	ev, _, err := c.sc.next()
	if err != nil {
		return nil, kindErr("stream", err)
	}
	if ev != evStreamOpen {
		return nil, kindErr("stream", errors.New("no stream header"))
	}
	return c.expect("features")
}

// expect reads up to the next top-level element with one of the given local
// names; stream errors become errors of kind stream-error:<condition>. With
// stream management on, what it passes over is still counted and answered.
func (c *client) expect(locals ...string) ([]byte, error) {
	for {
		ev, el, err := c.sc.next()
		if err != nil {
			return nil, kindErr("read", err)
		}
		if ev == evStreamClose {
			return nil, kindErr("stream-closed", nil)
		}
		if ev != evElement {
			continue
		}
		name := localName(elemName(el))
		if string(name) == "error" && bytes.HasPrefix(elemName(el), []byte("stream:")) {
			return nil, kindErr("stream-error:"+firstChildName(el), nil)
		}
		for _, l := range locals {
			if string(name) == l {
				if c.sm.on && isStanza(elemName(el)) {
					c.sm.in.Add(1)
				}
				return el, nil
			}
		}
		// Anything else during negotiation is handled as after login: a
		// message may come before the roster result (after a failed
		// resumption, the peer keeps sending), and with stream management
		// every stanza counts.
		if isStanza(elemName(el)) {
			c.handle(el)
		} else if c.sm.on && isSMNonza(el) {
			c.onSMNonza(el, true)
		}
	}
}

// iq sends an IQ and waits for its result.
func (c *client) iq(id, payload, typ string) ([]byte, error) {
	if err := c.loginWrite([]byte("<iq type='"+typ+"' id='"+id+"'>"+payload+"</iq>"), true); err != nil {
		return nil, err
	}
	for {
		el, err := c.expect("iq")
		if err != nil {
			return nil, err
		}
		if string(attr(el, "id")) != id {
			continue
		}
		if string(attr(el, "type")) == "error" {
			return el, kindErr("iq-error:"+stanzaErrorCondition(el), nil)
		}
		return el, nil
	}
}

type streamFeatures struct {
	StartTLS *struct{} `xml:"urn:ietf:params:xml:ns:xmpp-tls starttls"`
	Mechs    []string  `xml:"urn:ietf:params:xml:ns:xmpp-sasl mechanisms>mechanism"`
	Bind     *struct{} `xml:"urn:ietf:params:xml:ns:xmpp-bind bind"`
	Session  *struct {
		Optional *struct{} `xml:"optional"`
	} `xml:"urn:ietf:params:xml:ns:xmpp-session session"`
	SM *struct{} `xml:"urn:xmpp:sm:3 sm"`
}

func parseFeatures(el []byte) (streamFeatures, error) {
	var f streamFeatures
	if err := xml.Unmarshal(el, &f); err != nil {
		return f, kindErr("features", err)
	}
	return f, nil
}

// connectSecure dials and negotiates TLS as configured, returning the
// features of the (possibly restarted) stream.
func (c *client) connectSecure(ctx context.Context) (streamFeatures, error) {
	if err := c.dial(ctx); err != nil {
		return streamFeatures{}, err
	}
	el, err := c.openStream()
	if err != nil {
		return streamFeatures{}, err
	}
	f, err := parseFeatures(el)
	if err != nil || c.r.cfg.TLS != "starttls" || c.r.cfg.Transport != "tcp" {
		return f, err
	}
	if f.StartTLS == nil {
		return f, kindErr("starttls", errors.New("server does not offer STARTTLS"))
	}
	if _, err := c.nc.Write([]byte("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")); err != nil {
		return f, kindErr("write", err)
	}
	if _, err := c.expect("proceed"); err != nil {
		return f, kindErr("starttls", err)
	}
	tc := tls.Client(c.nc, c.clientTLS())
	if err := tc.HandshakeContext(ctx); err != nil {
		return f, kindErr("tls", err)
	}
	c.handshook(tc)
	c.wmu.Lock()
	c.nc = tc
	c.wmu.Unlock()
	c.sc.reset(tc)
	if el, err = c.openStream(); err != nil {
		return f, err
	}
	return parseFeatures(el)
}

// register creates the account by XEP-0077 in-band registration. An
// existing account (<conflict/>) counts as success so that reruns work.
func (c *client) register(ctx context.Context) (existed bool, err error) {
	defer func() {
		if c.nc != nil {
			_, _ = c.nc.Write([]byte("</stream:stream>"))
			c.nc.Close()
			c.nc = nil
		}
	}()
	if _, err := c.connectSecure(ctx); err != nil {
		return false, err
	}
	_, err = c.iq("reg1", "<query xmlns='jabber:iq:register'><username>"+xmlEscape(c.user)+
		"</username><password>"+xmlEscape(c.r.password(c.idx))+"</password></query>", "set")
	if err != nil && errorKind(err) == "iq-error:conflict" {
		return true, nil
	}
	if err != nil {
		return false, kindErr("register", err)
	}
	return false, nil
}

// login performs a full login: TCP, TLS, SASL, bind, (session), roster get,
// initial presence. It leaves the connection ready for readLoop.
func (c *client) login(ctx context.Context) error {
	f, err := c.connectSecure(ctx)
	if err != nil {
		return err
	}
	if f, err = c.authenticate(f); err != nil {
		return err
	}
	if f.Bind == nil {
		return kindErr("bind", errors.New("no bind feature"))
	}
	res, err := c.iq("bind1", "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>"+c.r.cfg.Resource+"</resource></bind>", "set")
	if err != nil {
		return kindErr("bind", err)
	}
	c.jid = string(childText(res, "jid"))
	if c.jid == "" {
		return kindErr("bind", errors.New("no jid in bind result"))
	}
	// RFC 3921 session establishment only when the server says it is
	// required (RFC 6121 dropped it; servers mark it <optional/>).
	if f.Session != nil && f.Session.Optional == nil {
		if _, err := c.iq("sess1", "<session xmlns='urn:ietf:params:xml:ns:xmpp-session'/>", "set"); err != nil {
			return kindErr("session", err)
		}
	}
	if c.r.cfg.SM {
		if err := c.enableSM(f); err != nil {
			return err
		}
	}
	roster, err := c.iq("roster1", "<query xmlns='jabber:iq:roster'/>", "get")
	if err != nil {
		return kindErr("roster", err)
	}
	c.rosterItems = bytes.Count(roster, []byte("<item "))
	c.mutual = mutualContacts(roster)
	c.rosterBoth = len(c.mutual)
	if err := c.loginWrite([]byte("<presence/>"), true); err != nil {
		return err
	}
	_ = c.nc.SetDeadline(time.Time{})
	return nil
}

// authenticate runs SASL on a secured stream with features f and returns
// the features of the restarted stream.
func (c *client) authenticate(f streamFeatures) (streamFeatures, error) {
	mech, err := chooseMech(c.r.cfg.Mech, f.Mechs)
	if err != nil {
		return f, kindErr("sasl-mech", err)
	}
	sc := &saslClient{mech: mech, user: c.user, password: c.r.password(c.idx), cache: &c.r.salts}
	init := base64.StdEncoding.EncodeToString(sc.initial())
	if _, err := c.nc.Write([]byte("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='" + mech.name + "'>" + init + "</auth>")); err != nil {
		return f, kindErr("write", err)
	}
	for done := false; !done; {
		ev, el, err := c.sc.next()
		if err != nil {
			return f, kindErr("read", err)
		}
		if ev != evElement {
			return f, kindErr("sasl", errors.New("stream ended during SASL"))
		}
		payload, _ := base64.StdEncoding.DecodeString(string(elementText(el)))
		switch string(localName(elemName(el))) {
		case "challenge":
			resp, err := sc.challenge(payload)
			if err != nil {
				return f, kindErr("sasl", err)
			}
			if _, err := c.nc.Write([]byte("<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>" + base64.StdEncoding.EncodeToString(resp) + "</response>")); err != nil {
				return f, kindErr("write", err)
			}
		case "success":
			if err := sc.verify(payload); err != nil {
				return f, kindErr("sasl", err)
			}
			done = true
		case "failure":
			return f, kindErr("sasl:"+firstChildName(el), nil)
		case "error":
			return f, kindErr("stream-error:"+firstChildName(el), nil)
		}
	}
	c.sc.reset(c.nc)
	el, err := c.openStream()
	if err != nil {
		return f, err
	}
	return parseFeatures(el)
}

// readLoop processes stanzas until the stream or connection ends.
func (c *client) readLoop() error {
	c.sc.beforeFill = c.flushPending
	defer func() { c.sc.beforeFill = nil }()
	for {
		ev, el, err := c.sc.next()
		if err != nil {
			if c.r.stopping.Load() {
				return nil
			}
			return kindErr("read", err)
		}
		switch ev {
		case evStreamClose:
			return nil
		case evElement:
			c.handle(el)
		}
	}
}

var (
	nameMessage  = []byte("message")
	namePresence = []byte("presence")
	nameIQ       = []byte("iq")
	payloadMark  = []byte("xl1 ")
)

func (c *client) handle(el []byte) {
	name := elemName(el)
	if c.sm.on {
		if isStanza(name) {
			c.sm.in.Add(1)
		} else if isSMNonza(el) {
			c.onSMNonza(el, false)
			return
		}
	}
	switch {
	case bytes.Equal(name, nameMessage):
		c.r.stats.msgStanzas.Add(1)
		if bytes.Equal(attr(el, "type"), []byte("error")) {
			c.r.addError("message-error:" + stanzaErrorCondition(el))
			return
		}
		c.onMessage(el)
	case bytes.Equal(name, namePresence):
		c.r.onPresence(c, el)
	case bytes.Equal(name, nameIQ):
		typ := string(attr(el, "type"))
		if typ == "get" || typ == "set" {
			c.answerIQ(el, typ)
		}
		if c.muc != nil && typ == "result" && bytes.Equal(attr(el, "id"), []byte("xlinst")) {
			c.muc.unlocked.Store(true)
		}
	default:
		if bytes.HasPrefix(name, []byte("stream:error")) || bytes.Equal(localName(name), []byte("error")) {
			c.r.addError("stream-error:" + firstChildName(el))
		}
	}
}

// answerIQ replies to server-initiated IQs: XEP-0199 ping gets a result,
// anything else service-unavailable (RFC 6120 §8.2.3: IQ get/set must be
// answered).
func (c *client) answerIQ(el []byte, typ string) {
	id := string(attr(el, "id"))
	from := string(attr(el, "from"))
	to := ""
	if from != "" {
		to = " to='" + from + "'"
	}
	// Roster pushes (RFC 6121 §2.1.6) are acknowledged, pings answered.
	if (typ == "get" && bytes.Contains(el, []byte("urn:xmpp:ping"))) ||
		(typ == "set" && bytes.Contains(el, []byte("jabber:iq:roster"))) {
		if typ == "set" {
			c.r.subTraffic.Add(1) // the roster setup waits until these stop too
		}
		c.queueStanzas([]byte("<iq type='result' id='" + id + "'" + to + "/>"))
		return
	}
	c.queueStanzas([]byte("<iq type='error' id='" + id + "'" + to + "><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"))
}

// onMessage accounts one chat message: payload "xl1 RUN FROM SEQ TS".
func (c *client) onMessage(el []byte) {
	i := bytes.Index(el, payloadMark)
	if i < 0 && c.muc != nil {
		return // the room's subject and status messages
	}
	if i < 0 {
		c.r.addError("message-foreign")
		return
	}
	f, ok := parsePayload(el[i+len(payloadMark):])
	if !ok {
		c.r.addError("message-malformed")
		return
	}
	if f.run != c.r.runID {
		c.r.stats.stale.Add(1) // e.g. offline messages from an earlier run
		return
	}
	if c.muc != nil {
		c.onGroupchat(f)
		return
	}
	fl := c.inFlow.Load()
	if fl == nil || int(f.from) != fl.from.idx {
		c.r.addError("message-unexpected-sender")
		return
	}
	c.r.msgLatency.Record(c.r.now() - f.ts)
	// XEP-0198 §5 and RFC 6121 §8.5: what a server sends again is marked with
	// an XEP-0203 delay; receiving such a message twice is allowed.
	resent := bytes.Contains(el, delayMark)
	if resent {
		c.r.stats.resent.Add(1)
	}
	switch c.track.observe(f.seq) {
	case seqDuplicate:
		if resent {
			c.r.stats.smDups.Add(1)
		} else {
			c.r.stats.dups.Add(1)
		}
		return
	case seqOutOfOrder:
		c.r.stats.ooo.Add(1)
	}
	c.r.stats.received.Add(1)
	if fl.inflight.Add(-1) >= 0 && c.r.chatting.Load() && c.r.cfg.Rate == 0 {
		// Closed loop: each delivery lets the sender put one more in flight.
		c.pending++
	}
}

// flushPending sends the messages earned during the last batch of reads on
// the peer's connection, in one write.
func (c *client) flushPending() {
	fl := c.inFlow.Load()
	if c.pending == 0 || fl == nil {
		return
	}
	n := c.pending
	c.pending = 0
	fl.send(n)
}

type payload struct {
	run  uint64
	from uint64
	seq  uint64
	ts   int64
}

// parsePayload reads "RUN FROM SEQ TS" (decimal, space separated).
func parsePayload(b []byte) (payload, bool) {
	var v [4]uint64
	for k := 0; k < 4; k++ {
		n, j := uint64(0), 0
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			n = n*10 + uint64(b[j]-'0')
			j++
		}
		if j == 0 {
			return payload{}, false
		}
		v[k] = n
		b = b[j:]
		if k < 3 {
			if len(b) == 0 || b[0] != ' ' {
				return payload{}, false
			}
			b = b[1:]
		}
	}
	return payload{run: v[0], from: v[1], seq: v[2], ts: int64(v[3])}, true
}

// queue appends raw bytes and writes them unless another goroutine is
// already writing on this connection (it will pick them up).
func (c *client) queue(b []byte) {
	c.wmu.Lock()
	c.out = append(c.out, b...)
	c.flushLocked()
}

// flushLocked writes c.out; called with wmu held, returns with it released.
func (c *client) flushLocked() {
	if c.flushing {
		c.wmu.Unlock()
		return
	}
	c.flushing = true
	for len(c.out) > 0 && c.werr == nil {
		if c.sm.down {
			// Dropped on purpose: what was queued is in the stream management
			// log and goes out again after the resumption.
			c.out = c.out[:0]
			break
		}
		buf, nc := c.out, c.nc
		c.out = c.spare[:0]
		c.wmu.Unlock()
		_ = nc.SetWriteDeadline(time.Now().Add(c.r.cfg.WriteTimeout))
		_, err := nc.Write(buf)
		c.wmu.Lock()
		c.spare = buf[:0]
		if err != nil && !c.sm.down {
			c.werr = err
			c.out = c.out[:0]
			c.r.addError(errorKind(kindErr("write", err)))
		}
	}
	c.flushing = false
	c.wmu.Unlock()
}

// closeStream sends the closing tag (RFC 6120 §4.4); readLoop then sees the
// server's close and returns.
func (c *client) setInFlow(f *flow) { c.inFlow.Store(f) }

func (c *client) closeStream() {
	c.wmu.Lock()
	if c.sm.on {
		// An <a/> may go at any time (XEP-0198 §4): right before the close it
		// tells the server we have everything, so that it does not treat what
		// we received since the last one as undelivered and send it again
		// (to another resource or to offline storage).
		c.out = append(c.out, c.smAck()...)
	}
	c.out = append(c.out, "</stream:stream>"...)
	c.flushLocked()
}

// flow is the one-way message stream from one client to another.
type flow struct {
	from, to *client
	toJID    string
	seq      uint64        // last sequence number used; guarded by from.wmu
	inflight atomic.Int64  // sent and not yet received
	sentAt   atomic.Uint64 // number sent (for rate pacing)
	phase    float64       // with Stagger: the share of a period this flow runs ahead, in [0, 1)
}

// send appends n chat messages to the sender's buffer and writes them.
func (f *flow) send(n int) {
	if n <= 0 {
		return
	}
	c := f.from
	r := c.r
	c.wmu.Lock()
	if c.werr != nil || c.sm.relogin {
		c.wmu.Unlock()
		return
	}
	ts := r.now()
	for i := 0; i < n; i++ {
		f.seq++
		start := len(c.out)
		c.out = append(c.out, "<message type='chat' to='"...)
		c.out = append(c.out, f.toJID...)
		c.out = append(c.out, "'><body>xl1 "...)
		c.out = strconv.AppendUint(c.out, r.runID, 10)
		c.out = append(c.out, ' ')
		c.out = strconv.AppendInt(c.out, int64(c.idx), 10)
		c.out = append(c.out, ' ')
		c.out = strconv.AppendUint(c.out, f.seq, 10)
		c.out = append(c.out, ' ')
		c.out = strconv.AppendInt(c.out, ts, 10)
		c.out = append(c.out, r.pad...)
		c.out = append(c.out, "</body></message>"...)
		c.noteStanzaLocked(start)
	}
	f.inflight.Add(int64(n))
	f.sentAt.Add(uint64(n))
	r.stats.sent.Add(uint64(n))
	c.flushLocked()
}

// Small helpers on raw elements.

func localName(qn []byte) []byte {
	if i := bytes.IndexByte(qn, ':'); i >= 0 {
		return qn[i+1:]
	}
	return qn
}

// elementText returns the raw text between the start and end tag of a
// simple element such as <challenge>…</challenge>.
func elementText(el []byte) []byte {
	s, self := tagEnd(el)
	if s < 0 || self {
		return nil
	}
	e := bytes.LastIndexByte(el, '<')
	if e <= s {
		return nil
	}
	return el[s+1 : e]
}

// childText returns the text of the first descendant <name>…</name>.
func childText(el []byte, name string) []byte {
	open := []byte("<" + name)
	for off := 0; ; {
		i := bytes.Index(el[off:], open)
		if i < 0 {
			return nil
		}
		i += off
		rest := el[i+len(open):]
		if len(rest) > 0 && (rest[0] == '>' || rest[0] == ' ') {
			s, self := tagEnd(el[i:])
			if s < 0 || self {
				return nil
			}
			body := el[i+s+1:]
			e := bytes.Index(body, []byte("</"+name+">"))
			if e < 0 {
				return nil
			}
			return body[:e]
		}
		off = i + len(open)
	}
}

// firstChildName returns the local name of the first child element, which
// for SASL failures and stream errors is the defined condition.
func firstChildName(el []byte) string {
	s, self := tagEnd(el)
	if s < 0 || self {
		return "unknown"
	}
	rest := el[s+1:]
	i := bytes.IndexByte(rest, '<')
	if i < 0 || i+1 >= len(rest) || rest[i+1] == '/' {
		return "unknown"
	}
	return string(localName(elemName(rest[i:])))
}

// stanzaErrorCondition finds the defined condition inside <error/>.
func stanzaErrorCondition(el []byte) string {
	i := bytes.Index(el, []byte("<error"))
	if i < 0 {
		return "unknown"
	}
	return firstChildName(el[i:])
}

func xmlEscape(s string) string {
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// clientTLS is the TLS configuration of c's connections: the runner's, or with -tls-resume a copy with a session
// cache of c's own, so that c's next connection resumes the TLS session its last one got a ticket for.
func (c *client) clientTLS() *tls.Config {
	if !c.r.cfg.TLSResume {
		return c.r.tlsConfig
	}
	if c.tls == nil {
		c.tls = c.r.tlsConfig.Clone()
		c.tls.ClientSessionCache = tls.NewLRUClientSessionCache(1)
	}
	return c.tls
}

// handshook counts a TLS handshake that resumed a session.
func (c *client) handshook(tc *tls.Conn) {
	if tc.ConnectionState().DidResume {
		c.r.stats.tlsResumed.Add(1)
	}
}

// mutualContacts returns the bare JIDs of a roster result's items with
// subscription 'both' (RFC 6121 §2.1.2.5), quoted either way.
func mutualContacts(roster []byte) map[string]bool {
	out := map[string]bool{}
	for {
		i := bytes.Index(roster, []byte("<item "))
		if i < 0 {
			return out
		}
		roster = roster[i:]
		if string(attr(roster, "subscription")) == "both" {
			out[string(attr(roster, "jid"))] = true
		}
		roster = roster[len("<item "):]
	}
}
