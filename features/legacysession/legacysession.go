// Package legacysession is what every server answers: the RFC 3921 §3 session establishment IQ that old
// clients still send (a no-op since RFC 6120), and the base feature of the server identity ("msgoffline":
// offline storage, which the user actor does). It is the feature named "core" in [features] disable.
package legacysession

import (
	"github.com/xmppd/xmppd/feature"
	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/protocol/xmlstream"
)

// Feature is the core feature.
var Feature = &feature.Feature{
	Name:       "core",
	ServerVars: []string{"msgoffline"},
	IQs: []feature.IQRoute{{
		Name: xmlstream.Name{Space: stanza.NSSession, Local: "session"},
		// RFC 3921 §3: the session is already established once bound; answer success.
		Server:  ok,
		Session: ok,
	}},
}

func ok(q *feature.IQ) { q.Result("") }
