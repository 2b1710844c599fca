package adhoc

import (
	"context"
	"errors"
	"net"
	"strings"
	"time"

	"github.com/xmppd/xmppd/feature"
	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/storage"
)

// Questions from an admin's session to user parts (Session.Survey, Session.Ask) and their answers, and the
// messages that need no answer (Session.ToUserOf). All are immutable values.
type (
	// populationQuery asks a user of domain about its sessions; userState answers.
	populationQuery struct{ Domain string }
	userState       struct {
		Bare string
		// Online: at least one session; Active: see population.
		Online, Active bool
	}

	// announceQuery delivers payload as a headline from the domain to the available resources of users of
	// domain ("" for every domain); announced answers.
	announceQuery struct{ Domain, Payload string }
	announced     struct{ Reached bool }

	// motdUpdate is the new message of the day of domain (id "" when deleted); motdDelivered answers.
	motdUpdate    struct{ Domain, ID, Body string }
	motdDelivered struct{ Delivered bool }

	rosterQuery  struct{}
	rosterAnswer struct{ Items []storage.RosterItem }

	statsQuery  struct{}
	statsAnswer struct {
		RosterSize           int
		Resources, Addresses []string
	}

	lastLoginQuery  struct{}
	lastLoginAnswer struct{ At time.Time }

	// endSessions ends the session of resource ("" for every session) with a stream error; as a question,
	// sessionsEnded answers.
	endSessions struct {
		Resource, Condition, Text string
	}
	sessionsEnded struct{ N int }

	// accountDeleted: an admin deleted the account.
	accountDeleted struct{}
)

// userPart is the feature's part of one user actor.
type userPart struct {
	u feature.User
	// lastLogin is when a session of the user was last bound while this actor lived.
	lastLogin time.Time
	// The message of the day of the user's domain and the id of the last one the user got, read from storage
	// once (motdLoaded), then kept current by motdUpdate.
	motdLoaded   bool
	motdID, motd string
	motdSeen     string
}

func (p *userPart) Bound(feature.Resource) { p.lastLogin = time.Now() }

// PresenceChanged sends the message of the day to a resource that just became available, if the user has not
// had this one yet: XEP-0133 §4.24's note has it "sent once to all users", not at every login.
func (p *userPart) PresenceChanged(r feature.Resource, initial bool) {
	if !initial || !p.loadMOTD() {
		return
	}
	p.offerMOTD([]feature.Resource{r})
}

func (p *userPart) Answer(q any) any {
	switch m := q.(type) {
	case populationQuery:
		if m.Domain != p.u.Bare().Domain() {
			return nil
		}
		rs := p.u.Resources()
		st := userState{Bare: p.u.Bare().String(), Online: len(rs) > 0}
		for _, r := range rs {
			st.Active = st.Active || isActive(r)
		}
		return st
	case announceQuery:
		if m.Domain != "" && m.Domain != p.u.Bare().Domain() {
			return nil
		}
		return announced{Reached: p.announce(m.Payload)}
	case motdUpdate:
		if m.Domain != p.u.Bare().Domain() {
			return nil
		}
		if !p.loadMOTD() {
			return motdDelivered{}
		}
		// loadMOTD may just have read the new one from storage; either way it is m now.
		p.motdID, p.motd = m.ID, m.Body
		return motdDelivered{Delivered: p.offerMOTD(p.u.Resources())}
	case rosterQuery:
		return rosterAnswer{Items: p.u.Roster()}
	case statsQuery:
		st := statsAnswer{RosterSize: len(p.u.Roster())}
		for _, r := range p.u.Resources() {
			st.Resources = append(st.Resources, r.Full.Resource())
			if r.Addr != "" {
				host, _, err := net.SplitHostPort(r.Addr)
				if err != nil {
					host = r.Addr
				}
				st.Addresses = append(st.Addresses, host)
			}
		}
		return st
	case lastLoginQuery:
		if len(p.u.Resources()) > 0 && !p.lastLogin.IsZero() {
			return lastLoginAnswer{At: p.lastLogin}
		}
		at, _ := p.u.LastSeen()
		return lastLoginAnswer{At: at}
	case endSessions:
		return sessionsEnded{N: p.endSessions(m)}
	}
	return nil
}

func (p *userPart) Handle(msg any) {
	switch m := msg.(type) {
	case endSessions:
		p.endSessions(m)
	case accountDeleted:
		p.accountDeleted()
	}
}

// isActive: available, and not away or xa (see population).
func isActive(r feature.Resource) bool {
	if !r.Available || r.Presence == nil {
		return false
	}
	n, err := r.Presence.Node()
	if err != nil {
		return false
	}
	show := ""
	if s := n.Child(stanza.NSClient, "show"); s != nil {
		show = strings.TrimSpace(s.TextContent())
	}
	return show != "away" && show != "xa"
}

func (p *userPart) announce(payload string) bool {
	domain := p.u.Bare().DomainJID()
	reached := false
	for _, r := range p.u.Resources() {
		if r.Available {
			p.u.Deliver(r, stanza.Generate("message", "headline", domain, r.Full, "", payload))
			reached = true
		}
	}
	return reached
}

// loadMOTD reads the message of the day and what the user has seen, once per actor (false: storage failed; try
// again next time).
func (p *userPart) loadMOTD() bool {
	if p.motdLoaded {
		return true
	}
	ctx, store, bare := context.Background(), p.u.Server().Store(), p.u.Bare()
	v, err := store.GetKV(ctx, bare.Domain(), KVMOTD, "motd")
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		p.u.Log().Warn().Err(err).Msg("reading the message of the day failed")
		return false
	}
	p.motdID, p.motd, _ = strings.Cut(v, "\n")
	if p.motdID == "" {
		// No message of the day (the usual case): what the user saw last does not matter, since a new one gets
		// a new id (setMOTD's timestamp), which nobody has seen. One read per login instead of two (issue 17).
		p.motdLoaded = true
		return true
	}
	seen, err2 := store.GetKV(ctx, bare.String(), KVMOTD, "seen")
	if err2 != nil && !errors.Is(err2, storage.ErrNotFound) {
		p.u.Log().Warn().Err(err2).Msg("reading the message of the day failed")
		p.motdID, p.motd = "", ""
		return false
	}
	p.motdSeen = seen
	p.motdLoaded = true
	return true
}

// offerMOTD sends the message of the day to the available resources among rs unless the user already got it,
// and remembers that the user did (true: it was sent).
func (p *userPart) offerMOTD(rs []feature.Resource) bool {
	if p.motdID == "" || p.motd == "" || p.motdSeen == p.motdID {
		return false
	}
	domain := p.u.Bare().DomainJID()
	payload := "<body>" + text(p.motd) + "</body>"
	sent := false
	for _, r := range rs {
		if r.Available {
			// A normal message (no type, RFC 6121 §5.2.2) from the server.
			p.u.Deliver(r, stanza.Generate("message", "", domain, r.Full, p.u.NextID("motd"), payload))
			sent = true
		}
	}
	if !sent {
		return false
	}
	p.motdSeen = p.motdID
	if err := p.u.Server().Store().PutKV(context.Background(), p.u.Bare().String(), KVMOTD, "seen", p.motdID); err != nil {
		p.u.Log().Warn().Err(err).Msg("storing that the message of the day was seen failed")
	}
	return true
}

func (p *userPart) endSessions(m endSessions) int {
	n := 0
	for _, r := range p.u.Resources() {
		if m.Resource == "" || r.Full.Resource() == m.Resource {
			p.u.EndSession(r, m.Condition, m.Text)
			n++
		}
	}
	return n
}

// accountDeleted: the account an admin deleted loses its subscriptions and sessions as if the user had
// cancelled the registration (XEP-0077 §3.2).
func (p *userPart) accountDeleted() { p.u.AccountRemoved() }
