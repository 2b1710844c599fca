package adhoc

import (
	"errors"

	"github.com/xmppd/xmppd/feature"
)

// wire: every question and message of an admin's session to user parts, and every answer, crosses cluster
// nodes (feature.Wire), so that each XEP-0133 command reaches accounts placed on any node: the surveys over every
// user (online/active/idle users, announcements, the message of the day) and the commands on one account
// (roster, last login, statistics, ending sessions, disabling, deleting). The names are the wire's: never
// renamed, never reused.
var wire = []feature.WireType{
	feature.WireJSON("population?", func(m populationQuery) error { return needDomain(m.Domain) }),
	feature.WireJSON("population", func(m userState) error {
		if m.Bare == "" {
			return errors.New("no account")
		}
		return nil
	}),
	feature.WireJSON("announce?", func(m announceQuery) error { // Domain "" is every domain (restart, shutdown)
		if m.Payload == "" {
			return errors.New("no announcement")
		}
		return nil
	}),
	feature.WireJSON[announced]("announce", nil),
	feature.WireJSON("motd?", func(m motdUpdate) error {
		if m.ID == "" && m.Body != "" {
			return errors.New("a message of the day without an id")
		}
		return needDomain(m.Domain)
	}),
	feature.WireJSON[motdDelivered]("motd", nil),
	feature.WireJSON[rosterQuery]("roster?", nil),
	feature.WireJSON("roster", func(m rosterAnswer) error {
		for _, it := range m.Items {
			switch {
			case it.JID == "":
				return errors.New("a roster item without a JID")
			case it.Subscription != "" && it.Subscription != "none" && it.Subscription != "to" && it.Subscription != "from" && it.Subscription != "both":
				return errors.New("a roster item with subscription " + it.Subscription) // RFC 6121 §2.1.2.5
			}
		}
		return nil
	}),
	feature.WireJSON[statsQuery]("stats?", nil),
	feature.WireJSON("stats", func(m statsAnswer) error {
		if m.RosterSize < 0 {
			return errors.New("a negative roster size")
		}
		return nil
	}),
	feature.WireJSON[lastLoginQuery]("lastlogin?", nil),
	feature.WireJSON[lastLoginAnswer]("lastlogin", nil),
	feature.WireJSON("end", func(m endSessions) error {
		if m.Condition == "" {
			return errors.New("no stream error condition")
		}
		return nil
	}),
	feature.WireJSON("ended", func(m sessionsEnded) error {
		if m.N < 0 {
			return errors.New("a negative number of sessions")
		}
		return nil
	}),
	feature.WireJSON[accountDeleted]("deleted", nil),
}

func needDomain(d string) error {
	if d == "" {
		return errors.New("no domain")
	}
	return nil
}
