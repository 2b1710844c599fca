package muc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"maps"
	"slices"

	"github.com/xmppd/xmppd/feature"
	"github.com/xmppd/xmppd/protocol/jid"
	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/protocol/xmlstream"
)

var bg = context.Background()

// Messages between the service part and the room parts.
type (
	// forward is a stanza for one room (to room@service or room@service/nick). refuse, when set, is why the
	// sender may not create the room if it does not exist (§10.1.1); the room decides whether it exists.
	forward struct {
		st     *stanza.Routed
		refuse *stanza.Error
	}
	// roomInfo is what the directory keeps of a room, sent by the room whenever it changed; gone: the room
	// does not exist (any more).
	roomInfo struct {
		name    string
		summary summary
		gone    bool
	}
	// commitRoom: the room has archived messages to commit; the service answers with commitNow, which reaches
	// the room after the stanzas already queued for it (part.go, the archive's group commit).
	commitRoom struct{ name string }
	commitNow  struct{}
)

// summary is a room as the directory knows it.
type summary struct {
	Title   string
	Public  bool
	Creator string
	// pending: a creating presence was forwarded and the room has not answered yet.
	pending bool
}

// service is the service part: the room directory.
type service struct {
	h     feature.ServiceHost
	lim   limits
	rooms map[string]summary // nil until first needed
}

func newService(h feature.ServiceHost) *service {
	return &service{h: h, lim: limitsOf(h.Server().Config())}
}

func (s *service) load() error {
	if s.rooms != nil {
		return nil
	}
	list, err := s.h.Server().Store().MUCRooms(bg, s.h.JID().String())
	if err != nil {
		return err
	}
	s.rooms = make(map[string]summary, len(list))
	for _, r := range list {
		st, err := decodeState(r.Config, roomConf{})
		if err != nil {
			s.h.Log().Warn().Err(err).Str("room", r.Room).Msg("muc: unreadable room state")
		}
		s.rooms[r.Room] = st.summary()
	}
	return nil
}

// Handle takes the rooms' news.
func (s *service) Handle(msg any) {
	if c, ok := msg.(commitRoom); ok {
		s.h.ToEntity(c.name, commitNow{}) // behind what is already in the room's mailbox: the group commit
		return
	}
	m, ok := msg.(roomInfo)
	if !ok || s.rooms == nil {
		return
	}
	if m.gone {
		delete(s.rooms, m.name)
		return
	}
	s.rooms[m.name] = m.summary
}

// Stanza (feature.ServiceStanza): the service JID's own stanzas, or a room's.
func (s *service) Stanza(st *stanza.Routed) {
	if err := s.load(); err != nil {
		s.h.Log().Error().Err(err).Msg("muc: loading rooms")
		s.h.Bounce(st, stanza.NewError(stanza.InternalServerError))
		return
	}
	room := st.To.Local()
	if room == "" {
		s.own(st)
		return
	}
	_, known := s.rooms[room]
	if st.Head.Name == "presence" && st.Head.Type == "" {
		// Every entering presence carries the verdict on creation, also for a room the directory knows: it may
		// have been destroyed (or emptied, if temporary) by the time the presence reaches it.
		refuse := s.mayCreate(st.From, !known)
		switch {
		case refuse != nil && !known:
			// The room's own answer to a refused entry (§7.2: with the MUC <x/>).
			r := newRoom(s.h.Server(), s.h.JID(), room)
			r.joinFail(st, *refuse)
			for _, out := range r.out {
				s.h.Route(out)
			}
		case !known:
			s.rooms[room] = summary{Creator: st.From.Bare().String(), pending: true}
			s.h.ToEntity(room, forward{st: st})
		default:
			s.h.ToEntity(room, forward{st: st, refuse: refuse})
		}
		return
	}
	if !known {
		if st.Head.Name != "presence" {
			s.h.Bounce(st, stanza.NewError(stanza.ItemNotFound))
		}
		return
	}
	s.h.ToEntity(room, forward{st: st})
}

// mayCreate applies [muc] create and, when count, max_rooms_per_user (nil: allowed).
func (s *service) mayCreate(from jid.JID, count bool) *stanza.Error {
	srv := s.h.Server()
	var ok bool
	switch s.lim.create {
	case "anyone":
		ok = true
	case "admins":
		ok = srv.IsAdmin(from)
	default:
		ok = srv.Config().Serves(from.Domain()) && from.Local() != ""
	}
	if !ok {
		e := stanza.NewError(stanza.NotAllowed).WithText("you may not create rooms here") // §10.1.1
		return &e
	}
	if !count {
		return nil
	}
	bare, n := from.Bare().String(), 0
	for _, r := range s.rooms {
		if r.Creator == bare {
			n++
		}
	}
	if n >= s.lim.roomsPerUser && !srv.IsAdmin(from) {
		srv.LimitHit(LimitRooms)
		e := stanza.NewError(stanza.PolicyViolation).WithText("too many rooms (muc.max_rooms_per_user)")
		return &e
	}
	return nil
}

// own answers what is addressed to the service JID itself (disco#info is the host's).
func (s *service) own(st *stanza.Routed) {
	q := feature.ServiceQuery(s.h.Bounce, st)
	if q == nil {
		return
	}
	switch {
	case q.Name == xmlstream.Name{Space: stanza.NSDiscoIt, Local: "query"} && st.Head.Type == "get":
		if q.Attr("node") != "" {
			s.h.Bounce(st, stanza.NewError(stanza.ItemNotFound))
			return
		}
		s.h.Route(feature.Answered(st, s.discoItems()))
	case q.Name == xmlstream.Name{Space: NSUnique, Local: "unique"} && st.Head.Type == "get":
		// §10.1.4: a name no room has.
		name := newID()
		for s.rooms[name] != (summary{}) {
			name = newID()
		}
		s.h.Route(feature.Answered(st, "<unique xmlns='"+NSUnique+"'>"+name+"</unique>"))
	case q.Name == xmlstream.Name{Space: stanza.NSDiscoInf, Local: "query"}:
		s.h.Bounce(st, stanza.NewError(stanza.ItemNotFound)) // a node of the service: none
	default:
		s.h.Bounce(st, stanza.NewError(stanza.ServiceUnavailable))
	}
}

// discoItems lists the public rooms with their names (§6.3).
func (s *service) discoItems() string {
	b := []byte("<query xmlns='" + stanza.NSDiscoIt + "'>")
	for _, name := range slices.Sorted(maps.Keys(s.rooms)) {
		r := s.rooms[name]
		if !r.Public || r.pending {
			continue
		}
		b = append(b, "<item jid='"...)
		b = xmlstream.AppendEscapedAttr(b, name+"@"+s.h.JID().String())
		b = append(b, "' name='"...)
		title := r.Title
		if title == "" {
			title = name
		}
		b = xmlstream.AppendEscapedAttr(b, title)
		b = append(b, "'/>"...)
	}
	return string(append(b, "</query>"...))
}

func newID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
