package socks5

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

func TestReadGreeting(t *testing.T) {
	cases := []struct {
		in   []byte
		want error
	}{
		{[]byte{5, 1, 0}, nil},
		{[]byte{5, 3, 2, 1, 0}, nil},
		{[]byte{5, 1, 2}, ErrNoAuth},
		{[]byte{5, 0}, ErrNoAuth},
		{[]byte{4, 1, 0}, ErrVersion},
		{[]byte{5, 2, 0}, io.ErrUnexpectedEOF},
		{[]byte{}, io.EOF},
	}
	for _, tc := range cases {
		if err := ReadGreeting(bytes.NewReader(tc.in)); !errors.Is(err, tc.want) {
			t.Errorf("ReadGreeting(%v) = %v, want %v", tc.in, err, tc.want)
		}
	}
}

func req(cmd, rsv, atyp byte, addr string, port uint16) []byte {
	b := []byte{5, cmd, rsv, atyp}
	if atyp == AddrDomain {
		b = append(b, byte(len(addr)))
	}
	b = append(b, addr...)
	return append(b, byte(port>>8), byte(port))
}

func TestReadRequest(t *testing.T) {
	hash := StreamAddr("sid", "a@x/r", "b@x/r")
	cases := []struct {
		name string
		in   []byte
		want Request
		code int // -1: no ReplyError
		err  error
	}{
		{"connect", req(1, 0, AddrDomain, hash, 0), Request{Host: hash, Port: 0}, -1, nil},
		{"port", req(1, 0, AddrDomain, "h", 7777), Request{Host: "h", Port: 7777}, -1, nil},
		{"bind", req(2, 0, AddrDomain, hash, 0), Request{Host: hash}, ReplyCommandUnsupported, nil},
		{"ipv4", req(1, 0, AddrIPv4, "\x7f\x00\x00\x01", 80), Request{Host: "\x7f\x00\x00\x01", Port: 80}, ReplyAddrTypeUnsupported, nil},
		{"unknown atyp", []byte{5, 1, 0, 9}, Request{}, ReplyAddrTypeUnsupported, nil},
		{"rsv", req(1, 1, AddrDomain, "h", 0), Request{Host: "h"}, ReplyGeneralFailure, nil},
		{"version", req(1, 0, AddrDomain, "h", 0)[1:], Request{}, -1, ErrVersion},
		{"short", req(1, 0, AddrDomain, hash, 0)[:20], Request{}, -1, io.ErrUnexpectedEOF},
	}
	for _, tc := range cases {
		got, err := ReadRequest(bytes.NewReader(tc.in))
		var re *ReplyError
		switch {
		case tc.code >= 0:
			if !errors.As(err, &re) || int(re.Code) != tc.code {
				t.Errorf("%s: err %v, want reply %d", tc.name, err, tc.code)
			}
		case !errors.Is(err, tc.err):
			t.Errorf("%s: err %v, want %v", tc.name, err, tc.err)
		}
		if got != tc.want {
			t.Errorf("%s: got %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

func TestReplyRoundTrip(t *testing.T) {
	hash := StreamAddr("s", "a", "b")
	b := Reply(ReplySucceeded, hash)
	if b[0] != 5 || b[1] != 0 || b[2] != 0 || b[3] != AddrDomain || int(b[4]) != len(hash) || string(b[5:5+len(hash)]) != hash || len(b) != 7+len(hash) {
		t.Fatalf("Reply = %v", b)
	}
}

func TestStreamAddr(t *testing.T) {
	// XEP-0065 Example 4 and 12's participants: the hash is SHA-1 over the concatenation, lowercase hex.
	got := StreamAddr("vxf9n471bn46", "requester@example.com/foo", "target@example.org/bar")
	if len(got) != 40 || !ValidStreamAddr(got) {
		t.Fatalf("StreamAddr = %q", got)
	}
	// sha1("abc") from FIPS 180-2 appendix A.
	if StreamAddr("a", "b", "c") != "a9993e364706816aba3e25717850c26c9cd0d89d" {
		t.Fatalf("StreamAddr(a,b,c) = %s", StreamAddr("a", "b", "c"))
	}
	if ValidStreamAddr("A9993E364706816ABA3E25717850C26C9CD0D89D") || ValidStreamAddr("abc") {
		t.Fatal("ValidStreamAddr accepts junk")
	}
}
