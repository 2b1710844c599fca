// Package features is the registry: the one ordered list of every feature the server has. Adding a feature is
// its package under features/ and one line here. The order is the order of the hooks on the stanza path (an
// Outbound or Inbound hook sees what the features before it let through) and of the disco node providers.
package features

import (
	"github.com/xmppd/xmppd/feature"
	"github.com/xmppd/xmppd/features/adhoc"
	"github.com/xmppd/xmppd/features/blocklist"
	"github.com/xmppd/xmppd/features/caps"
	"github.com/xmppd/xmppd/features/carbons"
	"github.com/xmppd/xmppd/features/csi"
	"github.com/xmppd/xmppd/features/disco"
	"github.com/xmppd/xmppd/features/entitytime"
	"github.com/xmppd/xmppd/features/extdisco"
	"github.com/xmppd/xmppd/features/lastactivity"
	"github.com/xmppd/xmppd/features/legacysession"
	"github.com/xmppd/xmppd/features/mam"
	"github.com/xmppd/xmppd/features/muc"
	"github.com/xmppd/xmppd/features/pep"
	"github.com/xmppd/xmppd/features/ping"
	"github.com/xmppd/xmppd/features/privatexml"
	"github.com/xmppd/xmppd/features/proxy65"
	"github.com/xmppd/xmppd/features/pubsub"
	"github.com/xmppd/xmppd/features/push"
	"github.com/xmppd/xmppd/features/register"
	"github.com/xmppd/xmppd/features/upload"
	"github.com/xmppd/xmppd/features/vcard"
	"github.com/xmppd/xmppd/features/version"
)

// All is every feature, in hook order: the ones that consume stanzas (blocking refuses before anything else
// sees a stanza; caps consumes the answers to its own queries) before the ones that copy (carbons) or hold
// back (csi, last on the way to the client).
func All() []*feature.Feature {
	return []*feature.Feature{
		legacysession.Feature,
		ping.Feature,
		register.Feature,
		disco.Feature,
		caps.Feature,
		version.Feature,
		entitytime.Feature,
		lastactivity.Feature,
		vcard.Feature,
		privatexml.Feature,
		blocklist.Feature,
		carbons.Feature,
		mam.Feature,
		csi.Feature,
		adhoc.Feature,
		pep.Feature,
		pep.BookmarksConversion,
		pep.AvatarConversion,
		pubsub.Feature,
		push.Feature,
		muc.Feature,
		upload.Feature,
		proxy65.Feature,
		extdisco.Feature,
	}
}
