package muc

import (
	"strconv"

	"github.com/xmppd/xmppd/protocol/avatar"
	"github.com/xmppd/xmppd/protocol/dataform"
	"github.com/xmppd/xmppd/protocol/jid"
	wire "github.com/xmppd/xmppd/protocol/mam"
	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/protocol/xmlstream"
)

// owner: the muc#owner requests: the configuration form (§10.1.2, §10.1.3, §10.2) and destruction (§10.9).
func (r *room) owner(st *stanza.Routed, q *xmlstream.Node, get bool) {
	if r.affOf(st.From.Bare().String()) != Owner {
		r.fail(st, stanza.NewError(stanza.Forbidden)) // §10: owners only
		return
	}
	if get {
		r.result(st, "<query xmlns='"+NSOwner+"'>"+r.configForm()+"</query>")
		return
	}
	if d := q.Child(NSOwner, "destroy"); d != nil {
		r.destroy(st, d)
		return
	}
	x := dataform.Find(q)
	if x == nil {
		r.fail(st, stanza.NewError(stanza.BadRequest))
		return
	}
	f := dataform.Parse(x)
	switch f.Type {
	case "cancel":
		if r.st.Locked {
			// §10.1.3: cancelling the initial configuration destroys the room.
			r.result(st, "")
			r.destroyAll("", "", "")
			return
		}
		r.result(st, "")
	case "submit":
		if f.FormType != "" && f.FormType != NSRoomConfig {
			r.fail(st, stanza.NewError(stanza.BadRequest))
			return
		}
		r.configure(st, f)
	default:
		r.fail(st, stanza.NewError(stanza.BadRequest))
	}
}

var (
	whoisOptions = []string{"moderators", "anyone"}
	pmOptions    = []string{"anyone", "participants", "moderators", "none"}
)

// configForm is the muc#roomconfig form with the room's configuration (§10.2, §15.5.3).
func (r *room) configForm() string {
	c := r.st.Conf
	var owners, admins []string
	for _, b := range sortedKeys(r.affs) {
		switch r.affs[b].aff {
		case Owner:
			owners = append(owners, b)
		case Admin:
			admins = append(admins, b)
		}
	}
	max := ""
	if c.MaxUsers > 0 {
		max = strconv.Itoa(c.MaxUsers)
	}
	return dataform.New("form", NSRoomConfig).Title("Configuration of "+r.jid.String()).
		Field("muc#roomconfig_roomname", "text-single", "Room name", c.Name).
		Field("muc#roomconfig_roomdesc", "text-single", "Description", c.Desc).
		Field("muc#roomconfig_lang", "text-single", "Language", c.Lang).
		Bool("muc#roomconfig_publicroom", "List the room publicly", c.Public).
		Bool("muc#roomconfig_persistentroom", "Keep the room when it is empty", c.Persistent).
		Bool("muc#roomconfig_membersonly", "Only members may enter", c.MembersOnly).
		Bool("muc#roomconfig_moderatedroom", "Only participants may speak (moderated)", c.Moderated).
		Bool("muc#roomconfig_passwordprotectedroom", "A password is needed to enter", c.Password != "").
		Field("muc#roomconfig_roomsecret", "text-private", "Password", c.Password).
		FieldOptions("muc#roomconfig_whois", "list-single", "Who may see real JIDs", whoisOptions, c.WhoIs).
		Field("muc#roomconfig_maxusers", "text-single", "Most occupants (empty: the server's limit, "+strconv.Itoa(r.lim.occupants)+")", max).
		Bool("muc#roomconfig_changesubject", "Participants may change the subject", c.ChangeSubject).
		Bool("muc#roomconfig_allowinvites", "Participants may invite others", c.AllowInvites).
		FieldOptions("muc#roomconfig_allowpm", "list-single", "Who may send private messages", pmOptions, c.AllowPM).
		Field("muc#maxhistoryfetch", "text-single", "Messages of history sent on entering", strconv.Itoa(c.History)).
		Bool("muc#roomconfig_enablearchiving", "Archive the room's messages (XEP-0313)", c.Archive).
		Field("muc#roomconfig_roomowners", "jid-multi", "Owners", owners...).
		Field("muc#roomconfig_roomadmins", "jid-multi", "Admins", admins...).
		String()
}

// configure applies a submitted form (§10.2): fields absent keep their value; an unknown or bad value is
// not-acceptable and changes nothing. An empty form accepts the defaults (§10.1.2 instant room).
func (r *room) configure(st *stanza.Routed, f dataform.Form) {
	c := r.st.Conf
	bad := func(field string) {
		r.fail(st, stanza.NewError(stanza.NotAcceptable).WithText("bad value of "+field))
	}
	bools := map[string]*bool{
		"muc#roomconfig_publicroom": &c.Public, "muc#roomconfig_persistentroom": &c.Persistent,
		"muc#roomconfig_membersonly": &c.MembersOnly, "muc#roomconfig_moderatedroom": &c.Moderated,
		"muc#roomconfig_changesubject": &c.ChangeSubject, "muc#roomconfig_allowinvites": &c.AllowInvites,
		"muc#roomconfig_enablearchiving": &c.Archive,
	}
	for _, v := range f.Vars {
		if p, ok := bools[v]; ok {
			val, ok := f.Bool(v)
			if !ok {
				bad(v)
				return
			}
			*p = val
		}
	}
	if f.Has("muc#roomconfig_roomname") {
		c.Name = f.One("muc#roomconfig_roomname")
	}
	if f.Has("muc#roomconfig_roomdesc") {
		c.Desc = f.One("muc#roomconfig_roomdesc")
	}
	if f.Has("muc#roomconfig_lang") {
		c.Lang = f.One("muc#roomconfig_lang")
	}
	if f.Has("muc#roomconfig_roomsecret") {
		c.Password = f.One("muc#roomconfig_roomsecret")
	}
	if f.Has("muc#roomconfig_passwordprotectedroom") {
		on, ok := f.Bool("muc#roomconfig_passwordprotectedroom")
		switch {
		case !ok:
			bad("muc#roomconfig_passwordprotectedroom")
			return
		case on && c.Password == "":
			bad("muc#roomconfig_roomsecret (a password-protected room needs one)")
			return
		case !on:
			c.Password = ""
		}
	}
	if f.Has("muc#roomconfig_whois") {
		c.WhoIs = f.One("muc#roomconfig_whois")
		if c.WhoIs != "moderators" && c.WhoIs != "anyone" {
			bad("muc#roomconfig_whois")
			return
		}
	}
	if f.Has("muc#roomconfig_allowpm") {
		c.AllowPM = f.One("muc#roomconfig_allowpm")
		switch c.AllowPM {
		case "anyone", "participants", "moderators", "none":
		default:
			bad("muc#roomconfig_allowpm")
			return
		}
	}
	if f.Has("muc#roomconfig_maxusers") {
		switch v := f.One("muc#roomconfig_maxusers"); v {
		case "", "none", "0":
			c.MaxUsers = 0
		default:
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > r.lim.occupants {
				if err == nil && n > r.lim.occupants {
					r.srv.LimitHit(LimitOccupants)
				}
				bad("muc#roomconfig_maxusers (at most " + strconv.Itoa(r.lim.occupants) + ")")
				return
			}
			c.MaxUsers = n
		}
	}
	if f.Has("muc#maxhistoryfetch") {
		n, err := strconv.Atoi(f.One("muc#maxhistoryfetch"))
		if err != nil || n < 0 {
			bad("muc#maxhistoryfetch")
			return
		}
		c.History = n
	}
	// Owner and admin lists: the JIDs they name get the affiliation; those left out lose it.
	type affList struct {
		field, aff string
	}
	want := map[string]string{}
	for _, l := range []affList{{"muc#roomconfig_roomadmins", Admin}, {"muc#roomconfig_roomowners", Owner}} {
		if !f.Has(l.field) {
			continue
		}
		for b, a := range r.affs {
			if a.aff == l.aff {
				want[b] = AffNone
			}
		}
		for _, v := range f.Values[l.field] {
			j, err := jid.Parse(v)
			if err != nil || j.IsZero() {
				bad(l.field)
				return
			}
			want[j.Bare().String()] = l.aff
		}
	}
	if f.Has("muc#roomconfig_roomowners") && len(f.Values["muc#roomconfig_roomowners"]) == 0 {
		r.fail(st, stanza.NewError(stanza.Conflict).WithText("a room needs an owner"))
		return
	}
	old := r.st.Conf
	wasLocked := r.st.Locked
	r.st.Conf = c
	r.st.Locked = false
	r.dirty = true
	r.result(st, "")
	for _, b := range sortedKeys(want) {
		if r.affOf(b) != want[b] {
			r.changeAff(b, want[b], "", "", "")
		}
	}
	// §10.2.1: tell the occupants what changed (not on the initial configuration).
	if !wasLocked {
		var codes []int
		switch {
		case old.WhoIs != c.WhoIs && c.WhoIs == "anyone":
			codes = append(codes, 172)
		case old.WhoIs != c.WhoIs:
			codes = append(codes, 173)
		}
		if old != c {
			codes = append(codes, 104)
		}
		if len(codes) > 0 {
			r.statusMessage(codes...)
		}
	}
	if c.MembersOnly && !old.MembersOnly {
		// §9.4 / §10.2: becoming members-only removes those who are not members (322).
		for _, o := range append([]*occupant(nil), r.list...) {
			if rank(r.affOf(o.bare)) < rank(Member) {
				r.remove(o)
				o.role, o.payload = RoleNone, ""
				r.unavailable(o, []int{322}, nil, itemExtra{})
			}
		}
	}
	if !c.Persistent {
		r.emptied()
	}
}

// destroy (§10.9) with an alternate venue and a reason.
func (r *room) destroy(st *stanza.Routed, d *xmlstream.Node) {
	alt := d.Attr("jid")
	if alt != "" {
		if _, err := jid.Parse(alt); err != nil {
			r.fail(st, stanza.NewError(stanza.JIDMalformed))
			return
		}
	}
	r.result(st, "")
	r.destroyAll(alt, childText(d, NSOwner, "reason"), childText(d, NSOwner, "password"))
}

func (r *room) destroyAll(alt, reason, password string) {
	b := []byte("<destroy")
	if alt != "" {
		b = append(b, " jid='"...)
		b = xmlstream.AppendEscapedAttr(b, alt)
		b = append(b, '\'')
	}
	b = append(b, '>')
	if reason != "" {
		b = append(b, "<reason>"...)
		b = xmlstream.AppendEscapedText(b, reason)
		b = append(b, "</reason>"...)
	}
	if password != "" {
		b = append(b, "<password>"...)
		b = xmlstream.AppendEscapedText(b, password)
		b = append(b, "</password>"...)
	}
	b = append(b, "</destroy>"...)
	ex := itemExtra{destroy: string(b)}
	for _, o := range append([]*occupant(nil), r.list...) {
		r.remove(o)
		o.role, o.payload = RoleNone, ""
		// §10.9: affiliation and role none, to each occupant (its own, with 110).
		saved := r.affs[o.bare]
		delete(r.affs, o.bare)
		r.presenceOf(o, o, "unavailable", nil, ex)
		if saved.aff != "" {
			r.affs[o.bare] = saved
		}
	}
	r.destroyState()
}

// vcard: anyone reads the room's vCard, owners set it (vcard-temp for rooms, XEP-0486 avatars).
func (r *room) vcard(st *stanza.Routed, q *xmlstream.Node, get bool) {
	if get {
		v := r.st.VCard
		if v == "" {
			v = "<vCard xmlns='" + NSVCard + "'/>"
		}
		r.result(st, v)
		return
	}
	if r.affOf(st.From.Bare().String()) != Owner {
		r.fail(st, stanza.NewError(stanza.Forbidden))
		return
	}
	raw := string(q.AppendXML(nil, stanza.NSClient))
	if len(raw) > r.lim.vcardMax {
		r.fail(st, stanza.NewError(stanza.NotAcceptable).WithText("the vCard is too large (vcard.max_size)"))
		return
	}
	hash := ""
	if _, binval, ok := avatar.Photo(q); ok {
		if h, _, ok := avatar.Hash(binval); ok {
			hash = h
		}
	}
	r.st.VCard = raw
	changed := hash != r.st.PhotoHash
	r.st.PhotoHash = hash
	r.dirty = true
	r.result(st, "")
	if changed {
		for _, o := range r.list {
			r.sendTo("presence", "", "", o, "", "<x xmlns='"+NSVCardUpd+"'><photo>"+hash+"</photo></x>")
		}
	}
}

// discoInfo is the room's disco#info (§6.4: identity, features, the muc#roominfo form) or, for the node
// x-roomuser-item, the requester's reserved nickname (§7.12).
func (r *room) discoInfo(st *stanza.Routed, node string) {
	if node == "x-roomuser-item" {
		b := []byte("<query xmlns='" + stanza.NSDiscoInf + "' node='x-roomuser-item'>")
		if a, ok := r.affs[st.From.Bare().String()]; ok && a.nick != "" {
			b = append(b, "<identity category='conference' type='text' name='"...)
			b = xmlstream.AppendEscapedAttr(b, a.nick)
			b = append(b, "'/>"...)
		}
		r.result(st, string(append(b, "</query>"...)))
		return
	}
	if node != "" {
		r.fail(st, stanza.NewError(stanza.ItemNotFound))
		return
	}
	c := r.st.Conf
	name := c.Name
	if name == "" {
		name = r.name
	}
	b := []byte("<query xmlns='" + stanza.NSDiscoInf + "'><identity category='conference' type='text' name='")
	b = xmlstream.AppendEscapedAttr(b, name)
	b = append(b, "'/>"...)
	pick := func(on bool, yes, no string) string {
		if on {
			return yes
		}
		return no
	}
	for _, v := range []string{
		NS, stanza.NSDiscoInf, stanza.NSDiscoIt, NSOccupantID, NSSelfPing, NSVCard, stanza.NSPing, stanza.NSRegister,
		pick(c.Public, "muc_public", "muc_hidden"),
		pick(c.Persistent, "muc_persistent", "muc_temporary"),
		pick(c.MembersOnly, "muc_membersonly", "muc_open"),
		pick(c.Moderated, "muc_moderated", "muc_unmoderated"),
		pick(c.WhoIs == "anyone", "muc_nonanonymous", "muc_semianonymous"),
		pick(c.Password != "", "muc_passwordprotected", "muc_unsecured"),
	} {
		b = append(b, "<feature var='"+v+"'/>"...)
	}
	if c.Archive {
		// XEP-0313 §8: advertised where the archive is (the room's bare JID), only while the room archives.
		b = append(b, "<feature var='"+wire.NS+"'/><feature var='"+wire.NSExtended+"'/><feature var='"+wire.NSSID+"'/>"...)
	}
	form := dataform.New("result", NSRoomInfo).
		Field("muc#roominfo_description", "", "Description", c.Desc).
		Field("muc#roomconfig_roomname", "", "Name", c.Name).
		Field("muc#roominfo_occupants", "", "Number of occupants", strconv.Itoa(len(r.list))).
		Field("muc#roominfo_subject", "", "Subject", r.st.Subject).
		Bool("muc#roominfo_subjectmod", "Occupants may change the subject", c.ChangeSubject).
		Field("muc#roominfo_lang", "", "Language", c.Lang).
		Field("muc#maxhistoryfetch", "", "Messages of history", strconv.Itoa(c.History))
	if r.st.PhotoHash != "" {
		form.Field("muc#roominfo_avatarhash", "text-multi", "Avatar hash", r.st.PhotoHash)
	}
	b = append(b, form.String()...)
	r.result(st, string(append(b, "</query>"...)))
}

// NSRegisterForm is the FORM_TYPE of the registration form (§7.10, §15.5.2).
const NSRegisterForm = NS + "#register"

// register: a user registers with the room (§7.10): the nickname is reserved for the user's bare JID and the user
// becomes a member (one already member or above keeps the affiliation). get answers the form, or <registered/>
// with the reserved nick.
func (r *room) register(st *stanza.Routed, q *xmlstream.Node, get bool) {
	bare := st.From.Bare().String()
	a, known := r.affs[bare]
	if r.affOf(bare) == Outcast {
		r.fail(st, stanza.NewError(stanza.Forbidden)) // banned
		return
	}
	if get {
		if known && a.nick != "" && rank(a.aff) >= rank(Member) {
			r.result(st, "<query xmlns='"+stanza.NSRegister+"'><registered/><username>"+
				string(xmlstream.AppendEscapedText(nil, a.nick))+"</username></query>")
			return
		}
		form := dataform.New("form", NSRegisterForm).Title("Registration with "+r.jid.String()).
			Field("muc#register_roomnick", "text-single", "Nickname").String()
		r.result(st, "<query xmlns='"+stanza.NSRegister+"'><instructions>Choose the nickname reserved for you in this room.</instructions>"+form+"</query>")
		return
	}
	if q.Child(stanza.NSRegister, "remove") != nil {
		// §7.10 (and XEP-0077 §3.2): cancelling the registration drops the reserved nick and the membership.
		if rank(a.aff) > rank(Member) {
			r.fail(st, stanza.NewError(stanza.NotAllowed).WithText("an admin or owner keeps the affiliation"))
			return
		}
		r.result(st, "")
		r.changeAff(bare, AffNone, "", "", "")
		return
	}
	x := dataform.Find(q)
	if x == nil {
		r.fail(st, stanza.NewError(stanza.BadRequest))
		return
	}
	f := dataform.Parse(x)
	nick := f.One("muc#register_roomnick")
	switch {
	case f.Type == "cancel":
		r.result(st, "")
		return
	case f.Type != "submit" || nick == "":
		r.fail(st, stanza.NewError(stanza.NotAcceptable).WithText("muc#register_roomnick is required")) // §7.10
		return
	case len([]rune(nick)) > r.lim.nick:
		r.srv.LimitHit(LimitNick)
		r.fail(st, stanza.NewError(stanza.PolicyViolation).WithText("nickname too long (muc.max_nick_length)"))
		return
	}
	if _, err := jid.New(r.name, r.jid.Domain(), nick); err != nil {
		r.fail(st, stanza.NewError(stanza.JIDMalformed))
		return
	}
	if other := r.nickOwner(nick); other != "" && other != bare {
		r.fail(st, stanza.NewError(stanza.Conflict)) // §7.10: reserved by someone else
		return
	}
	if o := r.byNick[nick]; o != nil && o.bare != bare {
		r.fail(st, stanza.NewError(stanza.Conflict)) // in use by another occupant
		return
	}
	aff := r.affOf(bare)
	if rank(aff) < rank(Member) {
		aff = Member
	}
	r.result(st, "")
	r.changeAff(bare, aff, nick, "", "")
}
