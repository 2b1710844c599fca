package muc

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/xmppd/xmppd/feature"
	"github.com/xmppd/xmppd/protocol/jid"
	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/protocol/xmlstream"
	"github.com/xmppd/xmppd/storage"
)

// Roles and affiliations (§5).
const (
	Moderator   = "moderator"
	Participant = "participant"
	Visitor     = "visitor"
	RoleNone    = "none"

	Owner   = "owner"
	Admin   = "admin"
	Member  = "member"
	Outcast = "outcast"
	AffNone = "none"
)

// rank orders affiliations (§5.2): outcast below none.
func rank(aff string) int {
	switch aff {
	case Owner:
		return 3
	case Admin:
		return 2
	case Member:
		return 1
	case Outcast:
		return -1
	}
	return 0
}

// roomConf is a room's configuration (§10.2, the muc#roomconfig form).
type roomConf struct {
	Name          string `json:"name"`
	Desc          string `json:"desc"`
	Lang          string `json:"lang"`
	Public        bool   `json:"public"`
	Persistent    bool   `json:"persistent"`
	MembersOnly   bool   `json:"members_only"`
	Moderated     bool   `json:"moderated"`
	Password      string `json:"password"`
	WhoIs         string `json:"whois"` // moderators (semi-anonymous) | anyone (non-anonymous)
	MaxUsers      int    `json:"max_users"`
	ChangeSubject bool   `json:"change_subject"`
	AllowInvites  bool   `json:"allow_invites"`
	AllowPM       string `json:"allow_pm"` // anyone | participants | moderators | none
	History       int    `json:"history"`  // muc#maxhistoryfetch
	Archive       bool   `json:"archive"`  // muc#roomconfig_enablearchiving (XEP-0313)
}

// roomState is what storage keeps of a room besides the affiliations (storage.MUCRoom.Config, JSON).
type roomState struct {
	Conf      roomConf `json:"conf"`
	Subject   string   `json:"subject"`
	SubjectBy string   `json:"subject_by"` // the nickname that set it ("" for the room)
	HasSubj   bool     `json:"has_subject"`
	Salt      string   `json:"salt"` // XEP-0421 occupant-id
	VCard     string   `json:"vcard"`
	PhotoHash string   `json:"photo_hash"`
	Creator   string   `json:"creator"`
	Locked    bool     `json:"locked"`
}

func (s roomState) encode() string {
	b, _ := json.Marshal(s) // strings, ints and bools always marshal
	return string(b)
}

// decodeState reads a stored state; a field it lacks (stored before the field existed) keeps def's value.
func decodeState(s string, def roomConf) (roomState, error) {
	st := roomState{Conf: def}
	err := json.Unmarshal([]byte(s), &st)
	return st, err
}

func (s roomState) summary() summary {
	return summary{Title: s.Conf.Name, Public: s.Conf.Public && !s.Locked, Creator: s.Creator}
}

// affiliation is one bare JID's affiliation and reserved nickname.
type affiliation struct {
	aff, nick, reason string
}

// session is one resource of an occupant.
type session struct {
	full    jid.JID
	fullStr string // the full JID as written in attributes (escaped)
	fullJID string // the full JID as a string (stanza heads)
}

func sessionOf(full jid.JID) session {
	s := full.String()
	return session{full: full, fullJID: s, fullStr: string(xmlstream.AppendEscapedAttr(nil, s))}
}

// occupant is one occupant of the room (§5.1: a nickname with a role) with the resources of one user that
// joined under it (multi-session, §7.2.9 allows the same bare JID to share its nick): the others see one
// occupant, and everything for the occupant goes to every one of its resources.
type occupant struct {
	nick string
	// sess are the joined resources, in the order they joined (never empty while the occupant is in the room);
	// sess[0] is the primary one, where an IQ to the occupant goes.
	sess []session
	bare string
	role string
	// payload is the occupant's presence as the room rebroadcasts it: its children without the MUC elements.
	payload string
	show    bool // payload was set from an available presence
	id      string
	tokens  float64
	refill  time.Time
}

// hist is one groupchat message kept for the history (§7.2.15).
type hist struct {
	nick, id, payload string
	at                time.Time
}

// room is one room's state and logic: handle turns a stanza into a new state and the stanzas in out.
type room struct {
	name string
	jid  jid.JID // the room's bare JID
	srv  feature.Server
	lim  limits

	exists bool
	st     roomState
	affs   map[string]affiliation
	list   []*occupant // in the order they entered
	byNick map[string]*occupant
	byJID  map[jid.JID]*occupant
	hist   []hist
	now    time.Time
	seq    int

	out []*stanza.Routed
	// What the part must store after handle: the state, these affiliations (by bare JID), or the deletion.
	dirty    bool
	dirtyAff map[string]bool
	deleted  bool
	created  time.Time
	// archived are the messages the last stanza added to the archive; dropArchive: the room is gone, and its
	// archive with it (archive.go).
	archived    []storage.ArchivedMessage
	dropArchive bool
	fanTo       []*session // fanout's scratch list of the resources to copy to
}

func newRoom(srv feature.Server, service jid.JID, name string) *room {
	j, _ := jid.New(name, service.Domain(), "")
	return &room{name: name, jid: j, srv: srv, lim: limitsOf(srv.Config()), affs: map[string]affiliation{},
		byNick: map[string]*occupant{}, byJID: map[jid.JID]*occupant{}, dirtyAff: map[string]bool{}}
}

// defaultConf is a new room's configuration from [muc.defaults].
func (r *room) defaultConf() roomConf {
	d := r.lim.defaults
	return roomConf{Public: d.Public, Persistent: d.Persistent, MembersOnly: d.MembersOnly, Moderated: d.Moderated,
		WhoIs: d.WhoIs, MaxUsers: d.MaxUsers, ChangeSubject: d.ChangeSubject, AllowInvites: d.AllowInvites,
		AllowPM: d.AllowPM, History: d.History, Archive: d.Archive}
}

// create makes the room with owner as its first owner (§10.1.1); locked until the owner configures it.
func (r *room) create(owner string, locked bool) {
	var salt [16]byte
	_, _ = randRead(salt[:])
	r.exists = true
	r.st = roomState{Conf: r.defaultConf(), Salt: base64.RawStdEncoding.EncodeToString(salt[:]), Creator: owner, Locked: locked}
	r.affs = map[string]affiliation{owner: {aff: Owner}}
	r.dirty = true
	r.dirtyAff[owner] = true
	r.created = r.now
}

// destroyState forgets the room (destroyed, or temporary and empty).
func (r *room) destroyState() {
	r.exists = false
	r.st = roomState{}
	r.affs = map[string]affiliation{}
	r.hist = nil
	r.deleted = true
	r.archived = nil
	r.dropArchive = true
	r.dirty = false
	clear(r.dirtyAff)
}

func (r *room) affOf(bare string) string {
	if a, ok := r.affs[bare]; ok && a.aff != "" {
		return a.aff
	}
	return AffNone
}

// defaultRole is the role an affiliation enters with (§5.1.2).
func (r *room) defaultRole(aff string) string {
	switch aff {
	case Owner, Admin:
		return Moderator
	case Member:
		return Participant
	case Outcast:
		return RoleNone
	}
	if r.st.Conf.Moderated {
		return Visitor
	}
	return Participant
}

func (r *room) maxUsers() (n int, server bool) {
	n = r.lim.occupants
	if m := r.st.Conf.MaxUsers; m > 0 && m < n {
		return m, false
	}
	return n, true
}

// nickOwner is the bare JID that reserved nick, "" if none (§7.12).
func (r *room) nickOwner(nick string) string {
	for b, a := range r.affs {
		if a.nick != "" && a.nick == nick {
			return b
		}
	}
	return ""
}

func (r *room) occupantID(bare string) string {
	h := sha256.Sum256([]byte(r.st.Salt + "\x00" + bare))
	return base64.RawURLEncoding.EncodeToString(h[:18])
}

func (r *room) nickJID(nick string) jid.JID {
	j, err := jid.New(r.name, r.jid.Domain(), nick)
	if err != nil {
		return r.jid
	}
	return j
}

func (r *room) nextID() string {
	r.seq++
	return "muc" + strconv.Itoa(r.seq)
}

// ---- output ----

func (r *room) emit(st *stanza.Routed) {
	if st != nil {
		r.out = append(r.out, st)
	}
}

func (r *room) fail(st *stanza.Routed, e stanza.Error) { r.emit(feature.Refusal(st, e)) }

func (r *room) result(st *stanza.Routed, payload string) { r.emit(feature.Answered(st, payload)) }

// send emits a stanza from the room (nick "") or an occupant's room JID.
func (r *room) send(name, typ, fromNick string, to jid.JID, id, payload string) {
	from := r.jid
	if fromNick != "" {
		from = r.nickJID(fromNick)
	}
	r.emit(stanza.Generate(name, typ, from, to, id, payload))
}

// sendTo emits a stanza to every resource of occupant rc.
func (r *room) sendTo(name, typ, fromNick string, rc *occupant, id, payload string) {
	for _, s := range rc.sess {
		r.send(name, typ, fromNick, s.full, id, payload)
	}
}

// itemExtra is what a presence's <item/> says besides affiliation, role and jid.
type itemExtra struct {
	nick, actor, reason, destroy string
}

// seesJID: rc may see occupants' real JIDs (§5.2.1: non-anonymous rooms to everyone, semi-anonymous ones to
// moderators).
func (r *room) seesJID(rc *occupant) bool {
	return r.st.Conf.WhoIs == "anyone" || rc.role == Moderator
}

// presenceOf emits o's presence to rc (typ "" or unavailable) with the status codes (110 is added for rc == o):
// available presence carries o's payload, unavailable presence the status it left with.
func (r *room) presenceOf(o, rc *occupant, typ string, codes []int, ex itemExtra) {
	b := make([]byte, 0, 256+len(o.payload))
	b = append(b, o.payload...)
	b = append(b, "<x xmlns='"+NSUser+"'>"...)
	if r.seesJID(rc) || rc == o {
		// One <item/> per resource of the occupant for those who see real JIDs (as Prosody does).
		for _, s := range o.sess {
			b = r.appendItem(b, o, s.fullStr, ex)
		}
	} else {
		b = r.appendItem(b, o, "", ex)
	}
	b = append(b, ex.destroy...)
	for _, c := range codes {
		b = appendStatus(b, c)
	}
	if rc == o {
		b = appendStatus(b, 110)
	}
	b = append(b, "</x><occupant-id xmlns='"+NSOccupantID+"' id='"...)
	b = append(b, o.id...)
	b = append(b, "'/>"...)
	r.sendTo("presence", typ, o.nick, rc, "", string(b))
}

// appendItem appends o's <item/> (with jid when fullStr is not "").
func (r *room) appendItem(b []byte, o *occupant, fullStr string, ex itemExtra) []byte {
	b = append(b, "<item affiliation='"...)
	b = append(b, r.affOf(o.bare)...)
	b = append(b, "' role='"...)
	b = append(b, o.role...)
	b = append(b, '\'')
	if fullStr != "" {
		b = append(b, " jid='"...)
		b = append(b, fullStr...)
		b = append(b, '\'')
	}
	if ex.nick != "" {
		b = append(b, " nick='"...)
		b = xmlstream.AppendEscapedAttr(b, ex.nick)
		b = append(b, '\'')
	}
	if ex.actor == "" && ex.reason == "" {
		b = append(b, "/>"...)
	} else {
		b = append(b, '>')
		if ex.actor != "" {
			b = append(b, "<actor nick='"...)
			b = xmlstream.AppendEscapedAttr(b, ex.actor)
			b = append(b, "'/>"...)
		}
		if ex.reason != "" {
			b = append(b, "<reason>"...)
			b = xmlstream.AppendEscapedText(b, ex.reason)
			b = append(b, "</reason>"...)
		}
		b = append(b, "</item>"...)
	}
	return b
}

func appendStatus(b []byte, code int) []byte {
	b = append(b, "<status code='"...)
	b = strconv.AppendInt(b, int64(code), 10)
	return append(b, "'/>"...)
}

// broadcast emits o's presence to every occupant; self are the codes only o gets (with 110), all everyone's.
func (r *room) broadcast(o *occupant, typ string, all, self []int, ex itemExtra) {
	for _, rc := range r.list {
		if rc == o {
			continue
		}
		r.presenceOf(o, rc, typ, all, ex)
	}
	r.presenceOf(o, o, typ, append(append([]int(nil), all...), self...), ex)
}

// statusMessage emits a groupchat message from the room with status codes to every occupant (§10.2.1).
func (r *room) statusMessage(codes ...int) {
	var b []byte
	b = append(b, "<x xmlns='"+NSUser+"'>"...)
	for _, c := range codes {
		b = appendStatus(b, c)
	}
	b = append(b, "</x>"...)
	for _, rc := range r.list {
		r.sendTo("message", "groupchat", "", rc, r.nextID(), string(b))
	}
}

// full is the occupant's primary resource.
func (o *occupant) full() jid.JID { return o.sess[0].full }

func (r *room) add(o *occupant) {
	r.list = append(r.list, o)
	r.byNick[o.nick] = o
	for _, s := range o.sess {
		r.byJID[s.full] = o
	}
}

func (r *room) remove(o *occupant) {
	delete(r.byNick, o.nick)
	for _, s := range o.sess {
		delete(r.byJID, s.full)
	}
	for i, x := range r.list {
		if x == o {
			r.list = append(r.list[:i], r.list[i+1:]...)
			break
		}
	}
}

// emptied: a temporary room is destroyed when the last occupant left (§10.1.1, muc_temporary).
func (r *room) emptied() {
	if len(r.list) == 0 && r.exists && !r.st.Conf.Persistent {
		r.destroyState()
	}
}

// ---- handle ----

// handle takes one stanza for the room or one of its occupants.
func (r *room) handle(f forward, now time.Time) {
	r.now = now
	st := f.st
	switch st.Head.Name {
	case "presence":
		r.presence(st, f.refuse)
	case "message":
		if !r.exists {
			r.fail(st, stanza.NewError(stanza.ItemNotFound))
			return
		}
		r.message(st)
	case "iq":
		if !r.exists || (r.st.Locked && r.affOf(st.From.Bare().String()) != Owner) {
			r.fail(st, stanza.NewError(stanza.ItemNotFound)) // §10.1.1: a locked room does not exist for others
			return
		}
		r.iq(st)
	}
}

// mucChildren is a presence's or message's payload without the elements the room adds itself.
func mucChildren(n *xmlstream.Node, dropMUCUser bool) string {
	var b []byte
	for _, c := range n.Children {
		if c.Name.Local == "" {
			continue
		}
		switch c.Name.Space {
		case NS, NSOccupantID:
			continue
		case NSUser:
			if dropMUCUser {
				continue
			}
		}
		b = c.AppendXML(b, stanza.NSClient)
	}
	return string(b)
}

// presence: entering (§7.2), presence updates, nickname changes (§7.6), leaving (§7.14).
func (r *room) presence(st *stanza.Routed, refuse *stanza.Error) {
	o := r.byJID[st.From]
	nick := st.To.Resource()
	switch st.Head.Type {
	case "error":
		if o != nil {
			r.leaveSession(o, st.From, "", []int{333}) // the occupant's client or server is gone
		}
		return
	case "unavailable":
		if o != nil {
			n, _ := st.Node()
			status := ""
			if n != nil {
				if s := n.Child("", "status"); s != nil {
					status = string(s.AppendXML(nil, stanza.NSClient)) // rebroadcast with the leaving presence
				}
			}
			r.leaveSession(o, st.From, status, nil)
		}
		return
	case "":
	default:
		return // subscriptions and probes mean nothing to a room
	}
	fail := r.fail
	if o == nil {
		fail = r.joinFail
	}
	if nick == "" {
		fail(st, stanza.NewError(stanza.JIDMalformed).WithText("a nickname is needed (room@service/nick)")) // §7.2.1
		return
	}
	n, err := st.Node()
	if err != nil {
		return
	}
	if utf8.RuneCountInString(nick) > r.lim.nick {
		r.srv.LimitHit(LimitNick)
		fail(st, stanza.NewError(stanza.PolicyViolation).WithText("nickname too long (muc.max_nick_length)"))
		return
	}
	if o == nil {
		r.enter(st, n, nick, refuse)
		return
	}
	if nick == o.nick {
		o.payload = mucChildren(n, true)
		r.broadcast(o, "", nil, nil, itemExtra{})
		return
	}
	r.changeNick(st, n, o, nick)
}

// leaveSession: resource full of o leaves. The occupant leaves with its last resource; before that, only the
// leaving resource gets its unavailable self-presence, and everyone o's presence again (those who see real JIDs
// see one <item/> less), as Prosody does.
func (r *room) leaveSession(o *occupant, full jid.JID, statusXML string, codes []int) {
	if len(o.sess) == 1 {
		r.leave(o, statusXML, codes)
		return
	}
	i := slices.IndexFunc(o.sess, func(s session) bool { return s.full == full })
	if i < 0 {
		return
	}
	gone := *o
	gone.sess, gone.payload = []session{o.sess[i]}, statusXML
	o.sess = slices.Delete(o.sess, i, i+1)
	delete(r.byJID, full)
	r.presenceOf(&gone, &gone, "unavailable", codes, itemExtra{})
	r.broadcast(o, "", nil, nil, itemExtra{})
}

func (r *room) leave(o *occupant, statusXML string, codes []int) {
	r.remove(o)
	o.payload = statusXML
	r.unavailable(o, codes, nil, itemExtra{})
	r.emptied()
}

// unavailable emits o's unavailable presence (o already removed; its payload is what it left with) to everyone
// left and to o (with 110 and self).
func (r *room) unavailable(o *occupant, all, self []int, ex itemExtra) {
	for _, rc := range r.list {
		r.presenceOf(o, rc, "unavailable", all, ex)
	}
	r.presenceOf(o, o, "unavailable", append(append([]int(nil), all...), self...), ex)
}

// joinFail answers an attempt to enter with a presence error that carries <x xmlns='…muc'/>, as §7.2 shows for
// each error (clients match the error to their attempt by it).
func (r *room) joinFail(st *stanza.Routed, e stanza.Error) {
	e.By = r.jid.String()
	h := stanza.Head{Name: "presence", ID: st.Head.ID, Type: "error", From: st.To.String(), To: st.Head.From}
	b := []byte("<x xmlns='" + NS + "'/>")
	r.emit(stanza.New(h, st.To, st.From, stanza.Build("presence", h.From, h.To, "error", h.ID, string(e.AppendXML(b)))))
}

func (r *room) enter(st *stanza.Routed, n *xmlstream.Node, nick string, refuse *stanza.Error) {
	x := n.Child(NS, "x")
	bare := st.From.Bare().String()
	created := false
	if !r.exists {
		if refuse != nil {
			r.joinFail(st, *refuse)
			return
		}
		// §10.1.1; a client without <x/> (§7.2.1: the old groupchat protocol) cannot configure the room, so its
		// room is an instant one at once.
		r.create(bare, x != nil)
		created = true
	}
	aff := r.affOf(bare)
	switch {
	case r.st.Locked && aff != Owner:
		r.joinFail(st, stanza.NewError(stanza.ItemNotFound).WithText("the room is locked until its owner configures it")) // §10.1.1
		return
	case aff == Outcast:
		r.joinFail(st, stanza.NewError(stanza.Forbidden)) // §7.2.7 banned
		return
	case r.st.Conf.MembersOnly && rank(aff) < rank(Member):
		r.joinFail(st, stanza.NewError(stanza.RegistrationRequired)) // §7.2.6
		return
	case r.st.Conf.Password != "" && (x == nil || childText(x, NS, "password") != r.st.Conf.Password):
		r.joinFail(st, stanza.NewError(stanza.NotAuthorized).WithText("a password is required")) // §7.2.5
		return
	case r.byNick[nick] != nil && r.byNick[nick].bare == bare:
		r.joinSession(st, n, x, r.byNick[nick])
		return
	case r.byNick[nick] != nil:
		r.joinFail(st, stanza.NewError(stanza.Conflict)) // §7.2.8
		return
	}
	if owner := r.nickOwner(nick); owner != "" && owner != bare {
		r.joinFail(st, stanza.NewError(stanza.Conflict).WithText("the nickname is reserved")) // §7.2.9
		return
	}
	if max, server := r.maxUsers(); len(r.list) >= max && rank(aff) < rank(Admin) {
		if server {
			r.srv.LimitHit(LimitOccupants)
		}
		r.joinFail(st, stanza.NewError(stanza.ServiceUnavailable).WithText("the room is full")) // §7.2.10
		return
	}
	o := &occupant{nick: nick, sess: []session{sessionOf(st.From)}, bare: bare,
		role: r.defaultRole(aff), payload: mucChildren(n, true), id: r.occupantID(bare),
		tokens: float64(r.lim.burst), refill: r.now}
	// §7.2.3: the occupants first, then the new occupant's presence to everyone, its own last.
	for _, rc := range r.list {
		r.presenceOf(rc, o, "", nil, itemExtra{})
	}
	r.add(o)
	var self []int
	if r.st.Conf.WhoIs == "anyone" {
		self = append(self, 100) // §7.2.4 non-anonymous
	}
	if created {
		self = append(self, 201) // §10.1.2
	}
	r.broadcast(o, "", nil, self, itemExtra{})
	r.welcome(o, st.From, x)
}

// welcome sends the resource to of o that just entered the room's avatar, the history and the subject.
func (r *room) welcome(o *occupant, to jid.JID, x *xmlstream.Node) {
	if r.st.PhotoHash != "" {
		r.avatarPresence(to)
	}
	r.history(o, to, x)
	r.subject(to)
}

// joinSession: another resource of o's user enters under o's nickname (multi-session nicks: the XEP lets a
// service allow it, §7.2.9, and Prosody does; the entry checks of enter ran already, the room limit does not
// apply as no occupant is added). The new resource gets every other occupant's presence; everyone gets o's
// presence again (the latest presence of any resource is the occupant's), every resource of o its
// self-presence; then the new resource gets the history and the subject. Others go on seeing one occupant.
func (r *room) joinSession(st *stanza.Routed, n, x *xmlstream.Node, o *occupant) {
	s := sessionOf(st.From)
	viewer := *o
	viewer.sess = []session{s}
	for _, rc := range r.list {
		if rc != o {
			r.presenceOf(rc, &viewer, "", nil, itemExtra{})
		}
	}
	o.sess = append(o.sess, s)
	r.byJID[st.From] = o
	o.payload = mucChildren(n, true)
	var self []int
	if r.st.Conf.WhoIs == "anyone" {
		self = append(self, 100)
	}
	r.broadcast(o, "", nil, self, itemExtra{})
	r.welcome(o, st.From, x)
}

func childText(n *xmlstream.Node, space, local string) string {
	if c := n.Child(space, local); c != nil {
		return c.TextContent()
	}
	return ""
}

// changeNick (§7.6): unavailable with 303 and the new nick, then available under the new one.
func (r *room) changeNick(st *stanza.Routed, n *xmlstream.Node, o *occupant, nick string) {
	if len(o.sess) > 1 {
		// One resource cannot take the nickname of all (Prosody splits the occupant; we keep it whole).
		r.fail(st, stanza.NewError(stanza.NotAcceptable).WithText("the nickname is shared by several of your resources: leave with the others first"))
		return
	}
	if r.byNick[nick] != nil {
		r.fail(st, stanza.NewError(stanza.Conflict)) // §7.6.3
		return
	}
	if owner := r.nickOwner(nick); owner != "" && owner != o.bare {
		r.fail(st, stanza.NewError(stanza.Conflict).WithText("the nickname is reserved"))
		return
	}
	r.remove(o)
	o.payload = ""
	r.unavailable(o, []int{303}, nil, itemExtra{nick: nick})
	o.nick = nick
	o.payload = mucChildren(n, true)
	r.add(o)
	r.broadcast(o, "", nil, nil, itemExtra{})
}

// history sends the last messages as the client asked (§7.2.15), oldest first, with delays.
func (r *room) history(o *occupant, to jid.JID, x *xmlstream.Node) {
	maxStanzas, maxChars := r.st.Conf.History, -1
	if maxStanzas > r.lim.history {
		maxStanzas = r.lim.history
	}
	var since time.Time
	if x != nil {
		if h := x.Child(NS, "history"); h != nil {
			if v, err := strconv.Atoi(h.Attr("maxstanzas")); err == nil && v >= 0 {
				maxStanzas = min(v, r.lim.history)
			}
			if v, err := strconv.Atoi(h.Attr("maxchars")); err == nil && v >= 0 {
				maxChars = v
			}
			if v, err := strconv.Atoi(h.Attr("seconds")); err == nil && v >= 0 {
				since = r.now.Add(-time.Duration(v) * time.Second)
			}
			if v, err := time.Parse(time.RFC3339Nano, h.Attr("since")); err == nil && v.After(since) {
				since = v
			}
		}
	}
	if r.st.Conf.Archive && r.historyFromArchive(o, to, maxStanzas, maxChars, since) {
		return
	}
	var picked []*stanza.Routed
	chars := 0
	for i := len(r.hist) - 1; i >= 0 && len(picked) < maxStanzas; i-- {
		h := r.hist[i]
		if !since.IsZero() && !h.at.After(since) {
			break
		}
		delay := stanza.Delay(r.jid.String(), h.at.UTC().Format("2006-01-02T15:04:05.000000Z"), "") // XEP-0082
		m := stanza.Generate("message", "groupchat", r.nickJID(h.nick), to, h.id, h.payload+delay)
		chars += utf8.RuneCountInString(m.Raw)
		if maxChars >= 0 && chars > maxChars {
			break
		}
		picked = append(picked, m)
	}
	for i := len(picked) - 1; i >= 0; i-- {
		r.emit(picked[i])
	}
}

// subject sends the subject to a new occupant (§7.2.16: always, empty if none).
func (r *room) subject(to jid.JID) {
	payload := "<subject/>"
	if r.st.Subject != "" {
		payload = "<subject>" + string(xmlstream.AppendEscapedText(nil, r.st.Subject)) + "</subject>"
	}
	r.send("message", "groupchat", r.st.SubjectBy, to, r.nextID(), payload)
}

// avatarPresence tells o the room's avatar hash (XEP-0153 in the room's own presence, as XEP-0486 does).
func (r *room) avatarPresence(to jid.JID) {
	r.send("presence", "", "", to, "", "<x xmlns='"+NSVCardUpd+"'><photo>"+r.st.PhotoHash+"</photo></x>")
}

var stanzaInternal = stanza.NewError(stanza.InternalServerError)
