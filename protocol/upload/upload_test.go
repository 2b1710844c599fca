package upload

import (
	"errors"
	"strings"
	"testing"
	"time"
)

var secret = []byte("0123456789abcdef0123456789abcdef")

func TestTokenRoundTrip(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	c := Claims{ID: strings.Repeat("ab", 16), Size: 1234, ContentType: "image/png", Expires: now.Add(time.Minute)}
	tok := Sign(secret, c)
	cases := []struct {
		name   string
		id     string
		size   int64
		ct     string
		tok    string
		at     time.Time
		secret []byte
		want   error
	}{
		{"ok", c.ID, c.Size, c.ContentType, tok, now, secret, nil},
		{"expired", c.ID, c.Size, c.ContentType, tok, now.Add(time.Minute), secret, ErrExpired},
		{"other size", c.ID, c.Size + 1, c.ContentType, tok, now, secret, ErrBadMAC},
		{"other type", c.ID, c.Size, "text/html", tok, now, secret, ErrBadMAC},
		{"other id", strings.Repeat("cd", 16), c.Size, c.ContentType, tok, now, secret, ErrBadMAC},
		{"other secret", c.ID, c.Size, c.ContentType, tok, now, []byte("x"), ErrBadMAC},
		{"later expiry forged", c.ID, c.Size, c.ContentType, "1800000000" + tok[strings.IndexByte(tok, '.'):], now, secret, ErrBadMAC},
		{"no dot", c.ID, c.Size, c.ContentType, "123", now, secret, ErrMalformed},
		{"empty", c.ID, c.Size, c.ContentType, "", now, secret, ErrMalformed},
		{"sign", c.ID, c.Size, c.ContentType, "-5." + tok[strings.IndexByte(tok, '.')+1:], now, secret, ErrMalformed},
		{"short mac", c.ID, c.Size, c.ContentType, "1700000060.abc", now, secret, ErrMalformed},
	}
	for _, tc := range cases {
		if err := Verify(tc.secret, tc.id, tc.size, tc.ct, tc.tok, tc.at); !errors.Is(err, tc.want) {
			t.Errorf("%s: Verify = %v, want %v", tc.name, err, tc.want)
		}
	}
}

func TestValidID(t *testing.T) {
	for s, want := range map[string]bool{
		strings.Repeat("0a", 16): true, strings.Repeat("0A", 16): false, "": false, strings.Repeat("a", 31): false,
		strings.Repeat("a", 33): false, "../" + strings.Repeat("a", 29): false, strings.Repeat("g", 32): false,
	} {
		if ValidID(s) != want {
			t.Errorf("ValidID(%q) = %v", s, !want)
		}
	}
}

func TestSanitizeFilename(t *testing.T) {
	long := strings.Repeat("é", 150) + ".jpeg"
	cases := []struct{ in, want string }{
		{"photo.jpg", "photo.jpg"},
		{"très cool.jpg", "très_cool.jpg"},
		{".bashrc", "bashrc"},
		{"a<b>\"c\".html", "a_b__c_.html"},
		{"..hidden..txt", "hidden..txt"},
		{"../../etc/passwd", ""},
		{"..\\win.ini", ""},
		{"..", ""},
		{".", ""},
		{"", ""},
		{"a\x00b", ""},
		{"a\nb", ""},
		{"evil\u202egpj.exe", ""},
		{"\xff\xfe", ""},
		{"???", ""},
		{"日本語.txt", "日本語.txt"},
		{long, strings.Repeat("é", 97) + ".jpeg"},
	}
	for _, tc := range cases {
		got, err := SanitizeFilename(tc.in)
		if tc.want == "" {
			if err == nil {
				t.Errorf("SanitizeFilename(%q) = %q, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("SanitizeFilename(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
		if len(got) > MaxFilenameBytes {
			t.Errorf("SanitizeFilename(%q) is %d bytes", tc.in, len(got))
		}
	}
}

func TestSanitizeContentType(t *testing.T) {
	cases := []struct{ in, want string }{
		{"image/jpeg", "image/jpeg"},
		{"Image/JPEG", "image/jpeg"},
		{"text/plain; charset=UTF-8", "text/plain; charset=utf-8"},
		{"text/plain; charset=utf-8; evil=1", "text/plain; charset=utf-8"},
		{"", DefaultContentType},
		{"nonsense", DefaultContentType},
		{"text/", DefaultContentType},
		{"text/plain\r\nX-Evil: 1", DefaultContentType},
		{"a/b/c", DefaultContentType},
	}
	for _, tc := range cases {
		if got := SanitizeContentType(tc.in); got != tc.want {
			t.Errorf("SanitizeContentType(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
