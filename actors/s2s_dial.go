package actors

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/xmppd/xmppd/protocol/dialback"
	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/protocol/stream"
	"github.com/xmppd/xmppd/protocol/xmlstream"
)

// The initiating side of a server-to-server stream (RFC 6120 §4–§6, XEP-0220), as blocking code: it runs on a
// goroutine of its own that owns the socket until the stream is authenticated (or has failed), and then hands
// socket and decoder to the outgoing actor (s2s_out.go). Nothing here touches an actor's state.

// errNotFound: the remote domain does not resolve (no route, no SRV, no address): <remote-server-not-found/>.
var errNotFound = errors.New("remote domain not found")

// s2sStream is an outgoing stream being negotiated: the socket, the decoder reading the peer, the peer's stream
// id of the current stream and its last <stream:features/>.
type s2sStream struct {
	conn     net.Conn
	dec      *xmlstream.Decoder
	local    string // our domain, the 'from' of our header
	remote   string
	id       string
	features *xmlstream.Node
	tls      bool
	verified bool   // the peer's certificate is valid for remote (RFC 6125)
	mech     string // how we authenticated: "EXTERNAL" or "dialback"
	// XEP-0198 (s2s_sm.go): enabled, the resumable session's id, and whether it resumed the previous one
	// having handled resumedH stanzas of it.
	smOn     bool
	smID     string
	resumed  bool
	resumedH uint32
}

// s2sTarget is one address to try, with whether it expects TLS at once (XEP-0368 _xmpps-server).
type s2sTarget struct {
	addr   string
	direct bool
}

// resolveS2S lists where remote is served: the static route, else DNS SRV (_xmpps-server._tcp first, XEP-0368;
// then _xmpp-server._tcp, RFC 6120 §3.2.1), else the domain's A/AAAA records on 5269 (§3.2.2).
func (e *env) resolveS2S(ctx context.Context, remote string) ([]s2sTarget, error) {
	if hp, ok := e.cfg.S2S.Routes[remote]; ok {
		return []s2sTarget{{addr: hp}}, nil
	}
	var r net.Resolver
	var out []s2sTarget
	for _, svc := range []struct {
		name   string
		direct bool
	}{{"xmpps-server", true}, {"xmpp-server", false}} {
		_, srvs, err := r.LookupSRV(ctx, svc.name, "tcp", remote)
		if err != nil {
			continue
		}
		for _, s := range srvs {
			if s.Target == "." {
				continue // RFC 2782: the service is decidedly not available here
			}
			out = append(out, s2sTarget{addr: net.JoinHostPort(strings.TrimSuffix(s.Target, "."), strconv.Itoa(int(s.Port))), direct: svc.direct})
		}
	}
	if len(out) > 0 {
		return out, nil
	}
	if _, err := r.LookupHost(ctx, remote); err != nil {
		var de *net.DNSError
		if errors.As(err, &de) && de.IsNotFound {
			return nil, errNotFound
		}
		return nil, err
	}
	return []s2sTarget{{addr: net.JoinHostPort(remote, "5269")}}, nil
}

// clientTLS is the TLS configuration of our side of an outgoing stream: our certificate (for SASL EXTERNAL),
// the peer's checked against the trusted roots by verifyPeer rather than by crypto/tls, so that an unverified
// certificate can still carry dialback when secure_auth is off.
func (e *env) clientTLS(remote string) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		ServerName: remote,
		NextProtos: []string{"xmpp-server"},
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return e.certs.cert.Load(), nil
		},
		InsecureSkipVerify: true, // verified below, by verifyPeer, for the domain of the stream
	}
}

// verifyPeer reports whether the chain a peer presented is valid for domain (RFC 6120 §13.7.2, RFC 6125).
func (e *env) verifyPeer(certs []*x509.Certificate, domain string) bool {
	if len(certs) == 0 {
		return false
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	_, err := certs[0].Verify(x509.VerifyOptions{DNSName: domain, Roots: e.s2sRoots, Intermediates: inter,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	return err == nil
}

// loadS2SRoots reads [s2s] ca_file, or returns nil (the system roots).
func loadS2SRoots(path string) (*x509.CertPool, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("s2s.ca_file: %w", err)
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("s2s.ca_file %s: no PEM certificate", path)
	}
	return p, nil
}

// openS2S connects to remote and negotiates up to authentication: TCP (or direct TLS), our header, the peer's
// header and features, STARTTLS and the restart. deadline bounds the whole exchange.
func (e *env) openS2S(ctx context.Context, local, remote string, deadline time.Time) (*s2sStream, error) {
	targets, err := e.resolveS2S(ctx, remote)
	if err != nil {
		return nil, err
	}
	var last error
	for _, t := range targets {
		s, err := e.openTarget(ctx, t, local, remote, deadline)
		if err == nil {
			return s, nil
		}
		last = err
	}
	return nil, last
}

func (e *env) openTarget(ctx context.Context, t s2sTarget, local, remote string, deadline time.Time) (*s2sStream, error) {
	d := net.Dialer{Deadline: deadline}
	c, err := d.DialContext(ctx, "tcp", t.addr)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(deadline)
	s := &s2sStream{conn: c, local: local, remote: remote}
	if t.direct {
		tc := tls.Client(c, e.clientTLS(remote))
		if err := tc.HandshakeContext(ctx); err != nil {
			c.Close()
			return nil, err
		}
		s.conn, s.tls = tc, true
		s.verified = e.verifyPeer(tc.ConnectionState().PeerCertificates, remote)
	}
	s.dec = xmlstream.NewDecoder(s.conn, e.cfg.C2S.MaxStanzaSize)
	if err := s.restart(); err != nil {
		c.Close()
		return nil, err
	}
	if !s.tls {
		if s.features.Child(stanza.NSTLS, "starttls") == nil {
			if e.cfg.S2S.RequireEncryption {
				c.Close()
				return nil, errors.New("the peer does not offer STARTTLS and s2s.require_encryption is set")
			}
		} else if err := s.startTLS(e); err != nil {
			c.Close()
			return nil, err
		}
	}
	if e.cfg.S2S.SecureAuth && !s.verified {
		s.conn.Close()
		return nil, errors.New("the peer's certificate is not valid for " + remote + " and s2s.secure_auth is set")
	}
	return s, nil
}

// restart sends our stream header and reads the peer's header and features (RFC 6120 §4.2, §4.3).
func (s *s2sStream) restart() error {
	if _, err := s.conn.Write(stream.AppendServerHeader(nil, "", s.local, s.remote)); err != nil {
		return err
	}
	k, err := s.dec.Next()
	if err != nil {
		return err
	}
	if k != xmlstream.KindStreamStart {
		return errors.New("no stream header from the peer")
	}
	h := s.dec.Header()
	if h.DefaultNS != stream.NSServer {
		return errors.New("the peer's stream is not jabber:server")
	}
	s.id = h.ID
	n, err := s.next()
	if err != nil {
		return err
	}
	if n.Name.Space != stream.NS || n.Name.Local != "features" {
		return fmt.Errorf("expected stream features, got <%s/>", n.Name.Local)
	}
	s.features = n
	return nil
}

// next reads the next element (whitespace skipped); a stream error or the end of the stream is an error.
func (s *s2sStream) next() (*xmlstream.Node, error) {
	for {
		k, err := s.dec.Next()
		if err != nil {
			return nil, err
		}
		switch k {
		case xmlstream.KindWhitespace:
			continue
		case xmlstream.KindStreamEnd:
			return nil, errors.New("the peer closed the stream")
		case xmlstream.KindStreamStart:
			return nil, errors.New("unexpected stream header")
		}
		n, err := s.dec.Element().Parse()
		if err != nil {
			return nil, err
		}
		if n.Name.Space == stream.NS && n.Name.Local == "error" {
			cond := "undefined-condition"
			if c := n.FirstElement(); c != nil {
				cond = c.Name.Local
			}
			return nil, fmt.Errorf("stream error from the peer: %s", cond)
		}
		return n, nil
	}
}

func (s *s2sStream) startTLS(e *env) error {
	if _, err := s.conn.Write([]byte("<starttls xmlns='" + stanza.NSTLS + "'/>")); err != nil {
		return err
	}
	n, err := s.next()
	if err != nil {
		return err
	}
	if n.Name.Local != "proceed" {
		return errors.New("STARTTLS refused by the peer")
	}
	tc := tls.Client(s.conn, e.clientTLS(s.remote))
	if err := tc.Handshake(); err != nil {
		return err
	}
	s.conn, s.tls = tc, true
	s.verified = e.verifyPeer(tc.ConnectionState().PeerCertificates, s.remote)
	s.dec.Reset(tc)
	return s.restart() // RFC 6120 §5.4.3.3
}

// authenticate proves we are local: SASL EXTERNAL when the peer offers it (RFC 6120 §6, offered only when it
// accepts our certificate), else dialback (XEP-0220 §2.1) unless allow_dialback is off.
func (e *env) authenticate(s *s2sStream) error {
	if mechs := s.features.Child(stanza.NSSASL, "mechanisms"); mechs != nil && s.tls {
		for _, m := range mechs.ChildrenNamed(stanza.NSSASL, "mechanism") {
			if strings.TrimSpace(m.TextContent()) != "EXTERNAL" {
				continue
			}
			err := s.external()
			if err == nil {
				s.mech = "EXTERNAL"
				return nil
			}
			if !e.cfg.S2S.AllowDialback {
				return err
			}
			// RFC 6120 §6.4.5: after a failure the stream goes on; dialback may still work.
			break
		}
	}
	if !e.cfg.S2S.AllowDialback {
		return errors.New("the peer does not offer SASL EXTERNAL and s2s.allow_dialback is off")
	}
	key := dialback.Key(e.s2sSecret, s.remote, s.local, s.id)
	if _, err := s.conn.Write([]byte(dialback.Result(s.local, s.remote, key))); err != nil {
		return err
	}
	for {
		n, err := s.next()
		if err != nil {
			return err
		}
		if n.Name.Space != dialback.NS || n.Name.Local != "result" {
			continue
		}
		switch n.Attr("type") {
		case "valid":
			s.mech = "dialback"
			return nil
		case "invalid":
			return errors.New("the peer says our dialback key is invalid")
		default:
			return errors.New("dialback failed at the peer")
		}
	}
}

func (s *s2sStream) external() error {
	auth := "<auth xmlns='" + stanza.NSSASL + "' mechanism='EXTERNAL'>" + base64.StdEncoding.EncodeToString([]byte(s.local)) + "</auth>"
	if _, err := s.conn.Write([]byte(auth)); err != nil {
		return err
	}
	n, err := s.next()
	if err != nil {
		return err
	}
	if n.Name.Space != stanza.NSSASL || n.Name.Local != "success" {
		return errors.New("SASL EXTERNAL refused")
	}
	return s.restart() // RFC 6120 §6.4.6
}

// verifyDialback is the receiving side's question to the authoritative server of originating (XEP-0220 §2.1.2),
// on a connection of its own: is key the one originating gave for (receiving, originating, id)?
func (e *env) verifyDialback(ctx context.Context, receiving, originating, id, key string, deadline time.Time) (bool, error) {
	s, err := e.openS2S(ctx, receiving, originating, deadline)
	if err != nil {
		return false, err
	}
	defer s.conn.Close()
	if _, err := s.conn.Write([]byte(dialback.Verify(receiving, originating, id, key))); err != nil {
		return false, err
	}
	for {
		n, err := s.next()
		if err != nil {
			return false, err
		}
		if n.Name.Space == dialback.NS && n.Name.Local == "verify" && n.Attr("id") == id {
			_, _ = s.conn.Write([]byte(stream.Close))
			return n.Attr("type") == "valid", nil
		}
	}
}
