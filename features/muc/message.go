package muc

import (
	"crypto/rand"
	"strings"

	"github.com/xmppd/xmppd/protocol/dataform"
	"github.com/xmppd/xmppd/protocol/jid"
	wire "github.com/xmppd/xmppd/protocol/mam"
	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/protocol/xmlstream"
)

var randRead = rand.Read

// allow takes one message from o's budget ([muc] messages_per_second, message_burst); false: over the limit.
func (r *room) allow(o *occupant) bool {
	o.tokens += r.now.Sub(o.refill).Seconds() * r.lim.rate
	o.refill = r.now
	if max := float64(r.lim.burst); o.tokens > max {
		o.tokens = max
	}
	if o.tokens < 1 {
		r.srv.LimitHit(LimitRate)
		return false
	}
	o.tokens--
	return true
}

func (r *room) tooFast(st *stanza.Routed) {
	r.fail(st, stanza.NewError(stanza.ResourceConstraint).WithText("too many messages (muc.messages_per_second)"))
}

// message: groupchat (§7.4), subject (§8.1), private messages (§7.5), invitations (§7.8), voice requests (§7.13).
func (r *room) message(st *stanza.Routed) {
	o := r.byJID[st.From]
	if st.Head.Type == "error" {
		switch {
		case o == nil:
		case ghostError(st):
			// A copy bounced because the occupant's resource is gone (RFC 6121 §8.5.3.2.1 answers a groupchat
			// message to an unavailable full JID with service-unavailable): remove the ghost (333).
			r.leaveSession(o, st.From, "", []int{333})
		case st.To.Resource() != "":
			r.privateError(o, st)
		}
		return
	}
	n, err := st.Node()
	if err != nil {
		return
	}
	if nick := st.To.Resource(); nick != "" {
		r.private(st, n, o, nick)
		return
	}
	if st.Head.Type == "groupchat" {
		r.groupchat(st, n, o)
		return
	}
	if x := n.Child(NSUser, "x"); x != nil {
		switch {
		case x.Child(NSUser, "invite") != nil:
			r.invite(st, x, o)
			return
		case x.Child(NSUser, "decline") != nil:
			r.decline(st, x)
			return
		}
	}
	if f := dataform.Find(n); f != nil && o != nil {
		if form := dataform.Parse(f); form.FormType == NSRequest {
			r.voiceRequest(st, o, form)
			return
		}
	}
	r.fail(st, stanza.NewError(stanza.BadRequest).WithText("send groupchat messages to the room, chat messages to an occupant"))
}

func (r *room) groupchat(st *stanza.Routed, n *xmlstream.Node, o *occupant) {
	switch {
	case o == nil:
		r.fail(st, stanza.NewError(stanza.NotAcceptable).WithText("only occupants may send messages to the room")) // §7.4
		return
	case !r.allow(o):
		r.tooFast(st)
		return
	}
	n = wire.WithoutStanzaIDs(n, r.jid.String()) // XEP-0359 §3.3: a stanza-id claiming to be the room's is forged
	subj := n.Child("", "subject")
	if subj != nil && n.Child("", "body") == nil {
		// §8.1: moderators, and participants where the configuration lets them.
		if !(o.role == Moderator || (o.role == Participant && r.st.Conf.ChangeSubject)) {
			r.fail(st, stanza.NewError(stanza.Forbidden).WithText("you may not change the subject"))
			return
		}
		r.st.Subject, r.st.SubjectBy, r.st.HasSubj = subj.TextContent(), o.nick, true
		r.dirty = true
		r.fanout(st, o, n, false)
		return
	}
	if o.role == Visitor {
		r.fail(st, stanza.NewError(stanza.Forbidden).WithText("visitors may not speak in a moderated room")) // §7.4
		return
	}
	r.fanout(st, o, n, true)
}

// fanout reflects groupchat message n (a message with a body, or a subject change) to every occupant (the
// sender too, with its id, §7.4), carrying the sender's occupant-id (XEP-0421 §3: one the sender wrote is
// replaced); keeps a message with a body for the history and, in an archiving room, archives either
// (XEP-0313 §6.1.2) and stamps the copies with the archive id.
func (r *room) fanout(st *stanza.Routed, o *occupant, n *xmlstream.Node, body bool) {
	oid := "<occupant-id xmlns='" + NSOccupantID + "' id='" + o.id + "'/>"
	payload := mucChildren(n, false) + oid
	from := r.nickJID(o.nick)
	id := st.Head.ID
	live := payload
	if r.st.Conf.Archive {
		aid := r.archiveMessage(o, id, mucChildren(n, true)+oid, st.From)
		live += wire.StanzaID(aid, r.jid.String())
	}
	keep := body
	// One prefix and suffix for every copy; only 'to' differs.
	pre := []byte("<message from='")
	pre = xmlstream.AppendEscapedAttr(pre, from.String())
	pre = append(pre, "' type='groupchat'"...)
	if id != "" {
		pre = append(pre, " id='"...)
		pre = xmlstream.AppendEscapedAttr(pre, id)
		pre = append(pre, '\'')
	}
	pre = append(pre, " to='"...)
	suf := "'>" + live + "</message>"
	fromStr := from.String()
	// The copies are cut from shared buffers (one string and one array of routed stanzas per fanChunk copies)
	// instead of two allocations each; per chunk, not per room, so that a copy held for long (an offline queue,
	// a stream-management window) keeps at most fanChunk copies' bytes alive.
	r.fanTo = r.fanTo[:0]
	for _, rc := range r.list {
		for i := range rc.sess {
			r.fanTo = append(r.fanTo, &rc.sess[i])
		}
	}
	for start := 0; start < len(r.fanTo); start += fanChunk {
		part := r.fanTo[start:min(start+fanChunk, len(r.fanTo))]
		size := 0
		for _, s := range part {
			size += len(pre) + len(s.fullStr) + len(suf)
		}
		var sb strings.Builder
		sb.Grow(size)
		for _, s := range part {
			sb.Write(pre)
			sb.WriteString(s.fullStr)
			sb.WriteString(suf)
		}
		all := sb.String()
		chunk := make([]stanza.Routed, len(part))
		off := 0
		for i, s := range part {
			l := len(pre) + len(s.fullStr) + len(suf)
			chunk[i] = stanza.Routed{Head: stanza.Head{Name: "message", ID: id, Type: "groupchat", From: fromStr, To: s.fullJID},
				From: from, To: s.full, Raw: all[off : off+l]}
			r.emit(&chunk[i])
			off += l
		}
	}
	clear(r.fanTo)
	if keep && r.lim.history > 0 {
		if len(r.hist) >= r.lim.history {
			r.hist = append(r.hist[:0], r.hist[1:]...)
		}
		r.hist = append(r.hist, hist{nick: o.nick, id: id, payload: payload, at: r.now})
	}
}

// fanChunk is how many groupchat copies share one buffer (fanout).
const fanChunk = 16

// private: a message to room/nick goes to that occupant's full JID, from the sender's room JID (§7.5).
func (r *room) private(st *stanza.Routed, n *xmlstream.Node, o *occupant, nick string) {
	to := r.byNick[nick]
	switch {
	case o == nil:
		r.fail(st, stanza.NewError(stanza.NotAcceptable).WithText("only occupants may send private messages")) // §7.5
		return
	case st.Head.Type == "groupchat":
		r.fail(st, stanza.NewError(stanza.BadRequest)) // §7.5: groupchat is for the room
		return
	case to == nil:
		r.fail(st, stanza.NewError(stanza.ItemNotFound)) // §7.5
		return
	case !r.mayPM(o):
		r.fail(st, stanza.NewError(stanza.Forbidden).WithText("private messages are not allowed here"))
		return
	case !r.allow(o):
		r.tooFast(st)
		return
	}
	payload := mucChildren(n, true) + "<x xmlns='" + NSUser + "'/><occupant-id xmlns='" + NSOccupantID + "' id='" + o.id + "'/>"
	r.sendTo("message", st.Head.Type, o.nick, to, st.Head.ID, payload) // §7.5: every resource of the occupant
}

// privateError hands an error answering a private message back to its sender (to is room/nick of the sender).
func (r *room) privateError(o *occupant, st *stanza.Routed) {
	if to := r.byNick[st.To.Resource()]; to != nil {
		n, _ := st.Node()
		if n != nil {
			r.sendTo("message", "error", o.nick, to, st.Head.ID, mucChildren(n, true))
		}
	}
}

// ghostError: an error that says the entity is not there (rather than refusing one stanza).
func ghostError(st *stanza.Routed) bool {
	n, err := st.Node()
	if err != nil {
		return false
	}
	e := n.Child("", "error")
	if e == nil {
		return false
	}
	for _, c := range e.Elements() {
		if c.Name.Space != stanza.NSStanzas {
			continue
		}
		switch stanza.Condition(c.Name.Local) {
		case stanza.ServiceUnavailable, stanza.RecipientUnavailable, stanza.ItemNotFound, stanza.Gone,
			stanza.RemoteServerNotFound, stanza.RemoteServerTimeout, stanza.Redirect:
			return true
		}
	}
	return false
}

func (r *room) mayPM(o *occupant) bool {
	switch r.st.Conf.AllowPM {
	case "none":
		return false
	case "moderators":
		return o.role == Moderator
	case "participants":
		return o.role == Moderator || o.role == Participant
	}
	return true
}

// invite: a mediated invitation (§7.8.2), passed on from the room with the inviter's JID.
func (r *room) invite(st *stanza.Routed, x *xmlstream.Node, o *occupant) {
	if o == nil {
		r.fail(st, stanza.NewError(stanza.NotAcceptable).WithText("only occupants may invite"))
		return
	}
	aff := r.affOf(o.bare)
	if !r.st.Conf.AllowInvites && o.role != Moderator && rank(aff) < rank(Admin) {
		r.fail(st, stanza.NewError(stanza.Forbidden).WithText("only moderators may invite to this room"))
		return
	}
	for _, inv := range x.ChildrenNamed(NSUser, "invite") {
		to, err := jid.Parse(inv.Attr("to"))
		if err != nil || to.IsZero() {
			r.fail(st, stanza.NewError(stanza.JIDMalformed))
			return
		}
		if r.st.Conf.MembersOnly && rank(r.affOf(to.Bare().String())) < rank(Member) {
			// §7.8.2: in a members-only room the invitee becomes a member.
			if r.affOf(to.Bare().String()) == Outcast {
				r.fail(st, stanza.NewError(stanza.Forbidden).WithText("the invitee is banned"))
				return
			}
			r.setAff(to.Bare().String(), Member, "")
		}
		b := []byte("<x xmlns='" + NSUser + "'><invite from='")
		b = xmlstream.AppendEscapedAttr(b, st.From.String())
		b = append(b, "'>"...)
		if rs := inv.Child(NSUser, "reason"); rs != nil {
			b = rs.AppendXML(b, NSUser)
		}
		b = append(b, "</invite>"...)
		if r.st.Conf.Password != "" {
			b = append(b, "<password>"...)
			b = xmlstream.AppendEscapedText(b, r.st.Conf.Password)
			b = append(b, "</password>"...)
		}
		b = append(b, "</x>"...)
		r.send("message", "", "", to, r.nextID(), string(b))
	}
}

// decline passes an invitee's refusal to the inviter (§7.8.3).
func (r *room) decline(st *stanza.Routed, x *xmlstream.Node) {
	d := x.Child(NSUser, "decline")
	to, err := jid.Parse(d.Attr("to"))
	if err != nil || to.IsZero() {
		r.fail(st, stanza.NewError(stanza.JIDMalformed))
		return
	}
	b := []byte("<x xmlns='" + NSUser + "'><decline from='")
	b = xmlstream.AppendEscapedAttr(b, st.From.Bare().String())
	b = append(b, "'>"...)
	if rs := d.Child(NSUser, "reason"); rs != nil {
		b = rs.AppendXML(b, NSUser)
	}
	b = append(b, "</decline></x>"...)
	r.send("message", "", "", to, r.nextID(), string(b))
}

// voiceRequest: a visitor asks for voice (§7.13) and the moderators get the form; a moderator's submitted form
// with muc#request_allow grants it (§8.6).
func (r *room) voiceRequest(st *stanza.Routed, o *occupant, f dataform.Form) {
	if f.Type == "submit" && o.role == Moderator && f.Has("muc#request_allow") {
		if allow, _ := f.Bool("muc#request_allow"); allow {
			if t := r.byNick[f.One("muc#roomnick")]; t != nil && t.role == Visitor {
				t.role = Participant
				r.broadcast(t, "", nil, nil, itemExtra{actor: o.nick})
			}
		}
		return
	}
	if o.role != Visitor || f.One("muc#role") != Participant {
		return // nothing to ask for
	}
	form := dataform.New("form", NSRequest).Title("Voice request").
		FieldOptions("muc#role", "list-single", "Requested role", []string{Participant}, Participant).
		Field("muc#jid", "jid-single", "User ID", o.full().String()).
		Field("muc#roomnick", "text-single", "Room Nickname", o.nick).
		Bool("muc#request_allow", "Grant voice to this person?", false).String()
	for _, m := range r.list {
		if m.role == Moderator {
			r.sendTo("message", "", "", m, r.nextID(), form)
		}
	}
}
