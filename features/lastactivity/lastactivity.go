// Package lastactivity is XEP-0012 last activity. To the server: seconds since it started (§5). To an account:
// the server answers on the user's behalf (§4): 0 while a resource is available, else seconds since the last
// resource went offline, with the status of its unavailable presence; only the user and contacts allowed to see
// the user's presence may ask (others get forbidden, §4 and §8: last activity is presence information).
package lastactivity

import (
	"strconv"
	"time"

	"github.com/xmppd/xmppd/feature"
	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/protocol/xmlstream"
)

// NS is the XEP-0012 namespace.
const NS = "jabber:iq:last"

// Feature is XEP-0012.
var Feature = &feature.Feature{
	Name:        "last",
	ServerVars:  []string{NS},
	AccountVars: []string{NS},
	IQs: []feature.IQRoute{{
		Name:    xmlstream.Name{Space: NS, Local: "query"},
		Server:  serverIQ,
		Account: accountIQ,
	}},
}

func serverIQ(q *feature.IQ) {
	if !q.IsGet() {
		q.Fail(stanza.NewError(stanza.BadRequest))
		return
	}
	q.Result(query(time.Since(q.Session.Server().Started()), ""))
}

func accountIQ(a *feature.AccountIQ) {
	if !a.IsGet() {
		a.Fail(stanza.NewError(stanza.BadRequest))
		return
	}
	if !a.Subscriber() {
		a.Fail(stanza.NewError(stanza.Forbidden))
		return
	}
	for _, r := range a.User.Resources() {
		if r.Available {
			a.Result(query(0, ""))
			return
		}
	}
	at, presence := a.User.LastSeen()
	if at.IsZero() {
		a.Fail(stanza.NewError(stanza.ItemNotFound)) // never logged in: nothing to tell
		return
	}
	a.Result(query(time.Since(at), status(presence)))
}

// query is the <query/> answer: whole seconds, and the status text if any.
func query(d time.Duration, status string) string {
	b := "<query xmlns='" + NS + "' seconds='" + strconv.FormatInt(int64(d/time.Second), 10) + "'"
	if status == "" {
		return b + "/>"
	}
	return b + ">" + string(xmlstream.AppendEscapedText(nil, status)) + "</query>"
}

// status is the <status/> text of a presence stanza ("" if none or unparsable).
func status(raw string) string {
	if raw == "" {
		return ""
	}
	n, err := xmlstream.ParseNode(raw, stanza.NSClient)
	if err != nil {
		return ""
	}
	if st := n.Child(stanza.NSClient, "status"); st != nil {
		return st.TextContent()
	}
	return ""
}
