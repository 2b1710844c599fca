// Package push is the wire format of XEP-0357 push notifications: the <enable/> and <disable/> requests a client
// sends to its account, and the pubsub publish the server sends to an app server's push service. It is pure: it
// parses DOM nodes and writes strings.
package push

import (
	"errors"
	"strconv"

	"github.com/xmppd/xmppd/protocol/dataform"
	"github.com/xmppd/xmppd/protocol/jid"
	"github.com/xmppd/xmppd/protocol/xmlstream"
)

const (
	// NS is XEP-0357's namespace.
	NS = "urn:xmpp:push:0"
	// SummaryFormType is the FORM_TYPE of the notification's summary (§5).
	SummaryFormType = "urn:xmpp:push:summary"
	// PublishOptionsFormType is the FORM_TYPE of the options the app server asked for (§4).
	PublishOptionsFormType = "http://jabber.org/protocol/pubsub#publish-options"
	nsPubSub               = "http://jabber.org/protocol/pubsub"
)

// Registration is one enabled push service: a JID and node (§4), with the publish options to send along.
type Registration struct {
	JID  jid.JID
	Node string
	// Options is the <x/> publish-options form as the client sent it (re-serialised), "" for none.
	Options string
}

// ErrBadRequest: the request lacks what XEP-0357 requires (a valid 'jid'), or its form is not publish-options.
var ErrBadRequest = errors.New("push: bad request")

// ParseEnable reads <enable xmlns='urn:xmpp:push:0' jid node>, with an optional publish-options form (§4: the
// jid MUST be there, the node SHOULD).
func ParseEnable(n *xmlstream.Node) (Registration, error) {
	j, err := jid.Parse(n.Attr("jid"))
	if err != nil || n.Attr("jid") == "" {
		return Registration{}, ErrBadRequest
	}
	r := Registration{JID: j, Node: n.Attr("node")}
	if x := dataform.Find(n); x != nil {
		if f := dataform.Parse(x); f.FormType != PublishOptionsFormType {
			return Registration{}, ErrBadRequest
		}
		r.Options = string(x.AppendXML(nil, ""))
	}
	return r, nil
}

// ParseDisable reads <disable jid [node]/> (§6: without node, every node of that JID).
func ParseDisable(n *xmlstream.Node) (j jid.JID, node string, err error) {
	j, err = jid.Parse(n.Attr("jid"))
	if err != nil || n.Attr("jid") == "" {
		return jid.JID{}, "", ErrBadRequest
	}
	return j, n.Attr("node"), nil
}

// Summary is what the notification tells (§5, the urn:xmpp:push:summary form): every field is optional.
type Summary struct {
	MessageCount int    // 0: not sent
	LastSender   string // "" : not sent
	LastBody     string // "" : not sent
	// PendingSubscriptions counts subscription requests waiting (0: not sent).
	PendingSubscriptions int
}

// Publish is the payload of the IQ set that publishes a notification for r (§5): <pubsub><publish node><item>
// <notification><x summary/></notification></item></publish>, with r's publish options.
func Publish(r Registration, s Summary) string {
	b := []byte("<pubsub xmlns='" + nsPubSub + "'><publish node='")
	b = xmlstream.AppendEscapedAttr(b, r.Node)
	b = append(b, "'><item><notification xmlns='"+NS+"'>"...)
	f := dataform.New("submit", SummaryFormType)
	if s.MessageCount > 0 {
		f.Field("message-count", "", "", strconv.Itoa(s.MessageCount))
	}
	if s.PendingSubscriptions > 0 {
		f.Field("pending-subscription-count", "", "", strconv.Itoa(s.PendingSubscriptions))
	}
	if s.LastSender != "" {
		f.Field("last-message-sender", "", "", s.LastSender)
	}
	if s.LastBody != "" {
		f.Field("last-message-body", "", "", s.LastBody)
	}
	b = append(b, f.String()...)
	b = append(b, "</notification></item></publish>"...)
	if r.Options != "" {
		b = append(b, "<publish-options>"...)
		b = append(b, r.Options...)
		b = append(b, "</publish-options>"...)
	}
	return string(append(b, "</pubsub>"...))
}

// RemoteDisable reads a push service's affiliation change (§8): the node whose affiliation for the user became
// 'none', ok false if n (a message's child) is not one.
func RemoteDisable(n *xmlstream.Node) (node string, ok bool) {
	if n == nil || n.Name.Space != nsPubSub || n.Name.Local != "pubsub" {
		return "", false
	}
	a := n.Child(nsPubSub, "affiliation")
	if a == nil || a.Attr("affiliation") != "none" || n.Attr("node") == "" {
		return "", false
	}
	return n.Attr("node"), true
}
