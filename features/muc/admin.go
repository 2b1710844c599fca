package muc

import (
	"slices"

	"github.com/xmppd/xmppd/protocol/jid"
	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/protocol/xmlstream"
)

// iq: the room's own IQs, or one to an occupant (room/nick).
func (r *room) iq(st *stanza.Routed) {
	if st.To.Resource() != "" {
		r.iqToOccupant(st)
		return
	}
	if st.Head.Type != "get" && st.Head.Type != "set" {
		return
	}
	n, err := st.Node()
	if err != nil {
		return
	}
	kids := n.Elements()
	if len(kids) != 1 {
		r.fail(st, stanza.NewError(stanza.BadRequest))
		return
	}
	q, get := kids[0], st.Head.Type == "get"
	switch q.Name {
	case xmlstream.Name{Space: stanza.NSDiscoInf, Local: "query"}:
		if !get {
			r.fail(st, stanza.NewError(stanza.BadRequest))
			return
		}
		r.discoInfo(st, q.Attr("node"))
	case xmlstream.Name{Space: stanza.NSDiscoIt, Local: "query"}:
		// §6.5: the occupants are not listed (their nicknames are for occupants to see).
		r.result(st, "<query xmlns='"+stanza.NSDiscoIt+"'/>")
	case xmlstream.Name{Space: NSAdmin, Local: "query"}:
		r.admin(st, q, get)
	case xmlstream.Name{Space: NSOwner, Local: "query"}:
		r.owner(st, q, get)
	case xmlstream.Name{Space: NSVCard, Local: "vCard"}:
		r.vcard(st, q, get)
	case xmlstream.Name{Space: stanza.NSPing, Local: "ping"}:
		r.result(st, "")
	case xmlstream.Name{Space: stanza.NSRegister, Local: "query"}:
		r.register(st, q, get)
	case xmlstream.Name{Space: NSMAM, Local: "query"}, xmlstream.Name{Space: NSMAM, Local: "metadata"}:
		r.mam(st, q, get) // archive.go
	default:
		r.fail(st, stanza.NewError(stanza.ServiceUnavailable))
	}
}

// iqToOccupant: XEP-0410 self-ping is answered by the room; other IQs are passed between occupants (§7.5:
// from the sender's room JID to the target's full JID, answers back the same way).
func (r *room) iqToOccupant(st *stanza.Routed) {
	o := r.byJID[st.From]
	if o == nil {
		if st.Head.Type == "get" || st.Head.Type == "set" {
			r.fail(st, stanza.NewError(stanza.NotAcceptable).WithText("you are not an occupant")) // XEP-0410 §3
		}
		return
	}
	n, err := st.Node()
	if err != nil {
		return
	}
	if st.To.Resource() == o.nick && (st.Head.Type == "get" || st.Head.Type == "set") {
		if q := n.FirstElement(); q != nil && q.Name == (xmlstream.Name{Space: stanza.NSPing, Local: "ping"}) {
			r.result(st, "") // XEP-0410 §3: the room answers for the occupant
			return
		}
	}
	to := r.byNick[st.To.Resource()]
	if to == nil {
		r.fail(st, stanza.NewError(stanza.ItemNotFound))
		return
	}
	r.send("iq", st.Head.Type, o.nick, to.full(), st.Head.ID, mucChildren(n, false)) // an IQ has one answer: the primary resource
}

// ---- roles and affiliations (§8, §9, §10) ----

type change struct {
	item              *xmlstream.Node
	target            *occupant // role changes
	bare              string    // affiliation changes
	role, aff, reason string
	nick              string
}

// admin: the muc#admin requests: lists (get) and changes (set).
func (r *room) admin(st *stanza.Routed, q *xmlstream.Node, get bool) {
	actor := r.byJID[st.From]
	actorAff := r.affOf(st.From.Bare().String())
	actorRole := RoleNone
	if actor != nil {
		actorRole = actor.role
	}
	items := q.ChildrenNamed(NSAdmin, "item")
	if len(items) == 0 {
		r.fail(st, stanza.NewError(stanza.BadRequest))
		return
	}
	if get {
		r.list_(st, items[0], actorRole, actorAff)
		return
	}
	var changes []change
	for _, it := range items {
		c, e, ok := r.check(it, actor, actorRole, actorAff, st.From.Bare().String())
		if !ok {
			r.fail(st, e)
			return
		}
		changes = append(changes, c)
	}
	// §10.6: the last owner may not go.
	owners := 0
	for _, a := range r.affs {
		if a.aff == Owner {
			owners++
		}
	}
	for _, c := range changes {
		if c.bare != "" && r.affOf(c.bare) == Owner && c.aff != Owner {
			owners--
		}
		if c.aff == Owner && r.affOf(c.bare) != Owner {
			owners++
		}
	}
	if owners < 1 {
		r.fail(st, stanza.NewError(stanza.Conflict).WithText("a room needs an owner"))
		return
	}
	actorNick := ""
	if actor != nil {
		actorNick = actor.nick
	}
	for _, c := range changes {
		if c.bare != "" {
			r.changeAff(c.bare, c.aff, c.nick, c.reason, actorNick)
		} else {
			r.changeRole(c.target, c.role, c.reason, actorNick)
		}
	}
	r.result(st, "")
}

// check validates one item of a change request against §§8–10 (who may change what); ok false with the error.
func (r *room) check(it *xmlstream.Node, actor *occupant, actorRole, actorAff, actorBare string) (change, stanza.Error, bool) {
	c := change{item: it, role: it.Attr("role"), aff: it.Attr("affiliation"), reason: childText(it, NSAdmin, "reason"), nick: it.Attr("nick")}
	forbidden := stanza.NewError(stanza.Forbidden)
	notAllowed := stanza.NewError(stanza.NotAllowed)
	bad := stanza.NewError(stanza.BadRequest)
	switch {
	case c.aff != "" && c.role != "":
		return c, bad, false
	case c.role != "":
		// §8.2–§8.4, §9.6, §9.7: by nickname, moderators only.
		if actorRole != Moderator {
			return c, forbidden, false
		}
		switch c.role {
		case Moderator, Participant, Visitor, RoleNone:
		default:
			return c, bad, false
		}
		c.target = r.byNick[c.nick]
		if c.target == nil {
			return c, stanza.NewError(stanza.ItemNotFound), false
		}
		targetAff := r.affOf(c.target.bare)
		if c.role == Moderator || c.target.role == Moderator && c.role != RoleNone {
			// granting or revoking moderator: admins and owners (§9.6, §9.7)
			if rank(actorAff) < rank(Admin) {
				return c, forbidden, false
			}
		}
		// §8.2, §8.4, §9.7: nobody changes the role of an admin or owner unless an owner changes an admin's.
		if rank(targetAff) >= rank(Admin) && c.role != Moderator && !(actorAff == Owner && targetAff == Admin) {
			return c, notAllowed, false
		}
		return c, stanza.Error{}, true
	case c.aff != "":
		switch c.aff {
		case Owner, Admin, Member, AffNone, Outcast:
		default:
			return c, bad, false
		}
		if j := it.Attr("jid"); j != "" {
			pj, err := jid.Parse(j)
			if err != nil {
				return c, stanza.NewError(stanza.JIDMalformed), false
			}
			c.bare = pj.Bare().String()
		} else if t := r.byNick[c.nick]; t != nil {
			c.bare = t.bare
			c.nick = ""
		} else {
			return c, bad, false
		}
		cur := r.affOf(c.bare)
		// §9 (member, none, outcast) by admins; §10 (owner, admin) by owners, and so is any change of an
		// owner's or admin's affiliation.
		switch {
		case rank(actorAff) < rank(Admin):
			return c, forbidden, false
		case (c.aff == Owner || c.aff == Admin || cur == Owner || cur == Admin) && actorAff != Owner:
			if cur == Owner || cur == Admin {
				return c, notAllowed, false // §9.1: an admin may not ban (or demote) an admin or owner
			}
			return c, forbidden, false
		}
		if c.nick != "" {
			if other := r.nickOwner(c.nick); other != "" && other != c.bare {
				return c, stanza.NewError(stanza.Conflict).WithText("the nickname is reserved by someone else"), false
			}
		}
		_ = actorBare
		return c, stanza.Error{}, true
	}
	return c, bad, false
}

// changeRole applies a role change to an occupant: kick (307), voice, moderator.
func (r *room) changeRole(t *occupant, role, reason, actor string) {
	if r.byJID[t.full()] != t {
		return // already gone by an earlier item
	}
	ex := itemExtra{actor: actor, reason: reason}
	if role == RoleNone {
		r.remove(t)
		t.role = RoleNone
		t.payload = ""
		r.unavailable(t, []int{307}, nil, ex) // §8.2
		r.emptied()
		return
	}
	old := t.role
	t.role = role
	r.broadcast(t, "", nil, nil, ex)
	r.newModerator(t, old)
}

// newModerator: in a semi-anonymous room an occupant who just became a moderator is told every other
// occupant's real JID (their presence again, now with <item jid/>, §5.2.1).
func (r *room) newModerator(o *occupant, old string) {
	if o.role != Moderator || old == Moderator || r.st.Conf.WhoIs == "anyone" {
		return
	}
	for _, x := range r.list {
		if x != o {
			r.presenceOf(x, o, "", nil, itemExtra{})
		}
	}
}

// setAff records an affiliation (and a reserved nick, "" keeping the old one) to be stored.
func (r *room) setAff(bare, aff, nick string) {
	a := r.affs[bare]
	a.aff = aff
	if nick != "" {
		a.nick = nick
	}
	if aff == AffNone && nick == "" {
		a.nick = ""
	}
	if a.aff == AffNone && a.nick == "" {
		delete(r.affs, bare)
	} else {
		r.affs[bare] = a
	}
	r.dirtyAff[bare] = true
}

// changeAff applies an affiliation change and what it does to the occupants of that bare JID: banned (301),
// removed from a members-only room (321), or their role follows the new affiliation.
func (r *room) changeAff(bare, aff, nick, reason, actor string) {
	r.setAff(bare, aff, nick)
	if aff == Outcast {
		a := r.affs[bare]
		a.reason = reason
		r.affs[bare] = a
	}
	ex := itemExtra{actor: actor, reason: reason}
	for _, o := range slices.Clone(r.list) {
		if o.bare != bare {
			continue
		}
		switch {
		case aff == Outcast:
			r.remove(o)
			o.role, o.payload = RoleNone, ""
			r.unavailable(o, []int{301}, nil, ex) // §9.1
		case r.st.Conf.MembersOnly && rank(aff) < rank(Member):
			r.remove(o)
			o.role, o.payload = RoleNone, ""
			r.unavailable(o, []int{321}, nil, ex) // §9.4
		default:
			old := o.role
			o.role = r.defaultRole(aff)
			r.broadcast(o, "", nil, nil, ex)
			r.newModerator(o, old)
		}
	}
	r.emptied()
}

// list_ answers a list request (§8.5 voice list, §9.2 ban list, §9.5 member list, §9.8 moderator list, §10.5
// owner list, §10.8 admin list).
func (r *room) list_(st *stanza.Routed, it *xmlstream.Node, actorRole, actorAff string) {
	var b []byte
	b = append(b, "<query xmlns='"+NSAdmin+"'>"...)
	if role := it.Attr("role"); role != "" {
		if actorRole != Moderator {
			r.fail(st, stanza.NewError(stanza.Forbidden))
			return
		}
		if role != Moderator && role != Participant && role != Visitor {
			r.fail(st, stanza.NewError(stanza.BadRequest))
			return
		}
		for _, o := range r.list {
			if o.role == role {
				b = append(b, "<item affiliation='"+r.affOf(o.bare)+"' role='"+o.role+"' nick='"...)
				b = xmlstream.AppendEscapedAttr(b, o.nick)
				b = append(b, "' jid='"...)
				b = append(b, o.sess[0].fullStr...)
				b = append(b, "'/>"...)
			}
		}
	} else {
		aff := it.Attr("affiliation")
		switch aff {
		case Member, Outcast:
			if rank(actorAff) < rank(Admin) {
				r.fail(st, stanza.NewError(stanza.Forbidden))
				return
			}
		case Owner, Admin:
			if actorAff != Owner {
				r.fail(st, stanza.NewError(stanza.Forbidden))
				return
			}
		default:
			r.fail(st, stanza.NewError(stanza.BadRequest))
			return
		}
		for _, bare := range sortedKeys(r.affs) {
			a := r.affs[bare]
			if a.aff != aff {
				continue
			}
			b = append(b, "<item affiliation='"+aff+"' jid='"...)
			b = xmlstream.AppendEscapedAttr(b, bare)
			b = append(b, '\'')
			if a.nick != "" {
				b = append(b, " nick='"...)
				b = xmlstream.AppendEscapedAttr(b, a.nick)
				b = append(b, '\'')
			}
			if a.reason != "" {
				b = append(b, "><reason>"...)
				b = xmlstream.AppendEscapedText(b, a.reason)
				b = append(b, "</reason></item>"...)
			} else {
				b = append(b, "/>"...)
			}
		}
	}
	r.result(st, string(append(b, "</query>"...)))
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
