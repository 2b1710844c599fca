// Package dialback is XEP-0220 server dialback: the XEP-0185 key and the elements of the protocol. Pure.
package dialback

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"github.com/xmppd/xmppd/protocol/xmlstream"
)

const (
	// NS is the namespace of <db:result/> and <db:verify/> (XEP-0220 §2.1), declared on the stream header.
	NS = "jabber:server:dialback"
	// NSFeature is the stream feature that says dialback is offered (XEP-0220 §2.1.1, "urn:xmpp:features:dialback").
	NSFeature = "urn:xmpp:features:dialback"
	// Feature is that feature as a child of <stream:features/>, with <errors/> (XEP-0220 §2.4: errors are understood).
	Feature = "<dialback xmlns='" + NSFeature + "'><errors/></dialback>"
)

// Key is the XEP-0185 §3 dialback key: HMAC-SHA256, keyed with the hex SHA-256 of the secret, of
// "Receiving Server" SP "Originating Server" SP "Stream ID", in lower-case hex.
func Key(secret []byte, receiving, originating, streamID string) string {
	k := sha256.Sum256(secret)
	mac := hmac.New(sha256.New, []byte(hex.EncodeToString(k[:])))
	mac.Write([]byte(receiving + " " + originating + " " + streamID))
	return hex.EncodeToString(mac.Sum(nil))
}

// Valid compares a received key with the expected one in constant time.
func Valid(secret []byte, receiving, originating, streamID, key string) bool {
	return hmac.Equal([]byte(Key(secret, receiving, originating, streamID)), []byte(strings.TrimSpace(key)))
}

func elem(name, from, to, id, typ, text string) string {
	var b []byte
	b = append(b, "<db:"+name+" xmlns:db='"+NS+"' from='"...)
	b = xmlstream.AppendEscapedAttr(b, from)
	b = append(b, "' to='"...)
	b = xmlstream.AppendEscapedAttr(b, to)
	b = append(b, '\'')
	if id != "" {
		b = append(b, " id='"...)
		b = xmlstream.AppendEscapedAttr(b, id)
		b = append(b, '\'')
	}
	if typ != "" {
		b = append(b, " type='"...)
		b = xmlstream.AppendEscapedAttr(b, typ)
		b = append(b, '\'')
	}
	if text == "" {
		return string(append(b, "/>"...))
	}
	b = append(b, '>')
	b = xmlstream.AppendEscapedText(b, text)
	return string(append(b, "</db:"+name+">"...))
}

// Result is the originating server's <db:result/> carrying its key (XEP-0220 §2.1.1).
func Result(from, to, key string) string { return elem("result", from, to, "", "", key) }

// ResultType is the receiving server's answer to it: typ "valid" or "invalid" (§2.1.3).
func ResultType(from, to, typ string) string { return elem("result", from, to, "", typ, "") }

// ResultError is the answer when the receiving server cannot verify (§2.4): a stanza error inside db:result.
func ResultError(from, to, condition string) string {
	return "<db:result xmlns:db='" + NS + "' from='" + string(xmlstream.AppendEscapedAttr(nil, from)) + "' to='" +
		string(xmlstream.AppendEscapedAttr(nil, to)) + "' type='error'><error type='cancel'><" + condition +
		" xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></db:result>"
}

// Verify is the receiving server's question to the authoritative server (§2.1.2): from is the receiving server,
// to the originating one, id the stream id of the stream the key came on.
func Verify(from, to, id, key string) string { return elem("verify", from, to, id, "", key) }

// VerifyType is the authoritative server's answer: typ "valid" or "invalid" (§2.1.2).
func VerifyType(from, to, id, typ string) string { return elem("verify", from, to, id, typ, "") }
