package stanza

// Namespaces of XEPs that more than one feature needs (each feature keeps the ones only it uses). Append only.
const (
	// XEP-0280 message carbons: the carbons feature, and CSI, which looks inside carbons for a body.
	NSCarbons = "urn:xmpp:carbons:2"
	// XEP-0297 stanza forwarding: the <forwarded/> wrapper of carbons.
	NSForward = "urn:xmpp:forward:0"
	// XEP-0334 message processing hints (<no-copy/>, <no-store/>, ...).
	NSHints = "urn:xmpp:hints"
)
