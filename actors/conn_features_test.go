package actors

import (
	"strings"
	"testing"

	"github.com/xmppd/xmppd/protocol/sasl"
)

// The features table built at start answers every stream exactly as building the features for it would: each
// combination of TLS and channel-binding types before authentication, and the authenticated stream.
func TestFeatureTable(t *testing.T) {
	srv := startDebugServer(t, "")
	e := srv.env
	if e.features == nil {
		t.Fatal("no feature table")
	}
	seen := map[string]bool{}
	for _, secure := range []bool{false, true} {
		for m := 0; m < 8; m++ {
			c := &conn{env: e, state: stateNegot, secure: secure}
			cb := sasl.ChannelBinding{}
			if m&1 != 0 {
				cb.Exporter = make([]byte, 32)
			}
			if m&2 != 0 {
				cb.Unique = make([]byte, 12)
			}
			if m&4 != 0 {
				cb.EndPoint = make([]byte, 32)
			}
			c.cb = cb
			got, want := c.features(), c.buildFeatures()
			if got != want {
				t.Errorf("secure %v, cb %03b:\n got %s\nwant %s", secure, m, got, want)
			}
			seen[got] = true
		}
	}
	if len(seen) < 3 { // without TLS (STARTTLS offered), with TLS and no binding, with bindings (-PLUS)
		t.Errorf("only %d distinct feature sets", len(seen))
	}
	authed := &conn{env: e, state: stateAuthed, secure: true}
	if got := authed.features(); got != authed.buildFeatures() || got == "" {
		t.Errorf("authenticated stream: %s", got)
	}
	if e.features.bound != boundFeatures(e) || !strings.Contains(e.features.bound, "urn:xmpp:sm:3") {
		t.Errorf("bound stream after SASL2: %s", e.features.bound)
	}
	other := &conn{env: e, state: stateBound}
	if got := other.features(); got != other.buildFeatures() {
		t.Errorf("bound stream: %s", got)
	}
}
