// Package upload is the pure part of XEP-0363 HTTP File Upload: the signed, expiring PUT token, the ids of
// uploaded files, and the sanitising of the file names and content types clients declare.
//
// The token binds what the slot request said to the PUT that uses it (XEP-0363 §4: "the upload service MUST
// ensure that the size and content type of the upload match the slot"): an HMAC-SHA256 over the file id, the
// size in bytes, the (sanitised) content type and the expiry time, keyed with the service's secret. The HTTP
// side recomputes it from the URL's id, the request's Content-Length and Content-Type and the token's expiry, so
// a token is useless for another file, another size, another type, or after it expired.
package upload

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"mime"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// NS is the XEP-0363 namespace.
const NS = "urn:xmpp:http:upload:0"

// IDLen is the length of a file id: 32 lowercase hex digits (128 random bits, chosen by the service).
const IDLen = 32

// ValidID reports whether s is a file id: exactly IDLen lowercase hex digits. Paths on disk are built from ids
// only, so nothing a client sends ever names a file by itself.
func ValidID(s string) bool {
	if len(s) != IDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// Claims are what a PUT token vouches for.
type Claims struct {
	ID          string
	Size        int64
	ContentType string
	Expires     time.Time
}

// Errors of Verify.
var (
	ErrMalformed = errors.New("upload: malformed token")
	ErrBadMAC    = errors.New("upload: token does not match")
	ErrExpired   = errors.New("upload: token expired")
)

func mac(secret []byte, c Claims) []byte {
	h := hmac.New(sha256.New, secret)
	// NUL-separated: none of the fields can hold a NUL (ids are hex, sizes digits, content types are sanitised).
	h.Write([]byte("xmppd-upload-v1\x00" + c.ID + "\x00" + strconv.FormatInt(c.Size, 10) + "\x00" + c.ContentType +
		"\x00" + strconv.FormatInt(c.Expires.Unix(), 10)))
	return h.Sum(nil)
}

// Sign returns the token for c: "<expiry unix seconds>.<base64url MAC>".
func Sign(secret []byte, c Claims) string {
	return strconv.FormatInt(c.Expires.Unix(), 10) + "." + base64.RawURLEncoding.EncodeToString(mac(secret, c))
}

// ParseToken splits a token into its expiry and MAC.
func ParseToken(tok string) (expires time.Time, sum []byte, err error) {
	exp, b64, ok := strings.Cut(tok, ".")
	if !ok || exp == "" || len(exp) > 19 || len(b64) != 43 {
		return time.Time{}, nil, ErrMalformed
	}
	for i := 0; i < len(exp); i++ {
		if exp[i] < '0' || exp[i] > '9' {
			return time.Time{}, nil, ErrMalformed
		}
	}
	n, err := strconv.ParseInt(exp, 10, 64)
	if err != nil {
		return time.Time{}, nil, ErrMalformed
	}
	sum, err = base64.RawURLEncoding.DecodeString(b64)
	if err != nil || len(sum) != sha256.Size {
		return time.Time{}, nil, ErrMalformed
	}
	return time.Unix(n, 0), sum, nil
}

// Verify checks tok against the claims of a PUT (Expires is taken from the token) at now.
func Verify(secret []byte, id string, size int64, contentType, tok string, now time.Time) error {
	exp, sum, err := ParseToken(tok)
	if err != nil {
		return err
	}
	if !hmac.Equal(sum, mac(secret, Claims{ID: id, Size: size, ContentType: contentType, Expires: exp})) {
		return ErrBadMAC
	}
	if !now.Before(exp) {
		return ErrExpired
	}
	return nil
}

// MaxFilenameBytes bounds a sanitised file name (most file systems' limit of one path element).
const MaxFilenameBytes = 200

// ErrBadFilename: the file name cannot be made safe (XEP-0363 §4: the service may refuse it with
// <not-acceptable/>).
var ErrBadFilename = errors.New("upload: unacceptable file name")

// SanitizeFilename returns the name the GET URL carries for a declared file name. Names that are not a single
// path element — with a slash or backslash, ".", "..", a control character, invalid UTF-8 — are refused, as is
// one with nothing left; otherwise anything but letters, digits and ".-_+()~" becomes "_", leading dots are
// dropped (no hidden files) and the name is cut to MaxFilenameBytes keeping its extension.
func SanitizeFilename(name string) (string, error) {
	if name == "" || !utf8.ValidString(name) || len(name) > 1024 {
		return "", ErrBadFilename
	}
	if name == "." || name == ".." || strings.ContainsAny(name, "/\\") {
		return "", ErrBadFilename
	}
	var b strings.Builder
	for _, r := range name {
		switch {
		case unicode.IsControl(r) || r == utf8.RuneError || unicode.Is(unicode.Cf, r):
			return "", ErrBadFilename // bidi overrides and other format characters disguise names
		case unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune(".-_+()~", r):
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	out := strings.TrimLeft(b.String(), ".")
	if strings.Trim(out, "_") == "" {
		return "", ErrBadFilename
	}
	if len(out) > MaxFilenameBytes {
		ext := ""
		if i := strings.LastIndexByte(out, '.'); i > 0 && len(out)-i <= 16 {
			ext = out[i:]
		}
		keep := MaxFilenameBytes - len(ext)
		for keep > 0 && !utf8.RuneStart(out[keep]) {
			keep--
		}
		out = out[:keep] + ext
	}
	return out, nil
}

// DefaultContentType is what a file without a (valid) declared type is stored and served as.
const DefaultContentType = "application/octet-stream"

// SanitizeContentType normalises a declared content type: a valid media type (RFC 2045 §5.1) lowercased with
// only a charset parameter kept, or DefaultContentType. The slot's token signs this form, and a PUT's
// Content-Type is compared in this form too.
func SanitizeContentType(ct string) string {
	if ct == "" || len(ct) > 255 {
		return DefaultContentType
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || !strings.Contains(mt, "/") || strings.HasSuffix(mt, "/") || strings.HasPrefix(mt, "/") {
		return DefaultContentType
	}
	keep := map[string]string{}
	if cs := params["charset"]; cs != "" {
		keep["charset"] = strings.ToLower(cs)
	}
	out := mime.FormatMediaType(mt, keep)
	if out == "" {
		return DefaultContentType
	}
	return out
}
