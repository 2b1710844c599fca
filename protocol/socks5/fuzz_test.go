package socks5

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzReadRequest: the handshake readers never panic or read past what they need, and an accepted request is a
// CONNECT to a domain name that Reply can echo.
func FuzzReadRequest(f *testing.F) {
	f.Add([]byte{5, 1, 0}, req(1, 0, AddrDomain, StreamAddr("s", "a", "b"), 0))
	f.Add([]byte{5, 0}, req(2, 0, AddrIPv4, "\x01\x02\x03\x04", 1))
	f.Add([]byte{4}, []byte{5, 1, 0, 3, 255})
	f.Fuzz(func(t *testing.T, greeting, request []byte) {
		_ = ReadGreeting(bytes.NewReader(greeting))
		r := bytes.NewReader(request)
		got, err := ReadRequest(r)
		var re *ReplyError
		if err == nil {
			if len(got.Host) > 255 || request[1] != CmdConnect || request[3] != AddrDomain {
				t.Fatalf("accepted %v as %+v", request, got)
			}
			consumed := len(request) - r.Len()
			if consumed != 7+len(got.Host) {
				t.Fatalf("read %d bytes of a %d-byte request", consumed, 7+len(got.Host))
			}
			if rep := Reply(ReplySucceeded, got.Host); !bytes.Equal(rep[5:5+len(got.Host)], []byte(got.Host)) {
				t.Fatal("Reply does not echo the host")
			}
		} else if errors.As(err, &re) && re.Code == ReplySucceeded {
			t.Fatal("a refusal with the success code")
		}
	})
}
