package portable

import (
	"bytes"
	"io"
	"testing"
)

// FuzzDecode: any input either decodes to users that encode and decode again to the same count, or is refused
// with an *Error; it never panics nor loops.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(full))
	f.Add([]byte("<server-data xmlns='urn:xmpp:pie:0'><host jid='a'><user name='b' password='c'/></host></server-data>"))
	f.Fuzz(func(t *testing.T, data []byte) {
		d := NewDecoder(bytes.NewReader(data), "fuzz", nil, Limits{MaxUser: 1 << 16})
		var us []*User
		for {
			u, err := d.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				if _, ok := err.(*Error); !ok {
					t.Fatalf("error of type %T: %v", err, err)
				}
				return
			}
			us = append(us, u)
		}
		var b bytes.Buffer
		e := NewEncoder(&b)
		for _, u := range us {
			e.Encode(u)
		}
		e.Close()
		d2 := NewDecoder(&b, "again", nil, Limits{})
		n := 0
		for {
			_, err := d2.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("re-encoded document refused: %v\n%s", err, b.String())
			}
			n++
		}
		if n != len(us) {
			t.Fatalf("%d users, %d after re-encoding", len(us), n)
		}
	})
}
