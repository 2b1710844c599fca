package sasl

import (
	"crypto"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
)

// Mechanism describes one SASL mechanism the server implements.
type Mechanism struct {
	Name  string
	Hash  Hash // SCRAM only
	Plus  bool // SCRAM with channel binding
	Plain bool // PLAIN (RFC 4616)
}

// Channel binding type names (RFC 5056 registry).
const (
	CBTLSExporter       = "tls-exporter"         // RFC 9266
	CBTLSUnique         = "tls-unique"           // RFC 5929 §3; TLS 1.2 and earlier only (RFC 8446 §C.5, RFC 9266)
	CBTLSServerEndPoint = "tls-server-end-point" // RFC 5929 §4
)

// NSChannelBinding is the namespace of the XEP-0440 stream feature
// <sasl-channel-binding/>, which lists the channel binding types of
// ChannelBinding.Types before authentication.
const NSChannelBinding = "urn:xmpp:sasl-cb:0"

// mechanisms in preference order, strongest first. -PLUS variants come
// before all plain SCRAM variants because channel binding defeats a MITM
// that holds a trusted certificate, which a stronger hash does not.
var mechanisms = []Mechanism{
	{Name: "SCRAM-SHA-512-PLUS", Hash: SHA512, Plus: true},
	{Name: "SCRAM-SHA-256-PLUS", Hash: SHA256, Plus: true},
	{Name: "SCRAM-SHA-1-PLUS", Hash: SHA1, Plus: true},
	{Name: "SCRAM-SHA-512", Hash: SHA512},
	{Name: "SCRAM-SHA-256", Hash: SHA256},
	{Name: "SCRAM-SHA-1", Hash: SHA1},
	{Name: "PLAIN", Plain: true},
}

// Lookup returns the mechanism with the given name. Names are matched
// exactly: RFC 4422 §3.1 mechanism names are upper case.
func Lookup(name string) (Mechanism, bool) {
	for _, m := range mechanisms {
		if m.Name == name {
			return m, true
		}
	}
	return Mechanism{}, false
}

// Offered lists mechanism names in preference order. -PLUS mechanisms are
// offered only when the connection has at least one channel binding type
// (cbTypes, usually ChannelBinding.Types()), PLAIN only when allowPlain
// (the caller allows it only over TLS, RFC 6120 §13.8.3 / RFC 4616 §6).
//
// Whether -PLUS is offered must not depend on anything a man in the middle
// can choose on its own TLS connection to us (TLS version, extended master
// secret, resumption): it would pick the variant without -PLUS and relay a
// client's "y" exchange, which we would then have to accept (RFC 5802 §6).
// ChannelBinding.Types is never empty on TLS with the default certificate:
// tls-exporter or tls-unique covers every full handshake and
// tls-server-end-point every connection. See docs/channel-binding.md.
func Offered(cbTypes []string, allowPlain bool) []string {
	out := make([]string, 0, len(mechanisms))
	for _, m := range mechanisms {
		if (m.Plus && len(cbTypes) == 0) || (m.Plain && !allowPlain) {
			continue
		}
		out = append(out, m.Name)
	}
	return out
}

// ChannelBinding carries the channel binding data of this TLS connection.
// A nil field means the type is unavailable.
type ChannelBinding struct {
	// Exporter is the tls-exporter data (RFC 9266 §2): 32 bytes exported
	// with label "EXPORTER-Channel-Binding" and no context. Only defined for
	// TLS 1.3, or TLS 1.2 with the extended master secret extension.
	Exporter []byte
	// Unique is the tls-unique data (RFC 5929 §3.1): the first Finished
	// message of the handshake. Only defined for TLS 1.2 and earlier; nil on
	// TLS 1.3 (RFC 8446 §C.5) and on resumed TLS 1.2 sessions without
	// extended master secret (RFC 7627, the triple handshake attack).
	Unique []byte
	// EndPoint is the tls-server-end-point data (RFC 5929 §4.1): the hash
	// of the server's certificate.
	EndPoint []byte
}

// Types returns the available channel binding types, preferred first. The
// caller advertises them with XEP-0440 <sasl-channel-binding/>.
func (cb ChannelBinding) Types() []string {
	var t []string
	if len(cb.Exporter) > 0 {
		t = append(t, CBTLSExporter)
	}
	if len(cb.Unique) > 0 {
		t = append(t, CBTLSUnique)
	}
	if len(cb.EndPoint) > 0 {
		t = append(t, CBTLSServerEndPoint)
	}
	return t
}

// data returns the binding data for a channel binding type, or nil.
func (cb ChannelBinding) data(typ string) []byte {
	switch typ {
	case CBTLSExporter:
		return cb.Exporter
	case CBTLSUnique:
		return cb.Unique
	case CBTLSServerEndPoint:
		return cb.EndPoint
	}
	return nil
}

// exporterLabel and exporterLen are fixed by RFC 9266 §2.
const (
	exporterLabel = "EXPORTER-Channel-Binding"
	exporterLen   = 32
)

// TLSChannelBinding extracts the channel binding data from the server side
// of a completed TLS handshake. cert is the leaf certificate the server
// presented (crypto/tls does not record it in ConnectionState on the server
// side); it may be nil, which leaves EndPoint nil.
func TLSChannelBinding(cs *tls.ConnectionState, cert *x509.Certificate) ChannelBinding {
	var cb ChannelBinding
	if cs != nil && cs.HandshakeComplete {
		// crypto/tls refuses to export for TLS 1.2 without extended master
		// secret, which is exactly the RFC 9266 §3 condition.
		if ekm, err := cs.ExportKeyingMaterial(exporterLabel, nil, exporterLen); err == nil {
			cb.Exporter = ekm
		}
		// crypto/tls leaves TLSUnique nil on TLS 1.3 and on resumed sessions
		// without extended master secret; the version check only makes the
		// RFC 8446 §C.5 rule explicit.
		if cs.Version <= tls.VersionTLS12 && len(cs.TLSUnique) > 0 {
			cb.Unique = append([]byte(nil), cs.TLSUnique...)
		}
	}
	if cert != nil {
		cb.EndPoint = TLSServerEndPoint(cert)
	}
	return cb
}

// TLSServerEndPoint computes the tls-server-end-point binding of cert (RFC
// 5929 §4.1): the certificate hashed with the hash of its signature
// algorithm, where MD5 and SHA-1 are replaced by SHA-256. It returns nil for
// algorithms with no single associated hash (e.g. Ed25519), for which the
// binding is undefined.
func TLSServerEndPoint(cert *x509.Certificate) []byte {
	var h crypto.Hash
	switch cert.SignatureAlgorithm {
	case x509.MD5WithRSA, x509.SHA1WithRSA, x509.ECDSAWithSHA1, x509.DSAWithSHA1,
		x509.SHA256WithRSA, x509.SHA256WithRSAPSS, x509.ECDSAWithSHA256, x509.DSAWithSHA256:
		h = crypto.SHA256
	case x509.SHA384WithRSA, x509.SHA384WithRSAPSS, x509.ECDSAWithSHA384:
		h = crypto.SHA384
	case x509.SHA512WithRSA, x509.SHA512WithRSAPSS, x509.ECDSAWithSHA512:
		h = crypto.SHA512
	default:
		return nil
	}
	if h == crypto.SHA256 {
		s := sha256.Sum256(cert.Raw)
		return s[:]
	}
	d := h.New()
	d.Write(cert.Raw)
	return d.Sum(nil)
}
