// Package jid implements XMPP addresses as defined by RFC 7622.
//
// A JID is held in its canonical (prepared and enforced) string form plus two
// offsets, so String, Bare, Local, Domain and Resource never allocate, and two
// JIDs that denote the same address compare equal with ==. That makes JID
// usable directly as a map key in routing tables.
//
// Parsing runs on every routed stanza, so Parse has a fast path: if every
// byte of the input is already in canonical ASCII form (see fastLocal and
// friends), PRECIS and IDNA are skipped and the input string itself becomes
// the JID's storage without any allocation.
package jid

import (
	"net/netip"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
	"golang.org/x/text/secure/precis"
)

// MaxPartLen is the maximum length in bytes of each of localpart, domainpart
// and resourcepart after preparation (RFC 7622 §3.2, §3.3, §3.4).
const MaxPartLen = 1023

// maxInputLen bounds the raw input so that an attacker cannot make us run
// PRECIS over megabytes of text. It is generous: NFC and width mapping can
// shrink a part, so a raw part somewhat over MaxPartLen may still prepare to
// a valid one.
const maxInputLen = 4 * (3*MaxPartLen + 2)

// Names of the three parts, used in Error.Part.
const (
	PartLocal    = "localpart"
	PartDomain   = "domainpart"
	PartResource = "resourcepart"
)

// Error reports why a string is not a valid JID. Callers map it to the
// <jid-malformed/> stanza or stream error (RFC 6120 §8.3.3.8, §4.9.3.9).
type Error struct {
	Part string // PartLocal, PartDomain, PartResource or "" for the whole JID
	Msg  string
}

func (e *Error) Error() string {
	if e.Part == "" {
		return "jid: " + e.Msg
	}
	return "jid: invalid " + e.Part + ": " + e.Msg
}

// JID is an XMPP address. The zero value is the empty JID (IsZero reports
// true); it is not a valid address. JIDs are small values, compare with ==.
type JID struct {
	// full is the canonical form: [local "@"] domain ["/" resource].
	full string
	// localLen is len(local); 0 means no localpart (then there is no '@').
	localLen int32
	// domainEnd is the offset just past the domainpart; if it is shorter
	// than full, full[domainEnd] == '/' and the resource follows.
	domainEnd int32
}

// Parse parses and enforces s as a JID following RFC 7622 §3.1: the
// resourcepart is everything after the first '/', the localpart everything
// before the first '@' that precedes it, and the domainpart the remainder.
// Each part is then prepared and enforced with the PRECIS profiles (or IDNA
// for the domain). Errors are of type *Error.
//
// The returned JID may share memory with s.
func Parse(s string) (JID, error) {
	if len(s) > maxInputLen {
		return JID{}, &Error{Msg: "address too long"}
	}
	local, domain, resource, hasAt, hasSlash := split(s)
	if hasAt && local == "" {
		// RFC 7622 §3.1: "@example.com" is not a JID with an empty localpart,
		// it is an error.
		return JID{}, &Error{Part: PartLocal, Msg: "empty localpart after '@'"}
	}
	if hasSlash && resource == "" {
		return JID{}, &Error{Part: PartResource, Msg: "empty resourcepart after '/'"}
	}
	if fastLocal(local) && fastDomain(domain) && fastResource(resource) {
		return JID{full: s, localLen: int32(len(local)), domainEnd: int32(len(s) - len(resource) - boolInt(hasSlash))}, nil
	}
	return build(local, domain, resource)
}

// New builds a JID from its three parts, preparing and enforcing each. An
// empty local or resource means the JID has none; the domain is mandatory.
func New(local, domain, resource string) (JID, error) {
	if len(local)+len(domain)+len(resource) > maxInputLen {
		return JID{}, &Error{Msg: "address too long"}
	}
	if fastLocal(local) && fastDomain(domain) && fastResource(resource) {
		return assemble(local, domain, resource), nil
	}
	return build(local, domain, resource)
}

// MustParse is like Parse but panics on error. For constants in tests and
// configuration defaults only.
func MustParse(s string) JID {
	j, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return j
}

// split applies the RFC 7622 §3.1 separation rules to the raw input, before
// any preparation. Doing it before preparation matters: a fullwidth '＠' in
// the localpart is width-mapped to '@' later and must then be rejected, not
// re-split.
func split(s string) (local, domain, resource string, hasAt, hasSlash bool) {
	rest := s
	if i := strings.IndexByte(s, '/'); i >= 0 {
		resource, rest, hasSlash = s[i+1:], s[:i], true
	}
	if i := strings.IndexByte(rest, '@'); i >= 0 {
		local, domain, hasAt = rest[:i], rest[i+1:], true
	} else {
		domain = rest
	}
	return
}

// build is the slow path: full PRECIS / IDNA preparation and enforcement.
func build(local, domain, resource string) (JID, error) {
	var err error
	if local != "" {
		if local, err = prepareLocal(local); err != nil {
			return JID{}, err
		}
	}
	if domain, err = prepareDomain(domain); err != nil {
		return JID{}, err
	}
	if resource != "" {
		if resource, err = prepareResource(resource); err != nil {
			return JID{}, err
		}
	}
	return assemble(local, domain, resource), nil
}

// assemble joins already-enforced parts into a JID.
func assemble(local, domain, resource string) JID {
	n := len(domain)
	if local != "" {
		n += len(local) + 1
	}
	end := n
	if resource != "" {
		n += len(resource) + 1
	}
	if local == "" && resource == "" {
		return JID{full: domain, domainEnd: int32(end)}
	}
	var b strings.Builder
	b.Grow(n)
	if local != "" {
		b.WriteString(local)
		b.WriteByte('@')
	}
	b.WriteString(domain)
	if resource != "" {
		b.WriteByte('/')
		b.WriteString(resource)
	}
	return JID{full: b.String(), localLen: int32(len(local)), domainEnd: int32(end)}
}

// localExcluded are the characters RFC 7622 §3.3.1 forbids in a localpart in
// addition to what the UsernameCaseMapped profile forbids.
const localExcluded = "\"&'/:<>@"

func prepareLocal(s string) (string, error) {
	if !utf8.ValidString(s) {
		return "", &Error{Part: PartLocal, Msg: "invalid UTF-8"}
	}
	p, err := precis.UsernameCaseMapped.String(s)
	if err != nil {
		return "", &Error{Part: PartLocal, Msg: err.Error()}
	}
	if p == "" || len(p) > MaxPartLen {
		return "", &Error{Part: PartLocal, Msg: "must be 1 to 1023 bytes"}
	}
	if strings.ContainsAny(p, localExcluded) {
		return "", &Error{Part: PartLocal, Msg: `contains one of " & ' / : < > @`}
	}
	return p, nil
}

func prepareResource(s string) (string, error) {
	if !utf8.ValidString(s) {
		return "", &Error{Part: PartResource, Msg: "invalid UTF-8"}
	}
	p, err := precis.OpaqueString.String(s)
	if err != nil {
		return "", &Error{Part: PartResource, Msg: err.Error()}
	}
	if p == "" || len(p) > MaxPartLen {
		return "", &Error{Part: PartResource, Msg: "must be 1 to 1023 bytes"}
	}
	return p, nil
}

func prepareDomain(s string) (string, error) {
	if !utf8.ValidString(s) {
		return "", &Error{Part: PartDomain, Msg: "invalid UTF-8"}
	}
	// RFC 7622 §3.2: a single trailing label separator is stripped before
	// any other canonicalization step.
	s = strings.TrimSuffix(s, ".")
	if s == "" {
		return "", &Error{Part: PartDomain, Msg: "empty domainpart"}
	}
	// RFC 7622 §3.2 allows an IP-literal (RFC 3986 §3.2.2: "[" IPv6 "]")
	// or an IPv4 address. The IPv6 form is canonicalised (RFC 5952) so
	// that [0::1] and [::1] compare equal.
	if s[0] == '[' {
		if len(s) < 3 || s[len(s)-1] != ']' {
			return "", &Error{Part: PartDomain, Msg: "malformed IP literal"}
		}
		a, err := netip.ParseAddr(s[1 : len(s)-1])
		if err != nil || !a.Is6() || a.Zone() != "" {
			return "", &Error{Part: PartDomain, Msg: "invalid IPv6 literal"}
		}
		return "[" + a.String() + "]", nil
	}
	if a, err := netip.ParseAddr(s); err == nil {
		if !a.Is4() {
			// A bare IPv6 address must be bracketed.
			return "", &Error{Part: PartDomain, Msg: "IPv6 address must be enclosed in [ ]"}
		}
		return a.String(), nil
	}
	// RFC 7622 §3.2.1/§3.2.2: IDNA2008 with the RFC 5895 mappings (case,
	// width, NFC); A-labels are converted to U-labels so that the stored
	// form is unique.
	p, err := idna.Lookup.ToUnicode(s)
	if err != nil {
		return "", &Error{Part: PartDomain, Msg: err.Error()}
	}
	// A mapped separator (e.g. U+3002) may have produced a trailing dot or
	// an empty label; neither is part of a canonical domain.
	if p == "" || len(p) > MaxPartLen || p[len(p)-1] == '.' || p[0] == '.' || strings.Contains(p, "..") {
		return "", &Error{Part: PartDomain, Msg: "must be 1 to 1023 bytes of non-empty labels"}
	}
	return p, nil
}

// fastLocal reports whether s is empty or already a canonical localpart made
// only of ASCII. UsernameCaseMapped leaves printable ASCII other than
// uppercase letters unchanged (IdentifierClass allows %x21-7E; width mapping,
// NFC and the bidi rule are identities on it), so only the RFC 7622
// exclusions need checking.
func fastLocal(s string) bool {
	if len(s) > MaxPartLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= 0x20 || c >= 0x7f || ('A' <= c && c <= 'Z') {
			return false
		}
		switch c {
		case '"', '&', '\'', '/', ':', '<', '>', '@':
			return false
		}
	}
	return true
}

// fastResource reports whether s is empty or already a canonical
// resourcepart of printable ASCII (OpaqueString leaves %x20-7E unchanged).
func fastResource(s string) bool {
	if len(s) > MaxPartLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f {
			return false
		}
	}
	return true
}

// fastDomain reports whether s is an LDH domain name that IDNA would return
// unchanged: lowercase letters, digits and hyphens in labels of 1..63 bytes,
// no label starting or ending with '-', no "--" in positions 3-4 (which
// covers A-labels "xn--", converted to U-labels on the slow path), no
// trailing dot. Anything else, including IP literals, takes the slow path.
func fastDomain(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == '.' {
			label := s[start:i]
			if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
				return false
			}
			if len(label) >= 4 && label[2] == '-' && label[3] == '-' {
				return false
			}
			start = i + 1
			continue
		}
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Local returns the localpart, or "" if there is none.
func (j JID) Local() string { return j.full[:j.localLen] }

// Domain returns the domainpart.
func (j JID) Domain() string {
	if j.localLen == 0 {
		return j.full[:j.domainEnd]
	}
	return j.full[j.localLen+1 : j.domainEnd]
}

// Resource returns the resourcepart, or "" if there is none.
func (j JID) Resource() string {
	if int(j.domainEnd) >= len(j.full) {
		return ""
	}
	return j.full[j.domainEnd+1:]
}

// Bare returns the JID without its resourcepart.
func (j JID) Bare() JID {
	return JID{full: j.full[:j.domainEnd], localLen: j.localLen, domainEnd: j.domainEnd}
}

// DomainJID returns a JID consisting only of the domainpart (the server or
// service the address belongs to).
func (j JID) DomainJID() JID {
	d := j.Domain()
	return JID{full: d, domainEnd: int32(len(d))}
}

// IsBare reports whether j has no resourcepart.
func (j JID) IsBare() bool { return int(j.domainEnd) >= len(j.full) }

// IsZero reports whether j is the zero JID.
func (j JID) IsZero() bool { return j.full == "" }

// String returns the canonical string form of j.
func (j JID) String() string { return j.full }

// WithResource returns j with its resourcepart replaced by r, prepared with
// the OpaqueString profile. An empty r yields the bare JID.
func (j JID) WithResource(r string) (JID, error) {
	if j.IsZero() {
		return JID{}, &Error{Part: PartDomain, Msg: "empty domainpart"}
	}
	b := j.Bare()
	if r == "" {
		return b, nil
	}
	if !fastResource(r) {
		var err error
		if r, err = prepareResource(r); err != nil {
			return JID{}, err
		}
	}
	return JID{full: b.full + "/" + r, localLen: b.localLen, domainEnd: b.domainEnd}, nil
}

// MarshalText implements encoding.TextMarshaler (used by encoding/xml for
// attributes and by TOML/JSON encoders).
func (j JID) MarshalText() ([]byte, error) { return []byte(j.full), nil }

// UnmarshalText implements encoding.TextUnmarshaler. Empty text yields the
// zero JID.
func (j *JID) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*j = JID{}
		return nil
	}
	p, err := Parse(string(b))
	if err != nil {
		return err
	}
	*j = p
	return nil
}
