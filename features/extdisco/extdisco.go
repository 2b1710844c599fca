// Package extdisco is XEP-0215 External Service Discovery: the STUN and TURN servers of [[external_services]],
// answered on the server's domain. For a TURN server with a shared secret (coturn's use-auth-secret) each
// requester gets credentials of its own, valid for the service's ttl (protocol/turncred): the username is
// <expiry>:<bare JID>, the password base64(HMAC-SHA1(secret, username)), marked restricted='1' with the
// expiry in 'expires' (XEP-0215 §3.2). urn:xmpp:extdisco:2 is advertised only when a service is configured.
package extdisco

import (
	"strconv"
	"time"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/feature"
	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/protocol/turncred"
	"github.com/xmppd/xmppd/protocol/xmlstream"
)

// NS is the XEP-0215 namespace.
const NS = "urn:xmpp:extdisco:2"

// Feature is XEP-0215.
var Feature = &feature.Feature{
	Name:       "extdisco",
	Enabled:    func(cfg *config.Config) bool { return len(cfg.ExternalServices) > 0 },
	ServerVars: []string{NS},
	IQs: []feature.IQRoute{
		{Name: xmlstream.Name{Space: NS, Local: "services"}, Server: services},
		{Name: xmlstream.Name{Space: NS, Local: "credentials"}, Server: credentials},
	},
}

// services answers <services [type]/> (XEP-0215 §3.1, filtered by type as in §3.1.2).
func services(q *feature.IQ) {
	if !q.IsGet() {
		q.Fail(stanza.NewError(stanza.BadRequest))
		return
	}
	typ := q.Payload.Attr("type")
	now := time.Now()
	b := []byte("<services xmlns='" + NS + "'")
	if typ != "" {
		b = append(b, " type='"...)
		b = xmlstream.AppendEscapedAttr(b, typ)
		b = append(b, '\'')
	}
	b = append(b, '>')
	for i := range q.Session.Server().Config().ExternalServices {
		s := &q.Session.Server().Config().ExternalServices[i]
		if typ == "" || s.Type == typ {
			b = appendService(b, s, q.Session.Full().Bare().String(), now)
		}
	}
	q.Result(string(append(b, "</services>"...)))
}

// credentials answers <credentials><service host type [port]/></credentials> (XEP-0215 §3.3): credentials of
// one service; item-not-found when no configured service matches.
func credentials(q *feature.IQ) {
	if !q.IsGet() {
		q.Fail(stanza.NewError(stanza.BadRequest))
		return
	}
	want := q.Payload.Child(NS, "service")
	if want == nil || want.Attr("host") == "" {
		q.Fail(stanza.NewError(stanza.BadRequest))
		return
	}
	for i := range q.Session.Server().Config().ExternalServices {
		s := &q.Session.Server().Config().ExternalServices[i]
		if s.Host != want.Attr("host") || (want.Attr("type") != "" && s.Type != want.Attr("type")) ||
			(want.Attr("port") != "" && want.Attr("port") != strconv.Itoa(s.Port)) {
			continue
		}
		b := appendService([]byte("<credentials xmlns='"+NS+"'>"), s, q.Session.Full().Bare().String(), time.Now())
		q.Result(string(append(b, "</credentials>"...)))
		return
	}
	q.Fail(stanza.NewError(stanza.ItemNotFound))
}

// appendService writes one <service/> (XEP-0215 §4), with credentials for user when the service has a secret.
func appendService(b []byte, s *config.ExternalService, user string, now time.Time) []byte {
	attr := func(name, v string) {
		if v == "" {
			return
		}
		b = append(b, ' ')
		b = append(b, name...)
		b = append(b, "='"...)
		b = xmlstream.AppendEscapedAttr(b, v)
		b = append(b, '\'')
	}
	b = append(b, "<service"...)
	attr("type", s.Type)
	attr("host", s.Host)
	if s.Port > 0 {
		attr("port", strconv.Itoa(s.Port))
	}
	attr("transport", s.Transport)
	attr("name", s.Name)
	if s.Secret != "" {
		c := turncred.New(s.Secret, user, now, s.TTL.Duration)
		attr("username", c.Username)
		attr("password", c.Password)
		attr("expires", c.Expires.UTC().Format("2006-01-02T15:04:05Z"))
		attr("restricted", "1")
	}
	return append(b, "/>"...)
}
