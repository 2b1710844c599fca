// Package socks5 is the pure part of a XEP-0065 bytestreams proxy: the server side of the RFC 1928 SOCKS5
// handshake as XEP-0065 uses it, and the stream address of §5.3.2.
//
// XEP-0065 §5.3.2: both parties CONNECT to the proxy with address type domain name (ATYP 3) whose value is the
// hex SHA-1 of SID + requester's JID + target's JID, port 0, after a greeting offering the "no authentication
// required" method (§5.3.1). Nothing else of RFC 1928 is needed: no BIND, no UDP ASSOCIATE, no IP addresses.
package socks5

import (
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"io"
)

// Protocol constants (RFC 1928).
const (
	Version                  = 0x05
	MethodNoAuth             = 0x00 // §3
	MethodNone               = 0xFF // §3: no acceptable methods
	CmdConnect               = 0x01 // §4
	AddrIPv4                 = 0x01
	AddrDomain               = 0x03
	AddrIPv6                 = 0x04
	ReplySucceeded           = 0x00 // §6
	ReplyGeneralFailure      = 0x01
	ReplyNotAllowed          = 0x02
	ReplyHostUnreachable     = 0x04
	ReplyCommandUnsupported  = 0x07
	ReplyAddrTypeUnsupported = 0x08
)

// Errors of the readers. A ReplyError says which reply (RFC 1928 §6) the server owes before closing.
var (
	ErrVersion = errors.New("socks5: not version 5")
	ErrNoAuth  = errors.New("socks5: the client does not offer 'no authentication required'")
)

// ReplyError is a request the server refuses with Code.
type ReplyError struct {
	Code byte
	Msg  string
}

func (e *ReplyError) Error() string { return "socks5: " + e.Msg }

// ReadGreeting reads the method-selection message (RFC 1928 §3: VER NMETHODS METHODS) and reports whether
// "no authentication required" is offered (ErrNoAuth otherwise; the server answers MethodNone then).
func ReadGreeting(r io.Reader) error {
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return err
	}
	if h[0] != Version {
		return ErrVersion
	}
	methods := make([]byte, h[1])
	if _, err := io.ReadFull(r, methods); err != nil {
		return err
	}
	for _, m := range methods {
		if m == MethodNoAuth {
			return nil
		}
	}
	return ErrNoAuth
}

// MethodReply is the server's answer to the greeting.
func MethodReply(method byte) []byte { return []byte{Version, method} }

// Request is a CONNECT request (RFC 1928 §4) to a domain name.
type Request struct {
	Host string
	Port uint16
}

// ReadRequest reads a request (RFC 1928 §4: VER CMD RSV ATYP DST.ADDR DST.PORT). Anything but CONNECT to a
// domain name is a *ReplyError once the whole request was read (§6: the reply the server sends).
func ReadRequest(r io.Reader) (Request, error) {
	var h [4]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return Request{}, err
	}
	if h[0] != Version {
		return Request{}, ErrVersion
	}
	var addrLen int
	switch h[3] {
	case AddrIPv4:
		addrLen = 4
	case AddrIPv6:
		addrLen = 16
	case AddrDomain:
		var l [1]byte
		if _, err := io.ReadFull(r, l[:]); err != nil {
			return Request{}, err
		}
		addrLen = int(l[0])
	default:
		return Request{}, &ReplyError{Code: ReplyAddrTypeUnsupported, Msg: "unknown address type"}
	}
	buf := make([]byte, addrLen+2)
	if _, err := io.ReadFull(r, buf); err != nil {
		return Request{}, err
	}
	req := Request{Host: string(buf[:addrLen]), Port: uint16(buf[addrLen])<<8 | uint16(buf[addrLen+1])}
	switch {
	case h[1] != CmdConnect:
		return req, &ReplyError{Code: ReplyCommandUnsupported, Msg: "only CONNECT is supported"}
	case h[3] != AddrDomain:
		return req, &ReplyError{Code: ReplyAddrTypeUnsupported, Msg: "XEP-0065 §5.3.2 addresses are domain names"}
	case h[2] != 0:
		return req, &ReplyError{Code: ReplyGeneralFailure, Msg: "reserved byte is not zero"}
	}
	return req, nil
}

// Reply is the server's reply (RFC 1928 §6) carrying the domain-name address host (XEP-0065 §5.3.2: the same
// hash, port 0). host is at most 255 bytes (longer is cut).
func Reply(code byte, host string) []byte {
	if len(host) > 255 {
		host = host[:255]
	}
	b := make([]byte, 0, 7+len(host))
	b = append(b, Version, code, 0, AddrDomain, byte(len(host)))
	b = append(b, host...)
	return append(b, 0, 0)
}

// StreamAddr is the address of a bytestream (XEP-0065 §5.3.2): the lowercase hex SHA-1 of SID + requester JID +
// target JID (the JIDs as sent, full JIDs).
func StreamAddr(sid, requester, target string) string {
	h := sha1.Sum([]byte(sid + requester + target))
	return hex.EncodeToString(h[:])
}

// ValidStreamAddr reports whether s looks like a StreamAddr (40 lowercase hex digits).
func ValidStreamAddr(s string) bool {
	if len(s) != 40 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
