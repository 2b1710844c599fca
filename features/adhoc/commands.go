package adhoc

import (
	"context"
	"errors"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/xmppd/xmppd/accounts"
	"github.com/xmppd/xmppd/feature"
	"github.com/xmppd/xmppd/protocol/jid"
	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/storage"
)

// The XEP-0133 §4 commands, in the XEP's order. Left out:
//   - get-user-password (§4.6): credentials are stored only as SCRAM keys (RFC 5802 §3), from which the password
//     cannot be recovered, which is the point of storing them so;
//   - edit-blacklist, edit-whitelist (§4.11, §4.12): the server has no service-wide block or allow lists.

// command is one XEP-0133 command.
type command struct {
	// node is the part of the node after NSAdmin + "#".
	node string
	// name is the disco item name; title and instructions head the form.
	name, title, instructions string
	// fields are the form's fields (after FORM_TYPE); nil: the command runs at once.
	fields func(r *run) (string, error)
	run    func(r *run, f formValues)
}

// aliases are node spellings in use besides the XEP's SHOULD: §4.21 and §4.22 name the lists of active and idle
// users without the "-list" of §4.18-§4.20, which some clients add, and some drop it for online users. They are
// executable and described, not listed.
var aliases = map[string]string{
	"get-active-users-list": "get-active-users",
	"get-idle-users-list":   "get-idle-users",
	"get-online-users":      "get-online-users-list",
}

var commands = []*command{
	{node: "add-user", name: "Add a User", title: "Adding a User", instructions: "Fill out this form to add a user.",
		fields: static(field("accountjid", "jid-single", "The Jabber ID for the account to be added", true) +
			// Required here although the XEP's example does not mark it: an empty password is refused.
			field("password", "text-private", "The password for this account", true) +
			field("password-verify", "text-private", "Retype password", false)),
		run: addUser},
	{node: "delete-user", name: "Delete a User", title: "Deleting a User", instructions: "Fill out this form to delete a user.",
		fields: static(field("accountjids", "jid-multi", "The Jabber ID(s) to delete", true)), run: deleteUser},
	{node: "disable-user", name: "Disable a User", title: "Disabling a User", instructions: "Fill out this form to disable a user.",
		fields: static(field("accountjids", "jid-multi", "The Jabber ID(s) to disable", true)), run: disableUser},
	{node: "reenable-user", name: "Re-Enable a User", title: "Re-Enable a User", instructions: "Fill out this form to re-enable a user.",
		fields: static(field("accountjids", "jid-multi", "The Jabber ID(s) to re-enable", true)), run: reenableUser},
	{node: "end-user-session", name: "End User Session", title: "Ending a User Session", instructions: "Fill out this form to end a user's session.",
		fields: static(field("accountjids", "jid-multi", "The Jabber ID(s) for which to end sessions", true)), run: endUserSession},
	{node: "change-user-password", name: "Change User Password", title: "Changing a User Password", instructions: "Fill out this form to change a user's password.",
		fields: static(field("accountjid", "jid-single", "The Jabber ID for this account", true) +
			field("password", "text-private", "The password for this account", true)),
		run: changePassword},
	{node: "get-user-roster", name: "Get User Roster", title: "Getting a User's Roster", instructions: "Fill out this form to get a user's roster.",
		fields: static(field("accountjids", "jid-multi", "The Jabber ID(s) for which to retrieve the roster", true)), run: userRoster},
	{node: "get-user-lastlogin", name: "Get User Last Login Time", title: "Getting a User's Last Login Time", instructions: "Fill out this form to get a user's last login time.",
		fields: static(field("accountjids", "jid-multi", "The Jabber ID(s) for which to retrieve the last login time", true)), run: userLastLogin},
	{node: "user-stats", name: "Get User Statistics", title: "Get User Statistics", instructions: "Fill out this form to gather user statistics.",
		fields: static(field("accountjid", "jid-single", "The Jabber ID for statistics", true)), run: userStats},
	{node: "get-registered-users-num", name: "Get Number of Registered Users", run: registeredNum},
	{node: "get-disabled-users-num", name: "Get Number of Disabled Users", run: disabledNum},
	{node: "get-online-users-num", name: "Get Number of Online Users", run: populationNum(online, "onlineusersnum", "The number of online users")},
	{node: "get-active-users-num", name: "Get Number of Active Users", run: populationNum(active, "activeusersnum", "The number of active users")},
	{node: "get-idle-users-num", name: "Get Number of Idle Users", run: populationNum(idle, "idleusersnum", "The number of idle users")},
	{node: "get-registered-users-list", name: "Get List of Registered Users", title: "Requesting List of Registered Users",
		instructions: "Fill out this form to request the registered users of this service.", fields: static(maxItemsField), run: registeredList},
	{node: "get-disabled-users-list", name: "Get List of Disabled Users", title: "Requesting List of Disabled Users",
		instructions: "Fill out this form to request the disabled users of this service.", fields: static(maxItemsField), run: disabledList},
	{node: "get-online-users-list", name: "Get List of Online Users", title: "Requesting List of Online Users",
		instructions: "Fill out this form to request the online users of this service.", fields: static(maxItemsField),
		run: populationList(online, "onlineuserjids", "The list of all online users")},
	{node: "get-active-users", name: "Get List of Active Users", title: "Requesting List of Active Users",
		instructions: "Fill out this form to request the active users of this service.", fields: static(maxItemsField),
		run: populationList(active, "activeuserjids", "The list of active users")},
	// §4.22's result names the field activeuserjids (the registry of §8.2 has no idleuserjids): kept, so
	// that clients written against the XEP find it.
	{node: "get-idle-users", name: "Get List of Idle Users", title: "Requesting List of Idle Users",
		instructions: "Fill out this form to request the idle users of this service.", fields: static(maxItemsField),
		run: populationList(idle, "activeuserjids", "The list of idle users")},
	{node: "announce", name: "Send Announcement to Online Users", title: "Making an Announcement",
		instructions: "Fill out this form to make an announcement to all active users of this service.",
		fields:       static(field("announcement", "text-multi", "Announcement", true)), run: announce},
	{node: "set-motd", name: "Set Message of the Day", title: "Setting the Message of the Day", instructions: "Fill out this form to set the message of the day.",
		fields: static(field("motd", "text-multi", "Message of the Day", true)), run: setMOTD},
	{node: "edit-motd", name: "Edit Message of the Day", title: "Editing the Message of the Day", instructions: "Fill out this form to edit the message of the day.",
		fields: currentText(KVMOTD, "motd", "motd", "Message of the Day"), run: setMOTD},
	{node: "delete-motd", name: "Delete Message of the Day", run: deleteMOTD},
	{node: "set-welcome", name: "Set Welcome Message", title: "Setting Welcome Message", instructions: "Fill out this form to set the welcome message for this service.",
		fields: currentText(KVWelcome, "welcome", "welcome", "Welcome Message"), run: setWelcome},
	{node: "delete-welcome", name: "Delete Welcome Message", run: deleteWelcome},
	{node: "edit-admin", name: "Edit Admin List", title: "Editing the Admin List",
		instructions: "Fill out this form to edit the list of entities who have administrative privileges.", fields: adminFields, run: editAdmin},
	{node: "restart", name: "Restart Service", title: "Restarting the Service", instructions: "Fill out this form to restart the service.",
		fields: static(delayField("Time delay before restarting") + field("announcement", "text-multi", "Announcement", false)), run: stop(true)},
	{node: "shutdown", name: "Shut Down Service", title: "Shutting Down the Service", instructions: "Fill out this form to shut down the service.",
		fields: static(delayField("Time delay before shutting down") + field("announcement", "text-multi", "Announcement", false)), run: stop(false)},
}

// findCommand is the command of a node (nil if none).
func findCommand(node string) *command {
	name, ok := strings.CutPrefix(node, NSAdmin+"#")
	if !ok {
		return nil
	}
	if a, ok := aliases[name]; ok {
		name = a
	}
	for _, c := range commands {
		if c.node == name {
			return c
		}
	}
	return nil
}

// ---- form building ----

func static(fields string) func(*run) (string, error) {
	return func(*run) (string, error) { return fields, nil }
}

func field(v, typ, label string, required bool, values ...string) string {
	s := "<field var='" + v + "' type='" + typ + "' label='" + attr(label) + "'>"
	if required {
		s += "<required/>"
	}
	for _, val := range values {
		s += "<value>" + text(val) + "</value>"
	}
	return s + "</field>"
}

// maxItemsField is §4.18-§4.22's limit of a list.
var maxItemsField = "<field var='max_items' type='list-single' label='Maximum number of items to show'>" +
	"<option label='25'><value>25</value></option><option label='50'><value>50</value></option>" +
	"<option label='75'><value>75</value></option><option label='100'><value>100</value></option>" +
	"<option label='150'><value>150</value></option><option label='200'><value>200</value></option>" +
	"<option label='None'><value>none</value></option></field>"

// delayField is §4.30/§4.31's delay (list-single in the forms, although the registry of §8.2 says list-multi:
// one delay is chosen).
func delayField(label string) string {
	return "<field var='delay' type='list-single' label='" + label + "'>" +
		"<option label='30 seconds'><value>30</value></option><option label='60 seconds'><value>60</value></option>" +
		"<option label='90 seconds'><value>90</value></option><option label='2 minutes'><value>120</value></option>" +
		"<option label='3 minutes'><value>180</value></option><option label='4 minutes'><value>240</value></option>" +
		"<option label='5 minutes'><value>300</value></option></field>"
}

// currentText is a required text-multi field filled with the stored text (§4.25, §4.27: the form SHOULD include
// the current message).
func currentText(ns, key, v, label string) func(*run) (string, error) {
	return func(r *run) (string, error) {
		cur, err := r.srv().Store().GetKV(context.Background(), r.domain, ns, key)
		switch {
		case errors.Is(err, storage.ErrNotFound):
			cur = ""
		case err != nil:
			return "", err
		}
		if ns == KVMOTD {
			_, cur, _ = strings.Cut(cur, "\n") // "id\nbody"
		}
		var lines []string
		if cur != "" {
			lines = strings.Split(cur, "\n")
		}
		return field(v, "text-multi", label, true, lines...), nil
	}
}

func jidField(v, typ, label string, jids []string) string {
	return field(v, typ, label, false, jids...)
}

// ---- arguments ----

// accountsArg parses the account JIDs of field v, each on a served domain; with resources, full JIDs are
// allowed too. An empty field is bad-payload, a JID that does not parse jid-malformed; nothing is done then.
func (r *run) accountsArg(f formValues, v string, resources bool) ([]jid.JID, bool) {
	var out []jid.JID
	seen := map[jid.JID]bool{}
	cfg := r.srv().Config()
	for _, s := range f[v] {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		var j jid.JID
		var err error
		if resources {
			if j, err = jid.Parse(s); err == nil {
				_, err = accounts.ParseAccount(cfg, j.Bare().String()) // a user@domain on a served domain
			}
		} else {
			j, err = accounts.ParseAccount(cfg, s)
		}
		if err != nil {
			r.fail(stanza.NewError(stanza.JIDMalformed).WithText(err.Error()))
			return nil, false
		}
		if !seen[j] {
			seen[j] = true
			out = append(out, j)
		}
	}
	if len(out) == 0 {
		r.badForm("the field " + v + " is required")
		return nil, false
	}
	return out, true
}

// accountArg is accountsArg for a field with exactly one account.
func (r *run) accountArg(f formValues, v string) (jid.JID, bool) {
	js, ok := r.accountsArg(f, v, false)
	if !ok {
		return jid.JID{}, false
	}
	if len(js) != 1 {
		r.badForm("one account at a time in " + v)
		return jid.JID{}, false
	}
	return js[0], true
}

// exists checks that the account exists (item-not-found if not).
func (r *run) exists(j jid.JID) bool {
	_, err := r.srv().Store().Credentials(context.Background(), j.String())
	switch {
	case err == nil:
		return true
	case errors.Is(err, storage.ErrNotFound):
		r.fail(stanza.NewError(stanza.ItemNotFound).WithText("no such account: " + j.String()))
	default:
		r.internal(err, "reading the account")
	}
	return false
}

// maxItems is the max_items field: 0 for no limit.
func (r *run) maxItems(f formValues) (int, bool) {
	switch v := f.one("max_items"); v {
	case "", "none":
		return 0, true
	default:
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			r.badForm("max_items must be a positive number or none")
			return 0, false
		}
		return n, true
	}
}

func (r *run) admin() string { return r.q.Session.Full().Bare().String() }

// summary is a note of what happened to which accounts ("Deleted: a, b. No such account: c.").
func summary(parts ...string) string {
	var out []string
	for i := 0; i+1 < len(parts); i += 2 {
		if parts[i+1] != "" {
			out = append(out, parts[i]+": "+parts[i+1]+".")
		}
	}
	return strings.Join(out, " ")
}

func joinJIDs(js []jid.JID) string {
	s := make([]string, len(js))
	for i, j := range js {
		s[i] = j.String()
	}
	return strings.Join(s, ", ")
}

// ---- user accounts (§4.1-§4.10) ----

func addUser(r *run, f formValues) {
	j, ok := r.accountArg(f, "accountjid")
	if !ok {
		return
	}
	pw := f.one("password")
	if pw == "" {
		r.badForm("the password must not be empty")
		return
	}
	if f.has("password-verify") && f.one("password-verify") != pw {
		r.badForm("the passwords do not match")
		return
	}
	srv := r.srv()
	switch err := accounts.AddUser(context.Background(), srv.Config(), srv.Store(), j, pw); {
	case err == nil:
		r.q.Session.Log().Info().Str("account", j.String()).Str("admin", r.admin()).Msg("account added by an admin")
		srv.AccountCreated(j) // every feature's hook: the welcome message among them
		r.done("The account " + j.String() + " was created.")
	case errors.Is(err, storage.ErrExists):
		r.fail(stanza.NewError(stanza.Conflict).WithText("the account exists"))
	default:
		r.internal(err, "creating the account")
	}
}

func deleteUser(r *run, f formValues) {
	js, ok := r.accountsArg(f, "accountjids", false)
	if !ok {
		return
	}
	var deleted, missing []jid.JID
	for _, j := range js {
		switch err := r.srv().Store().DeleteAccount(context.Background(), j.String()); {
		case err == nil:
			// §4.2: the user's sessions end; the user actor also cancels the subscriptions (see accountDeleted).
			r.q.Session.ToUserOf(j, accountDeleted{})
			deleted = append(deleted, j)
		case errors.Is(err, storage.ErrNotFound):
			missing = append(missing, j)
		default:
			r.internal(err, "deleting "+j.String())
			return
		}
	}
	if len(deleted) > 0 {
		r.q.Session.Log().Info().Str("accounts", joinJIDs(deleted)).Str("admin", r.admin()).Msg("accounts deleted by an admin")
	}
	r.done(summary("Deleted", joinJIDs(deleted), "No such account", joinJIDs(missing)))
}

// Stream errors for sessions an admin ends. RFC 6120 has no "kicked" condition: policy-violation (§4.9.3.14) is
// the one for local service policy, and what other servers send for an admin's kick; conflict (§4.9.3.3) would
// tell the client that another session took its resource, and reset (§4.9.3.16) asks for a new stream at once,
// which is for renegotiating security, not for ending a session.
const (
	kickCondition    = "policy-violation"
	kickText         = "the session was ended by an administrator"
	disableCondition = "policy-violation"
	disableText      = "the account was disabled by an administrator"
)

func disableUser(r *run, f formValues) {
	js, ok := r.accountsArg(f, "accountjids", false)
	if !ok {
		return
	}
	var disabled, missing []jid.JID
	for _, j := range js {
		switch err := accounts.Disable(context.Background(), r.srv().Store(), j, "disabled by "+r.admin()); {
		case err == nil:
			// §4.3: disabling MUST end the user's sessions (login refuses the account from now on).
			r.q.Session.ToUserOf(j, endSessions{Condition: disableCondition, Text: disableText})
			disabled = append(disabled, j)
		case errors.Is(err, storage.ErrNotFound):
			missing = append(missing, j)
		default:
			r.internal(err, "disabling "+j.String())
			return
		}
	}
	if len(disabled) > 0 {
		r.q.Session.Log().Info().Str("accounts", joinJIDs(disabled)).Str("admin", r.admin()).Msg("accounts disabled by an admin")
	}
	r.done(summary("Disabled", joinJIDs(disabled), "No such account", joinJIDs(missing)))
}

func reenableUser(r *run, f formValues) {
	js, ok := r.accountsArg(f, "accountjids", false)
	if !ok {
		return
	}
	ctx, store := context.Background(), r.srv().Store()
	var enabled, notDisabled []jid.JID
	for _, j := range js {
		d, err := accounts.IsDisabled(ctx, store, j)
		if err == nil && d {
			err = accounts.Enable(ctx, store, j)
		}
		if err != nil {
			r.internal(err, "re-enabling "+j.String())
			return
		}
		if d {
			enabled = append(enabled, j)
		} else {
			notDisabled = append(notDisabled, j)
		}
	}
	if len(enabled) > 0 {
		r.q.Session.Log().Info().Str("accounts", joinJIDs(enabled)).Str("admin", r.admin()).Msg("accounts re-enabled by an admin")
	}
	r.done(summary("Re-enabled", joinJIDs(enabled), "Not disabled", joinJIDs(notDisabled)))
}

// endUserSession: §4.5: a bare JID ends every session of the user, a full JID that session only.
func endUserSession(r *run, f formValues) {
	js, ok := r.accountsArg(f, "accountjids", true)
	if !ok {
		return
	}
	ended := make([]int, len(js))
	r.askEach(js, func(j jid.JID) any {
		return endSessions{Resource: j.Resource(), Condition: kickCondition, Text: kickText}
	}, func(i int, a any, ok bool) {
		if e, isEnded := a.(sessionsEnded); ok && isEnded {
			ended[i] = e.N
		}
	}, func() {
		var done, none []jid.JID
		n := 0
		for i, j := range js {
			if ended[i] > 0 {
				done = append(done, j)
				n += ended[i]
			} else {
				none = append(none, j)
			}
		}
		if n > 0 {
			r.q.Session.Log().Info().Str("sessions", joinJIDs(done)).Str("admin", r.admin()).Msg("sessions ended by an admin")
		}
		r.done(summary("Ended "+strconv.Itoa(n)+" session(s) of", joinJIDs(done), "No session", joinJIDs(none)))
	})
}

// askEach asks the user part of each JID's account (concurrently) and calls answer for each (ok false: no answer
// within the timeout), then all.
func (r *run) askEach(js []jid.JID, q func(jid.JID) any, answer func(i int, a any, ok bool), all func()) {
	left := len(js)
	for i, j := range js {
		r.q.Session.Ask(j.Bare(), q(j), answerTimeout, func(a any, ok bool) {
			answer(i, a, ok)
			if left--; left == 0 {
				all()
			}
		})
	}
}

func changePassword(r *run, f formValues) {
	j, ok := r.accountArg(f, "accountjid")
	if !ok {
		return
	}
	if f.one("password") == "" {
		r.badForm("the password must not be empty")
		return
	}
	srv := r.srv()
	switch err := accounts.SetPassword(context.Background(), srv.Config(), srv.Store(), j, f.one("password")); {
	case err == nil:
		r.q.Session.Log().Info().Str("account", j.String()).Str("admin", r.admin()).Msg("password changed by an admin")
		r.done("The password of " + j.String() + " was changed.")
	case errors.Is(err, storage.ErrNotFound):
		r.fail(stanza.NewError(stanza.ItemNotFound).WithText("no such account: " + j.String()))
	default:
		r.internal(err, "changing the password")
	}
}

// userRoster: §4.8: the roster as a jabber:iq:roster query inside the result form. One account at a time: the
// query does not say whose roster it is.
func userRoster(r *run, f formValues) {
	j, ok := r.accountArg(f, "accountjids")
	if !ok || !r.exists(j) {
		return
	}
	r.q.Session.Ask(j, rosterQuery{}, answerTimeout, func(a any, ok bool) {
		var items []storage.RosterItem
		if ra, isRoster := a.(rosterAnswer); ok && isRoster {
			items = ra.Items
		} else {
			// The user actor did not answer (it may just have stopped): storage has the same roster.
			var err error
			if items, _, err = r.srv().Store().Roster(context.Background(), j.String()); err != nil {
				r.internal(err, "reading the roster")
				return
			}
		}
		var b strings.Builder
		b.WriteString("<query xmlns='" + stanza.NSRoster + "'>")
		for _, it := range items {
			b.WriteString("<item jid='" + attr(it.JID) + "'")
			if it.Name != "" {
				b.WriteString(" name='" + attr(it.Name) + "'")
			}
			sub := it.Subscription
			if sub == "" {
				sub = "none"
			}
			b.WriteString(" subscription='" + sub + "'")
			if it.Ask {
				b.WriteString(" ask='subscribe'")
			}
			if len(it.Groups) == 0 {
				b.WriteString("/>")
				continue
			}
			b.WriteString(">")
			for _, g := range it.Groups {
				b.WriteString("<group>" + text(g) + "</group>")
			}
			b.WriteString("</item>")
		}
		b.WriteString("</query>")
		r.result(jidField("accountjids", "jid-multi", "The Jabber ID(s) for which to retrieve the roster", []string{j.String()}) + b.String())
	})
}

// userLastLogin: §4.9. The server keeps when a session was last bound only while the user actor lives; for a
// user offline now it reports when the last session ended (the last unavailable presence, XEP-0012), the latest
// time known at which the user was logged in. Never logged in: the field has no value.
func userLastLogin(r *run, f formValues) {
	j, ok := r.accountArg(f, "accountjids")
	if !ok || !r.exists(j) {
		return
	}
	r.q.Session.Ask(j, lastLoginQuery{}, answerTimeout, func(a any, ok bool) {
		var at time.Time
		if la, isLast := a.(lastLoginAnswer); ok && isLast && !la.At.IsZero() {
			at = la.At
		} else {
			// No answer, or a user actor that knows of no session: the last one stored.
			_, t, err := r.srv().Store().LastPresence(context.Background(), j.String())
			switch {
			case err == nil:
				at = t
			case !errors.Is(err, storage.ErrNotFound):
				r.internal(err, "reading the last presence")
				return
			}
		}
		var vals []string
		if !at.IsZero() {
			vals = []string{at.UTC().Format("2006-01-02T15:04:05Z")} // XEP-0082 DateTime
		}
		r.result(jidField("accountjids", "jid-multi", "The Jabber ID(s) for which to retrieve the last login time", []string{j.String()}) +
			field("lastlogin", "text-single", "The last login time (per XEP-0082) of a user", false, vals...))
	})
}

// userStats: §4.10, with what the server knows: roster size, online resources and their addresses (no stanza or
// login rates are counted).
func userStats(r *run, f formValues) {
	j, ok := r.accountArg(f, "accountjid")
	if !ok || !r.exists(j) {
		return
	}
	r.q.Session.Ask(j, statsQuery{}, answerTimeout, func(a any, ok bool) {
		st, isStats := a.(statsAnswer)
		if !ok || !isStats {
			items, _, err := r.srv().Store().Roster(context.Background(), j.String())
			if err != nil {
				r.internal(err, "reading the roster")
				return
			}
			st = statsAnswer{RosterSize: len(items)}
		}
		// The registry (§8.2) types ipaddresses list-multi and onlineresources text-single; several resources
		// need a multi-valued type (XEP-0004 §3.3), hence text-multi, one per line as in the XEP's example.
		r.result(field("ipaddresses", "list-multi", "The IP addresses of an account's online sessions", false, st.Addresses...) +
			field("rostersize", "text-single", "Number of roster items for an account", false, strconv.Itoa(st.RosterSize)) +
			field("onlineresources", "text-multi", "The names of an account's online sessions", false, st.Resources...))
	})
}

// ---- numbers and lists of users (§4.13-§4.22) ----

func registeredNum(r *run, _ formValues) {
	n, err := r.srv().Store().CountAccounts(context.Background(), r.domain)
	if err != nil {
		r.internal(err, "counting accounts")
		return
	}
	r.result(field("registeredusersnum", "text-single", "The number of registered users", false, strconv.Itoa(n)))
}

func disabledNum(r *run, _ formValues) {
	d, err := accounts.ListDisabled(context.Background(), r.srv().Store(), r.domain)
	if err != nil {
		r.internal(err, "listing disabled accounts")
		return
	}
	r.result(field("disabledusersnum", "text-single", "The number of disabled users", false, strconv.Itoa(len(d))))
}

func registeredList(r *run, f formValues) {
	limit, ok := r.maxItems(f)
	if !ok {
		return
	}
	all, err := r.srv().Store().ListAccounts(context.Background(), r.domain)
	if err != nil {
		r.internal(err, "listing accounts")
		return
	}
	r.result(jidField("registereduserjids", "jid-multi", "The list of all users", truncate(all, limit)))
}

func disabledList(r *run, f formValues) {
	limit, ok := r.maxItems(f)
	if !ok {
		return
	}
	d, err := accounts.ListDisabled(context.Background(), r.srv().Store(), r.domain)
	if err != nil {
		r.internal(err, "listing disabled accounts")
		return
	}
	r.result(jidField("disableduserjids", "jid-multi", "The list of all disabled users", truncate(d, limit)))
}

func truncate(s []string, limit int) []string {
	if limit > 0 && len(s) > limit {
		return s[:limit]
	}
	return s
}

// Which users count, from what each user part says of its sessions (userState). §4.15: online is "at least one
// connected or available resource"; §4.16/§4.17 leave active and idle to the service: active here is a user with
// an available resource whose presence shows none, chat or dnd (someone is there, busy or not), idle one whose
// resources are all away or xa (what clients set by themselves when the user is not at the device) or not
// available yet. Online = active + idle, as the XEP's revision 1.1 puts it.
type population int

const (
	online population = iota
	active
	idle
)

func (p population) has(u userState) bool {
	switch p {
	case online:
		return u.Online
	case active:
		return u.Active
	default:
		return u.Online && !u.Active
	}
}

// survey asks every user part of the command's domain about its sessions.
func (r *run) survey(done func([]userState)) {
	r.q.Session.Survey(populationQuery{Domain: r.domain}, answerTimeout, func(answers []any) {
		var users []userState
		at := map[string]int{}
		for _, a := range answers {
			u, ok := a.(userState)
			if !ok {
				continue
			}
			// In a cluster an account that just moved to another node may answer twice (its old actor is
			// retiring there while the new one starts): one user, online if either says so.
			if i, dup := at[u.Bare]; dup {
				users[i].Online, users[i].Active = users[i].Online || u.Online, users[i].Active || u.Active
				continue
			}
			at[u.Bare] = len(users)
			users = append(users, u)
		}
		sort.Slice(users, func(i, j int) bool { return users[i].Bare < users[j].Bare })
		done(users)
	})
}

func populationNum(p population, v, label string) func(*run, formValues) {
	return func(r *run, _ formValues) {
		r.survey(func(users []userState) {
			n := 0
			for _, u := range users {
				if p.has(u) {
					n++
				}
			}
			r.result(field(v, "text-single", label, false, strconv.Itoa(n)))
		})
	}
}

func populationList(p population, v, label string) func(*run, formValues) {
	return func(r *run, f formValues) {
		limit, ok := r.maxItems(f)
		if !ok {
			return
		}
		r.survey(func(users []userState) {
			var jids []string
			for _, u := range users {
				if p.has(u) {
					jids = append(jids, u.Bare)
				}
			}
			r.result(jidField(v, "jid-multi", label, truncate(jids, limit)))
		})
	}
}

// ---- announcements, MOTD, welcome message (§4.23-§4.28) ----

// announcement is the payload of an announcement headline.
func announcement(subject, body string) string {
	p := ""
	if subject != "" {
		p = "<subject>" + text(subject) + "</subject>"
	}
	return p + "<body>" + text(body) + "</body>"
}

// announceTo sends the headline to the available resources of every user of domain ("" for every domain) and
// reports how many users got it.
func (r *run) announceTo(domain, payload string, done func(users int)) {
	r.q.Session.Survey(announceQuery{Domain: domain, Payload: payload}, answerTimeout, func(answers []any) {
		n := 0
		for _, a := range answers {
			if ar, ok := a.(announced); ok && ar.Reached {
				n++
			}
		}
		done(n)
	})
}

func announce(r *run, f formValues) {
	body := f.text("announcement")
	if body == "" {
		r.badForm("the announcement is empty")
		return
	}
	// subject is not an XEP-0133 field, but earlier versions of this server offered it: still honoured.
	r.announceTo(r.domain, announcement(f.one("subject"), body), func(n int) {
		r.done("The announcement was sent to " + strconv.Itoa(n) + " online user(s).")
	})
}

// setMOTD stores the message of the day ("id\nbody", the id telling users who already got it) and sends it to
// the users online now (§4.24 note: "sent immediately to users who are online when the message is set, or after
// the next session initiation for other users"). Editing (§4.25) makes a new message that users get again.
func setMOTD(r *run, f formValues) {
	body := f.text("motd")
	if body == "" {
		r.badForm("the message of the day is empty")
		return
	}
	id := time.Now().UTC().Format(time.RFC3339Nano)
	if err := r.srv().Store().PutKV(context.Background(), r.domain, KVMOTD, "motd", id+"\n"+body); err != nil {
		r.internal(err, "storing the message of the day")
		return
	}
	r.motdUpdate(id, body, func(n int) {
		r.done("The message of the day was set and sent to " + strconv.Itoa(n) + " online user(s).")
	})
}

func deleteMOTD(r *run, _ formValues) {
	if err := r.srv().Store().DeleteKV(context.Background(), r.domain, KVMOTD, "motd"); err != nil {
		r.internal(err, "deleting the message of the day")
		return
	}
	// Live user actors forget it too, so that a user yet to get it does not.
	r.motdUpdate("", "", func(int) { r.done("The message of the day was deleted.") })
}

func (r *run) motdUpdate(id, body string, done func(int)) {
	r.q.Session.Survey(motdUpdate{Domain: r.domain, ID: id, Body: body}, answerTimeout, func(answers []any) {
		n := 0
		for _, a := range answers {
			if m, ok := a.(motdDelivered); ok && m.Delivered {
				n++
			}
		}
		done(n)
	})
}

func setWelcome(r *run, f formValues) {
	body := f.text("welcome")
	if body == "" {
		r.badForm("the welcome message is empty")
		return
	}
	if err := r.srv().Store().PutKV(context.Background(), r.domain, KVWelcome, "welcome", body); err != nil {
		r.internal(err, "storing the welcome message")
		return
	}
	r.done("The welcome message was set.")
}

func deleteWelcome(r *run, _ formValues) {
	if err := r.srv().Store().DeleteKV(context.Background(), r.domain, KVWelcome, "welcome"); err != nil {
		r.internal(err, "deleting the welcome message")
		return
	}
	r.done("The welcome message was deleted.")
}

// welcome queues the domain's welcome message, if one is set, for a new account (§4.27: newly registered users
// get it when they first log in, which the offline queue does).
func welcome(srv feature.Server, account jid.JID) error {
	ctx := context.Background()
	body, err := srv.Store().GetKV(ctx, account.Domain(), KVWelcome, "welcome")
	if errors.Is(err, storage.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	st := stanza.Build("message", account.Domain(), account.String(), "", "", "<body>"+text(body)+"</body>")
	_, err = srv.Store().PushOffline(ctx, account.String(), st, time.Now(), srv.Config().Offline.MaxMessages)
	return err
}

// ---- admins and the service (§4.29-§4.31) ----

// configuredAdmins are the admins key of the configuration, as bare JIDs.
func configuredAdmins(r *run) []string {
	var out []string
	for _, a := range r.srv().Config().Admins {
		if j, err := jid.Parse(a); err == nil {
			out = append(out, j.Bare().String())
		}
	}
	sort.Strings(out)
	return out
}

func adminFields(r *run) (string, error) {
	return jidField("adminjids", "jid-multi", "The admin list", configuredAdmins(r)), nil
}

// editAdmin shows the admin list; it cannot change it: the list is the admins key of the configuration, which
// the running server only reads (§5: not-allowed, "no entity is allowed to perform the command").
func editAdmin(r *run, f formValues) {
	var submitted []string
	seen := map[string]bool{}
	for _, s := range f["adminjids"] {
		j, err := jid.Parse(strings.TrimSpace(s))
		if err != nil {
			r.fail(stanza.NewError(stanza.JIDMalformed).WithText(err.Error()))
			return
		}
		if b := j.Bare().String(); !seen[b] {
			seen[b] = true
			submitted = append(submitted, b)
		}
	}
	sort.Strings(submitted)
	if strings.Join(submitted, " ") == strings.Join(configuredAdmins(r), " ") {
		r.done("The admin list is unchanged.")
		return
	}
	r.fail(stanza.NewError(stanza.NotAllowed).WithText("the admin list is the admins key of config.toml: edit it there and restart the server"))
}

// maxDelay bounds the delay of a restart or shutdown (the form offers up to 5 minutes).
const maxDelay = time.Hour

// stop is restart (§4.30) or shutdown (§4.31): the announcement goes to every user online on every domain (the
// whole service stops), then the command completes, then, after the delay, the server ends every stream with
// <system-shutdown/>.
func stop(restart bool) func(*run, formValues) {
	return func(r *run, f formValues) {
		var delay time.Duration
		if v := f.one("delay"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || time.Duration(n)*time.Second > maxDelay {
				r.badForm("delay must be a number of seconds up to " + strconv.Itoa(int(maxDelay/time.Second)))
				return
			}
			delay = time.Duration(n) * time.Second
		}
		what := "shut down"
		if restart {
			what = "restart"
		}
		finish := func() {
			r.q.Session.Log().Warn().Str("admin", r.admin()).Dur("delay", delay).Bool("restart", restart).Msg("service " + what + " requested by an admin")
			when := "now"
			if delay > 0 {
				when = "in " + strconv.Itoa(int(delay/time.Second)) + " seconds"
			}
			r.done("The service will " + what + " " + when + ".")
			srv := r.srv()
			if delay == 0 {
				srv.Shutdown(restart)
				return
			}
			r.p.after(delay, func() { srv.Shutdown(restart) })
		}
		if body := f.text("announcement"); body != "" {
			r.announceTo("", announcement("", body), func(int) { finish() })
			return
		}
		finish()
	}
}
