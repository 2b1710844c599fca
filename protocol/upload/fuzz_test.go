package upload

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// FuzzParse: the parsers of what clients send (tokens, file names, content types) never panic, and what they
// accept is safe: a token that verifies was signed, a file name is one path element, a content type parses.
func FuzzParse(f *testing.F) {
	f.Add("1700000060.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "photo.jpg", "image/png")
	f.Add("", "../x", "text/plain; charset=UTF-8")
	f.Add("9999999999999999999.x", "\u202e", "a/b/c")
	f.Fuzz(func(t *testing.T, tok, name, ct string) {
		now := time.Unix(1_700_000_000, 0)
		id := strings.Repeat("a", IDLen)
		if err := Verify(secret, id, 1, ct, tok, now); err == nil {
			if tok != Sign(secret, Claims{ID: id, Size: 1, ContentType: ct, Expires: mustExp(t, tok)}) {
				t.Fatalf("verified a token Sign did not make: %q", tok)
			}
		}
		if n, err := SanitizeFilename(name); err == nil {
			if n == "" || n == "." || n == ".." || strings.ContainsAny(n, "/\\\x00") || !utf8.ValidString(n) || len(n) > MaxFilenameBytes || n[0] == '.' {
				t.Fatalf("SanitizeFilename(%q) = %q", name, n)
			}
		}
		if c := SanitizeContentType(ct); SanitizeContentType(c) != c || strings.ContainsAny(c, "\r\n") {
			t.Fatalf("SanitizeContentType(%q) = %q is not stable", ct, c)
		}
	})
}

func mustExp(t *testing.T, tok string) time.Time {
	exp, _, err := ParseToken(tok)
	if err != nil {
		t.Fatal(err)
	}
	return exp
}
