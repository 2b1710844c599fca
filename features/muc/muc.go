// Package muc is XEP-0045 multi-user chat: a service at a domain of its own ([muc] host, conference.<first
// domain> by default), listed in the server's disco#items, with one entity actor (kind room) per active room.
//
// The service part (service.go, in the service actor) owns the directory of rooms: the persistent ones (loaded
// from storage.MUC on first use) and the temporary ones alive now, each with what disco#items lists (name,
// public or hidden) and who created it (the rooms-per-user limit). It answers the service JID (disco#items of
// the public rooms, XEP-0045 §6.3; unique room names, §10.1.4) and hands everything addressed to a room or an
// occupant to that room's actor, with its verdict on whether the sender may create the room if it does not
// exist (§10.1.1: [muc] create, max_rooms_per_user).
//
// The room part (room.go and the files next to it, in the room's actor) owns the room: configuration,
// affiliations with reserved nicknames, subject, occupants with their roles and presence, and a bounded
// in-memory history buffer. The logic is a plain value (room) turning one stanza into a new state and the
// stanzas to send (room.out); the part around it (part.go) loads the room from storage when the actor starts,
// stores what changed before anything is sent (everything acknowledged is stored), routes the output and tells
// the service part when what the directory knows changed. What the room sends goes through the router, so each
// occupant gets the room's stanzas in the order the room sent them; every broadcast is one stanza per occupant,
// addressed to the occupant's full JID (RFC 6121 §8.5.3: that resource only).
//
// Persistent rooms survive restarts (their state is stored on every change); temporary rooms are never stored
// and are destroyed when the last occupant leaves. A room actor without occupants stops after the host's quiet
// period (feature.EntityIdle) and is spawned from storage by the next stanza.
//
// Reserved nicknames come from registration (§7.10, jabber:iq:register with the muc#register form: the user
// becomes a member) and from the affiliation lists (§9.3 <item nick/>).
//
// A room with muc#roomconfig_enablearchiving ([muc.defaults] archive) keeps an XEP-0313 archive of its groupchat
// messages under its bare JID (archive.go), queried through features/mam/mamquery like the accounts' archives.
//
// Several resources of one user may share a nickname (multi-session, §7.2.9 as Prosody does): the others see one
// occupant, messages for it reach every resource, it leaves with its last resource; one resource of several
// cannot change the nickname alone (not-acceptable).
//
// Not implemented (and not advertised): XEP-0317 hats.
package muc

import (
	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/feature"
	"github.com/xmppd/xmppd/protocol/stanza"
)

// Namespaces.
const (
	NS           = "http://jabber.org/protocol/muc"
	NSUser       = NS + "#user"
	NSAdmin      = NS + "#admin"
	NSOwner      = NS + "#owner"
	NSUnique     = NS + "#unique"
	NSRoomConfig = NS + "#roomconfig"
	NSRoomInfo   = NS + "#roominfo"
	NSRequest    = NS + "#request"
	NSSelfPing   = NS + "#self-ping-optimization"
	NSOccupantID = "urn:xmpp:occupant-id:0"
	NSVCard      = "vcard-temp"
	NSVCardUpd   = "vcard-temp:x:update"
	NSMAM        = "urn:xmpp:mam:2"
)

// Limits counted in xmppd_limit_hits_total ([muc] in config.toml).
const (
	LimitRooms     = "muc_rooms_per_user"
	LimitOccupants = "muc_max_occupants"
	LimitRate      = "muc_messages_per_second"
	LimitNick      = "muc_max_nick_length"
)

// EntityKind is the room actors' kind in /debug/actors.
const EntityKind = "room"

// vars are the service JID's features (XEP-0045 §6.2).
var vars = []string{
	stanza.NSDiscoInf,
	stanza.NSDiscoIt,
	NS,
	NSUnique,
}

// Feature is the XEP-0045 service.
var Feature = &feature.Feature{
	Name:   "muc",
	Limits: []string{LimitRooms, LimitOccupants, LimitRate, LimitNick},
	Service: &feature.ServiceSpec{
		Host:       func(cfg *config.Config) string { return cfg.ServiceHost(cfg.MUC.Host) },
		Name:       "Chatrooms",
		Identities: []string{"<identity category='conference' type='text' name='Chatrooms'/>"},
		Vars:       vars,
		New:        func(h feature.ServiceHost) any { return newService(h) },
		EntityKind: EntityKind,
		NewEntity:  func(h feature.EntityHost, key string) any { return newPart(h, key) },
	},
}

// limits is what [muc] allows.
type limits struct {
	create       string
	roomsPerUser int
	occupants    int
	rate         float64
	burst        int
	nick         int
	history      int
	vcardMax     int
	defaults     config.MUCRoomDefaults
	// The room archives' page size, retention and quota ([mam] max_page, retention_days, max_messages).
	mamPage, mamDays, mamMax int
}

func limitsOf(cfg *config.Config) limits {
	m := cfg.MUC
	return limits{create: m.Create, roomsPerUser: m.MaxRoomsPerUser, occupants: m.MaxOccupants,
		rate: m.MessagesPerSecond, burst: m.MessageBurst, nick: m.MaxNickLength, history: m.HistorySize,
		vcardMax: cfg.VCard.MaxSize, defaults: m.Defaults,
		mamPage: cfg.MAM.MaxPage, mamDays: cfg.MAM.RetentionDays, mamMax: cfg.MAM.MaxMessages}
}
