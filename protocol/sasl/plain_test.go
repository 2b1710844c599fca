package sasl

import (
	"errors"
	"strings"
	"testing"
)

func TestParsePlain(t *testing.T) {
	long := strings.Repeat("a", 256)
	for _, tc := range []struct {
		in               string
		az, ac, pw, cond string
	}{
		{in: "\x00tim\x00tanstaaftanstaaf", ac: "tim", pw: "tanstaaftanstaaf"}, // RFC 4616 §4
		{in: "Ursel\x00Kurt\x00xipj3plmq", az: "Ursel", ac: "kurt", pw: "xipj3plmq"},
		{in: "juliet@example.com\x00Juliet\x00pass word", az: "juliet@example.com", ac: "juliet", pw: "pass word"},
		{in: "\x00ｊｕｌｉｅｔ\x00p", ac: "juliet", pw: "p"},
		{in: "", cond: MalformedRequest},
		{in: "tim", cond: MalformedRequest},
		{in: "\x00tim", cond: MalformedRequest},
		{in: "\x00tim\x00", cond: MalformedRequest},
		{in: "\x00\x00pw", cond: MalformedRequest},
		{in: "\x00tim\x00pw\x00", cond: MalformedRequest},
		{in: "\x00tim\x00p\x00w", cond: MalformedRequest},
		{in: "\x00t\xffim\x00pw", cond: MalformedRequest},
		{in: "\x00tim\x00p\xffw", cond: MalformedRequest},
		{in: "a\xff\x00tim\x00pw", cond: MalformedRequest},
		{in: "\x00" + long + "\x00pw", cond: MalformedRequest},
		{in: "\x00tim\x00" + long, cond: MalformedRequest},
		{in: long + "\x00tim\x00pw", cond: MalformedRequest},
		{in: "\x00tim smith\x00pw", cond: NotAuthorized},
	} {
		az, ac, pw, err := ParsePlain([]byte(tc.in))
		if tc.cond == "" {
			if err != nil || az != tc.az || ac != tc.ac || pw != tc.pw {
				t.Errorf("ParsePlain(%q) = %q, %q, %q, %v", tc.in, az, ac, pw, err)
			}
			continue
		}
		var f *Failure
		if !errors.As(err, &f) || f.Condition != tc.cond {
			t.Errorf("ParsePlain(%q) = %q, %q, %q, %v; want %s", tc.in, az, ac, pw, err, tc.cond)
		}
	}
}
