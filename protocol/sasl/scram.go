package sasl

import (
	"bytes"
	"crypto/subtle"
	"encoding/base64"
	"io"
	"strconv"
	"unicode/utf8"

	"golang.org/x/text/secure/precis"
)

// serverNonceLen is the number of random bytes in the server nonce; base64
// makes it 32 printable characters without ','.
const serverNonceLen = 24

// maxMessageLen bounds each client message. RFC 6120 does not fix a limit
// for SASL data, but nothing legitimate comes close: usernames and authzids
// are JID parts (≤ 3071 bytes), nonces are short.
const maxMessageLen = 8192

// SCRAM step states.
const (
	stepClientFirst = iota // waiting for ClientFirst
	stepServerFirst        // waiting for ServerFirst
	stepClientFinal        // waiting for ClientFinal
	stepDone               // succeeded or failed; no further calls allowed
)

// SCRAM is the server state of one SCRAM exchange (RFC 5802 §5). Call
// ClientFirst, then ServerFirst, then ClientFinal; any error ends the
// exchange. Not safe for concurrent use; one per connection actor.
type SCRAM struct {
	mech           Mechanism
	cb             ChannelBinding
	plusAdvertised bool

	step            int
	gs2Header       []byte // as sent, including the trailing ','
	cbData          []byte // channel binding data for the chosen type
	clientFirstBare []byte
	clientNonce     []byte
	serverFirst     []byte
	nonce           []byte // clientNonce + serverNonce
	creds           Credentials
	ssdp            string // XEP-0474 h= for server-first ("" none); see SetDowngradeHash
}

// NewSCRAM starts a server exchange for mechanism m (which must be a SCRAM
// mechanism) on a connection with channel binding data cb. plusAdvertised
// tells whether this server offered any -PLUS mechanism on this stream; it
// is what detects the downgrade in RFC 5802 §6.
func NewSCRAM(m Mechanism, cb ChannelBinding, plusAdvertised bool) *SCRAM {
	return &SCRAM{mech: m, cb: cb, plusAdvertised: plusAdvertised}
}

// Mechanism returns the mechanism of the exchange.
func (s *SCRAM) Mechanism() Mechanism { return s.mech }

// ChannelBindingType returns the channel binding type the client chose, or
// "" when it chose none.
func (s *SCRAM) ChannelBindingType() string {
	if len(s.gs2Header) > 2 && s.gs2Header[0] == 'p' {
		return string(s.gs2Header[2:bytes.IndexByte(s.gs2Header, ',')])
	}
	return ""
}

func (s *SCRAM) failed(cond, text string) *Failure {
	s.step = stepDone
	s.creds = Credentials{}
	return fail(cond, text)
}

// ClientFirst parses the client-first-message (RFC 5802 §7):
//
//	gs2-cbind-flag "," [ "a=" saslname ] "," [ "m=" ext "," ] "n=" saslname "," "r=" nonce [ "," extensions ]
//
// It returns the username, unescaped and prepared with the PRECIS
// UsernameCaseMapped profile (RFC 8265, the successor of SASLprep for
// usernames; the same profile as a JID localpart), and the unescaped
// authzid, which the caller must validate as a JID (invalid-authzid).
func (s *SCRAM) ClientFirst(msg []byte) (username, authzid string, err error) {
	if s.step != stepClientFirst {
		return "", "", s.failed(MalformedRequest, "unexpected client-first-message")
	}
	if s.mech.Plain || !s.mech.Hash.valid() {
		return "", "", s.failed(InvalidMechanism, "not a SCRAM mechanism")
	}
	if len(msg) > maxMessageLen {
		return "", "", s.failed(MalformedRequest, "message too long")
	}
	// RFC 5802 §7: no attribute value may contain NUL.
	if !utf8.Valid(msg) || bytes.IndexByte(msg, 0) >= 0 {
		return "", "", s.failed(MalformedRequest, "invalid UTF-8 or NUL")
	}

	// gs2-header.
	rest := msg
	flag, rest, ok := cutComma(rest)
	if !ok || len(flag) == 0 {
		return "", "", s.failed(MalformedRequest, "missing gs2 header")
	}
	var cbType string
	switch {
	case len(flag) == 1 && flag[0] == 'n':
		// Client does not support channel binding. On a -PLUS mechanism
		// that contradicts the mechanism choice (RFC 5802 §6).
		if s.mech.Plus {
			return "", "", s.failed(MalformedRequest, "channel binding flag 'n' on a -PLUS mechanism")
		}
	case len(flag) == 1 && flag[0] == 'y':
		if s.mech.Plus {
			return "", "", s.failed(MalformedRequest, "channel binding flag 'y' on a -PLUS mechanism")
		}
		// "y": the client supports channel binding but believes we do
		// not. If we did offer -PLUS, someone removed it from the feature
		// list: a downgrade attack (RFC 5802 §6).
		if s.plusAdvertised {
			return "", "", s.failed(NotAuthorized, "server-does-support-channel-binding")
		}
	case len(flag) > 2 && flag[0] == 'p' && flag[1] == '=':
		cbType = string(flag[2:])
		if !validCBName(cbType) {
			return "", "", s.failed(MalformedRequest, "invalid channel binding name")
		}
		if !s.mech.Plus {
			return "", "", s.failed(MalformedRequest, "channel binding requested on a mechanism without -PLUS")
		}
		s.cbData = s.cb.data(cbType)
		if len(s.cbData) == 0 {
			return "", "", s.failed(NotAuthorized, "unsupported-channel-binding-type")
		}
	default:
		return "", "", s.failed(MalformedRequest, "invalid channel binding flag")
	}
	az, rest, ok := cutComma(rest)
	if !ok {
		return "", "", s.failed(MalformedRequest, "missing gs2 header")
	}
	if len(az) > 0 {
		if len(az) < 3 || az[0] != 'a' || az[1] != '=' {
			return "", "", s.failed(MalformedRequest, "invalid authzid")
		}
		dec, ok := unescapeSaslname(az[2:])
		if !ok {
			return "", "", s.failed(MalformedRequest, "invalid authzid")
		}
		authzid = string(dec)
	}
	s.gs2Header = append([]byte(nil), msg[:len(msg)-len(rest)]...)

	// client-first-message-bare.
	bare := rest
	attr, rest, _ := cutComma(rest)
	if len(attr) >= 2 && attr[0] == 'm' && attr[1] == '=' {
		// RFC 5802 §5.1: a mandatory extension we do not understand MUST
		// cause authentication failure.
		return "", "", s.failed(MalformedRequest, "extensions-not-supported")
	}
	if len(attr) < 2 || attr[0] != 'n' || attr[1] != '=' {
		return "", "", s.failed(MalformedRequest, "missing username")
	}
	user, ok := unescapeSaslname(attr[2:])
	if !ok || len(user) == 0 {
		return "", "", s.failed(MalformedRequest, "invalid username encoding")
	}
	nonceOff := len(bare) - len(rest) + 2
	attr, rest, more := cutComma(rest)
	if len(attr) < 3 || attr[0] != 'r' || attr[1] != '=' || !validNonce(attr[2:]) {
		return "", "", s.failed(MalformedRequest, "missing or invalid nonce")
	}
	nonceLen := len(attr) - 2
	if more && !validExtensions(rest) {
		return "", "", s.failed(MalformedRequest, "invalid extension")
	}

	prepared, perr := precis.UsernameCaseMapped.Bytes(user)
	if perr != nil || len(prepared) == 0 {
		// A username that cannot be prepared cannot name an account;
		// answer like any other authentication failure.
		return "", "", s.failed(NotAuthorized, "")
	}

	s.clientFirstBare = append([]byte(nil), bare...)
	s.clientNonce = s.clientFirstBare[nonceOff : nonceOff+nonceLen]
	s.step = stepServerFirst
	return string(prepared), authzid, nil
}

// ServerFirst returns the server-first-message for the stored credentials
// of the user (or FakeCredentials for an unknown one), with a fresh server
// nonce read from r:
//
//	"r=" client-nonce server-nonce ",s=" base64(salt) ",i=" iteration-count
func (s *SCRAM) ServerFirst(c Credentials, r io.Reader) ([]byte, error) {
	if s.step != stepServerFirst {
		return nil, s.failed(MalformedRequest, "unexpected server-first step")
	}
	var raw [serverNonceLen]byte
	if _, err := io.ReadFull(r, raw[:]); err != nil {
		return nil, s.failed(TemporaryAuthFailure, "")
	}
	return s.serverFirstWithNonce(c, base64.StdEncoding.EncodeToString(raw[:]))
}

// serverFirstWithNonce is ServerFirst with a chosen server nonce, split out
// so that tests can reproduce the RFC example exchanges exactly.
func (s *SCRAM) serverFirstWithNonce(c Credentials, serverNonce string) ([]byte, error) {
	if !c.Valid() || c.Hash != s.mech.Hash {
		// A caller bug (credentials of the wrong hash); not the client's
		// fault, and nothing to tell it about.
		return nil, s.failed(TemporaryAuthFailure, "")
	}
	s.creds = c
	s.nonce = make([]byte, 0, len(s.clientNonce)+len(serverNonce))
	s.nonce = append(append(s.nonce, s.clientNonce...), serverNonce...)

	msg := make([]byte, 0, 2+len(s.nonce)+3+base64.StdEncoding.EncodedLen(len(c.Salt))+3+10)
	msg = append(msg, "r="...)
	msg = append(msg, s.nonce...)
	msg = append(msg, ",s="...)
	msg = base64.StdEncoding.AppendEncode(msg, c.Salt)
	msg = append(msg, ",i="...)
	msg = strconv.AppendInt(msg, int64(c.Iterations), 10)
	if s.ssdp != "" {
		// XEP-0474 §4.1: an optional attribute (RFC 5802 §7 server-first-message extensions).
		msg = append(append(msg, ",h="...), s.ssdp...)
	}
	s.serverFirst = msg
	s.step = stepClientFinal
	return append([]byte(nil), msg...), nil
}

// ClientFinal verifies the client-final-message (RFC 5802 §7):
//
//	"c=" base64(gs2-header [cbind-data]) ",r=" nonce [ "," extensions ] ",p=" base64(proof)
//
// and on success returns the server-final-message "v=" base64(ServerSignature),
// which the caller sends as additional data in <success/> (RFC 6120 §6.3.10).
// A wrong password, wrong channel binding or unknown user all yield
// not-authorized.
func (s *SCRAM) ClientFinal(msg []byte) ([]byte, error) {
	if s.step != stepClientFinal {
		return nil, s.failed(MalformedRequest, "unexpected client-final-message")
	}
	if len(msg) > maxMessageLen {
		return nil, s.failed(MalformedRequest, "message too long")
	}
	if !utf8.Valid(msg) || bytes.IndexByte(msg, 0) >= 0 {
		return nil, s.failed(MalformedRequest, "invalid UTF-8 or NUL")
	}
	// The proof is always the last attribute; everything before it is
	// client-final-message-without-proof and part of AuthMessage.
	i := bytes.LastIndex(msg, []byte(",p="))
	if i < 0 {
		return nil, s.failed(MalformedRequest, "missing proof")
	}
	withoutProof, proofB64 := msg[:i], msg[i+3:]

	attr, rest, _ := cutComma(withoutProof)
	if len(attr) < 2 || attr[0] != 'c' || attr[1] != '=' {
		return nil, s.failed(MalformedRequest, "missing channel binding")
	}
	cbind, err := base64.StdEncoding.Strict().DecodeString(string(attr[2:]))
	if err != nil {
		return nil, s.failed(MalformedRequest, "invalid channel binding encoding")
	}
	attr, rest, more := cutComma(rest)
	if len(attr) < 2 || attr[0] != 'r' || attr[1] != '=' {
		return nil, s.failed(MalformedRequest, "missing nonce")
	}
	nonce := attr[2:]
	if more && !validExtensions(rest) {
		return nil, s.failed(MalformedRequest, "invalid extension")
	}
	proof, err := base64.StdEncoding.Strict().DecodeString(string(proofB64))
	if err != nil || len(proof) != s.mech.Hash.Size() {
		return nil, s.failed(MalformedRequest, "invalid proof")
	}

	// The nonce must repeat client-nonce + server-nonce exactly.
	if subtle.ConstantTimeCompare(nonce, s.nonce) != 1 {
		return nil, s.failed(NotAuthorized, "other-error")
	}
	// c= must be exactly gs2-header || cbind-data (RFC 5802 §6, §7). For
	// "n" and "y" there is no cbind-data, so this also rejects a client
	// that switches flags between the two messages.
	want := make([]byte, 0, len(s.gs2Header)+len(s.cbData))
	want = append(append(want, s.gs2Header...), s.cbData...)
	if subtle.ConstantTimeCompare(cbind, want) != 1 {
		return nil, s.failed(NotAuthorized, "channel-bindings-dont-match")
	}

	h := s.mech.Hash
	authMessage := make([]byte, 0, len(s.clientFirstBare)+len(s.serverFirst)+len(withoutProof)+2)
	authMessage = append(authMessage, s.clientFirstBare...)
	authMessage = append(authMessage, ',')
	authMessage = append(authMessage, s.serverFirst...)
	authMessage = append(authMessage, ',')
	authMessage = append(authMessage, withoutProof...)

	// ClientKey = ClientProof XOR HMAC(StoredKey, AuthMessage); the proof
	// is valid iff H(ClientKey) == StoredKey (RFC 5802 §3).
	clientSig := hmacSum(h, s.creds.StoredKey, authMessage)
	clientKey := make([]byte, len(proof))
	subtle.XORBytes(clientKey, proof, clientSig)
	d := h.New()
	d.Write(clientKey)
	if subtle.ConstantTimeCompare(d.Sum(nil), s.creds.StoredKey) != 1 {
		return nil, s.failed(NotAuthorized, "invalid-proof")
	}
	serverSig := hmacSum(h, s.creds.ServerKey, authMessage)
	s.step = stepDone
	s.creds = Credentials{}
	out := make([]byte, 0, 2+base64.StdEncoding.EncodedLen(len(serverSig)))
	out = append(out, "v="...)
	return base64.StdEncoding.AppendEncode(out, serverSig), nil
}

// cutComma splits b at the first ','. ok is false if there is none.
func cutComma(b []byte) (before, after []byte, ok bool) {
	if i := bytes.IndexByte(b, ','); i >= 0 {
		return b[:i], b[i+1:], true
	}
	return b, nil, false
}

// unescapeSaslname decodes a saslname (RFC 5802 §7): ',' is sent as "=2C"
// and '=' as "=3D"; any other '=' is malformed. The input never contains
// ',' because the caller split on it.
func unescapeSaslname(b []byte) ([]byte, bool) {
	if bytes.IndexByte(b, '=') < 0 {
		return b, true
	}
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		if b[i] != '=' {
			out = append(out, b[i])
			continue
		}
		if i+2 >= len(b) {
			return nil, false
		}
		switch string(b[i+1 : i+3]) {
		case "2C":
			out = append(out, ',')
		case "3D":
			out = append(out, '=')
		default:
			return nil, false
		}
		i += 2
	}
	return out, true
}

// validNonce: printable = %x21-2B / %x2D-7E (RFC 5802 §7), i.e. printable
// ASCII except ','.
func validNonce(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c < 0x21 || c > 0x7e || c == ',' {
			return false
		}
	}
	return true
}

// validCBName: cb-name = 1*(ALPHA / DIGIT / "." / "-") (RFC 5802 §7).
func validCBName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// validExtensions checks the comma-separated attr-val pairs (ALPHA "="
// 1*value-char) that follow a ','; b must hold at least one.
// Unknown optional extensions are allowed and ignored; the reserved 'm' is
// mandatory and so rejected.
func validExtensions(b []byte) bool {
	for {
		attr, rest, more := cutComma(b)
		if len(attr) < 3 || attr[1] != '=' || attr[0] == 'm' ||
			!('a' <= attr[0] && attr[0] <= 'z' || 'A' <= attr[0] && attr[0] <= 'Z') {
			return false
		}
		if !more {
			return true
		}
		b = rest
	}
}
