// Package pubsub is the protocol side of XEP-0060 publish-subscribe, shared by PEP (XEP-0163) and a standalone
// service: namespaces, node configuration as a data form (§16.4 pubsub#node_config), publish-options
// preconditions (§7.1.5), the errors of §7 and the notification payloads of §7.1.2.1. It is pure: no storage, no
// actors; the features decide who may do what.
package pubsub

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"

	"github.com/xmppd/xmppd/protocol/dataform"
	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/protocol/xmlstream"
)

// Namespaces.
const (
	NS               = "http://jabber.org/protocol/pubsub"
	NSEvent          = NS + "#event"
	NSOwner          = NS + "#owner"
	NSErrors         = NS + "#errors"
	NSNodeConfig     = NS + "#node_config"
	NSPublishOptions = NS + "#publish-options"
	NSSubOptions     = NS + "#subscribe_options"
)

// Access models (§4.5).
const (
	AccessOpen      = "open"
	AccessPresence  = "presence"
	AccessRoster    = "roster"
	AccessWhitelist = "whitelist"
	AccessAuthorize = "authorize"
)

// send_last_published_item values.
const (
	SendNever            = "never"
	SendOnSub            = "on_sub"
	SendOnSubAndPresence = "on_sub_and_presence"
)

// Affiliations (§4.1) and subscription states (§4.2).
const (
	Owner      = "owner"
	Publisher  = "publisher"
	Member     = "member"
	Outcast    = "outcast"
	None       = "none"
	Subscribed = "subscribed"
	Pending    = "pending"
)

// MaxItemsMax is Config.MaxItems for the value "max" (XEP-0060 §16.4: as many as the service allows).
const MaxItemsMax = -1

// Config is one node's configuration: the pubsub#node_config fields the service implements.
type Config struct {
	Title                 string   `json:"title,omitempty"`
	Description           string   `json:"description,omitempty"`
	Type                  string   `json:"type,omitempty"`
	AccessModel           string   `json:"access_model"`
	RosterGroups          []string `json:"roster_groups,omitempty"`
	PublishModel          string   `json:"publish_model"`
	PersistItems          bool     `json:"persist_items"`
	MaxItems              int      `json:"max_items"` // MaxItemsMax for "max"
	SendLastPublished     string   `json:"send_last_published_item"`
	DeliverNotifications  bool     `json:"deliver_notifications"`
	DeliverPayloads       bool     `json:"deliver_payloads"`
	NotifyRetract         bool     `json:"notify_retract"`
	NotifyDelete          bool     `json:"notify_delete"`
	NotifyConfig          bool     `json:"notify_config"`
	PresenceBasedDelivery bool     `json:"presence_based_delivery"`
	NotificationType      string   `json:"notification_type"`
}

// DefaultPEP is the configuration of a PEP node nobody configured (XEP-0163 §4: presence access, the last item
// kept, sent on subscription and presence).
func DefaultPEP() Config {
	return Config{
		AccessModel: AccessPresence, PublishModel: "publishers", PersistItems: true, MaxItems: 1,
		SendLastPublished: SendOnSubAndPresence, DeliverNotifications: true, DeliverPayloads: true,
		NotifyRetract: true, NotifyDelete: true, PresenceBasedDelivery: true, NotificationType: "headline",
	}
}

// DefaultService is the default of a node of a standalone service (§16.4 defaults: open access).
func DefaultService() Config {
	c := DefaultPEP()
	c.AccessModel = AccessOpen
	c.PresenceBasedDelivery = false
	c.SendLastPublished = SendOnSub
	c.MaxItems = 10
	return c
}

// Encode is the form Config takes in storage.
func (c Config) Encode() string {
	b, _ := json.Marshal(c) // a struct of strings, ints and bools always marshals
	return string(b)
}

// Decode reads what Encode wrote, starting from def for fields the stored value lacks.
func Decode(s string, def Config) (Config, error) {
	c := def
	err := json.Unmarshal([]byte(s), &c)
	return c, err
}

// Limit is what the service allows: the bound on max_items (the value of "max") and the access models it
// implements (nil: all five).
type Limit struct {
	MaxItems     int
	AccessModels []string
}

func (l Limit) access() []string {
	if l.AccessModels == nil {
		return accessModels
	}
	return l.AccessModels
}

// EffectiveMax is how many items the node keeps: MaxItems, with "max" and anything above the service's bound
// as the bound; 0 when items are not persisted beyond the last (persist_items false keeps only the newest, for
// send_last_published_item).
func (c Config) EffectiveMax(l Limit) int {
	if !c.PersistItems {
		return 1
	}
	if c.MaxItems == MaxItemsMax || c.MaxItems > l.MaxItems || c.MaxItems <= 0 {
		return l.MaxItems
	}
	return c.MaxItems
}

var accessModels = []string{AccessAuthorize, AccessOpen, AccessPresence, AccessRoster, AccessWhitelist}

// Form is the node configuration form (§8.2.1) with the current values; groups are the owner's roster groups
// offered for roster access.
func (c Config) Form(formType string, l Limit, groups []string) string {
	maxItems := strconv.Itoa(c.MaxItems)
	if c.MaxItems == MaxItemsMax {
		maxItems = "max"
	}
	return dataform.New("form", formType).
		Field("pubsub#title", "text-single", "A friendly name for the node", c.Title).
		Field("pubsub#description", "text-single", "A description of the node", c.Description).
		Field("pubsub#type", "text-single", "The type of node data, usually the namespace of the payload", c.Type).
		FieldOptions("pubsub#access_model", "list-single", "Who may subscribe and retrieve items", l.access(), c.AccessModel).
		FieldOptions("pubsub#roster_groups_allowed", "list-multi", "Roster groups allowed to subscribe", groups, c.RosterGroups...).
		FieldOptions("pubsub#publish_model", "list-single", "Who may publish items", []string{"publishers", "subscribers", "open"}, c.PublishModel).
		Bool("pubsub#persist_items", "Persist items to storage", c.PersistItems).
		Field("pubsub#max_items", "text-single", "Max number of items to persist (at most "+strconv.Itoa(l.MaxItems)+", or max)", maxItems).
		FieldOptions("pubsub#send_last_published_item", "list-single", "When to send the last published item",
			[]string{SendNever, SendOnSub, SendOnSubAndPresence}, c.SendLastPublished).
		Bool("pubsub#deliver_notifications", "Deliver event notifications", c.DeliverNotifications).
		Bool("pubsub#deliver_payloads", "Deliver payloads with event notifications", c.DeliverPayloads).
		Bool("pubsub#notify_retract", "Notify subscribers when items are removed from the node", c.NotifyRetract).
		Bool("pubsub#notify_delete", "Notify subscribers when the node is deleted", c.NotifyDelete).
		Bool("pubsub#notify_config", "Notify subscribers when the node configuration changes", c.NotifyConfig).
		Bool("pubsub#presence_based_delivery", "Deliver notifications only to available users", c.PresenceBasedDelivery).
		FieldOptions("pubsub#notification_type", "list-single", "The type of notification messages", []string{"headline", "normal"}, c.NotificationType).
		String()
}

// FieldError is a field of a submitted configuration the service does not accept (§8.2.4: not-acceptable).
type FieldError struct{ Field, Reason string }

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

// Apply sets the fields f carries; an unknown field, or a value the service does not implement, is a
// *FieldError and leaves c unchanged. (§8.2.5 allows ignoring unknown fields, but a client that sets one it
// depends on — publish-options above all — must learn it was not applied.)
func (c *Config) Apply(f dataform.Form, l Limit) error {
	n := *c
	for _, v := range f.Vars {
		val := f.One(v)
		bad := func(why string) error { return &FieldError{Field: v, Reason: why} }
		switch v {
		case "pubsub#title":
			n.Title = val
		case "pubsub#description":
			n.Description = val
		case "pubsub#type":
			n.Type = val
		case "pubsub#access_model":
			if !slices.Contains(accessModels, val) {
				return bad("unknown access model")
			}
			if !slices.Contains(l.access(), val) {
				return bad("access model not implemented by this service")
			}
			n.AccessModel = val
		case "pubsub#roster_groups_allowed":
			n.RosterGroups = nil
			if len(f.Values[v]) > 0 {
				n.RosterGroups = slices.Clone(f.Values[v])
			}
		case "pubsub#publish_model":
			if val != "publishers" && val != "subscribers" && val != "open" {
				return bad("unknown publish model")
			}
			n.PublishModel = val
		case "pubsub#max_items":
			m, err := parseMax(val, l)
			if err != nil {
				return bad(err.Error())
			}
			n.MaxItems = m
		case "pubsub#send_last_published_item":
			if val != SendNever && val != SendOnSub && val != SendOnSubAndPresence {
				return bad("unknown value")
			}
			n.SendLastPublished = val
		case "pubsub#notification_type":
			if val != "headline" && val != "normal" {
				return bad("unknown value")
			}
			n.NotificationType = val
		default:
			p := n.boolField(v)
			if p == nil {
				return bad("not supported")
			}
			b, ok := f.Bool(v)
			if !ok {
				return bad("not a boolean")
			}
			*p = b
		}
	}
	*c = n
	return nil
}

func (c *Config) boolField(v string) *bool {
	switch v {
	case "pubsub#persist_items":
		return &c.PersistItems
	case "pubsub#deliver_notifications":
		return &c.DeliverNotifications
	case "pubsub#deliver_payloads":
		return &c.DeliverPayloads
	case "pubsub#notify_retract":
		return &c.NotifyRetract
	case "pubsub#notify_delete":
		return &c.NotifyDelete
	case "pubsub#notify_config":
		return &c.NotifyConfig
	case "pubsub#presence_based_delivery":
		return &c.PresenceBasedDelivery
	}
	return nil
}

type reason string

func (r reason) Error() string { return string(r) }

func parseMax(val string, l Limit) (int, error) {
	if val == "max" {
		return MaxItemsMax, nil
	}
	m, err := strconv.Atoi(val)
	switch {
	case err != nil || m < 1:
		return 0, reason("not a positive number or max")
	case m > l.MaxItems:
		return 0, reason("more than the service keeps (" + strconv.Itoa(l.MaxItems) + ")")
	}
	return m, nil
}

// Meets checks publish-options against the node's configuration (§7.1.5): every field given must have the value
// the node has. It returns the first field that does not match ("" when all do). "max" matches the service's
// bound, and a boolean matches whatever spelling of the same value.
func (c Config) Meets(f dataform.Form, l Limit) string {
	for _, v := range f.Vars {
		want := c
		if err := want.Apply(dataform.Form{Vars: []string{v}, Values: map[string][]string{v: f.Values[v]}}, l); err != nil {
			return v
		}
		if !c.sameAs(want, l) {
			return v
		}
	}
	return ""
}

func (c Config) sameAs(o Config, l Limit) bool {
	if c.EffectiveMax(l) == o.EffectiveMax(l) {
		c.MaxItems, o.MaxItems = 0, 0
	}
	cg, og := slices.Clone(c.RosterGroups), slices.Clone(o.RosterGroups)
	slices.Sort(cg)
	slices.Sort(og)
	c.RosterGroups, o.RosterGroups = nil, nil
	return c.Encode() == o.Encode() && slices.Equal(cg, og)
}

// Error is a pubsub error: an RFC 6120 condition with the #errors condition app ("" for none).
func Error(c stanza.Condition, app string) stanza.Error {
	e := stanza.NewError(c)
	if app != "" {
		e.Extra = "<" + app + " xmlns='" + NSErrors + "'/>"
	}
	return e
}

// Unsupported is feature-not-implemented with <unsupported feature='…'/> (§7.1.3.5 and the like).
func Unsupported(feature string) stanza.Error {
	e := stanza.NewError(stanza.FeatureNotImplemented)
	e.Extra = "<unsupported xmlns='" + NSErrors + "' feature='" + feature + "'/>"
	return e
}

// Action is the pubsub element's one action child in namespace ns (§7–§8), with a second child some actions
// take (publish-options, configure, options); nil when absent.
func Action(q *xmlstream.Node, ns string) (act, extra *xmlstream.Node) {
	for _, c := range q.Elements() {
		if c.Name.Space != ns {
			continue
		}
		if act == nil {
			act = c
		} else if extra == nil {
			extra = c
		}
	}
	return act, extra
}

// SubmittedForm reads the data form inside el (a node_config, publish-options or subscribe_options form): nil
// when there is none or it was cancelled (§8.2.7); ok false when its FORM_TYPE is another one.
func SubmittedForm(el *xmlstream.Node, formType string) (f *dataform.Form, ok bool) {
	x := dataform.Find(el)
	if x == nil {
		return nil, true
	}
	form := dataform.Parse(x)
	if form.Type == "cancel" {
		return nil, true
	}
	if form.FormType != "" && form.FormType != formType {
		return nil, false
	}
	return &form, true
}

// SubscriptionXML is one <subscription/> (§5.6, §6.1.2); node "" leaves the attribute out (§8.8.1), as subid ""
// does.
func SubscriptionXML(node, jid, state, subid string) string {
	s := "<subscription"
	if node != "" {
		s += " node='" + attr(node) + "'"
	}
	s += " jid='" + attr(jid) + "' subscription='" + attr(state) + "'"
	if subid != "" {
		s += " subid='" + attr(subid) + "'"
	}
	return s + "/>"
}

// ItemsResult is the <pubsub/> answering an items request (§6.5.2), the items in the order given.
func ItemsResult(node string, items []Item) string {
	b := []byte("<pubsub xmlns='" + NS + "'><items node='" + attr(node) + "'>")
	for _, it := range items {
		b = AppendItem(b, it, true, false)
	}
	return string(append(b, "</items></pubsub>"...))
}

// MaxItemsAttr reads an items request's max_items (§6.5.7): 0 when absent, ok false when not a positive number.
func MaxItemsAttr(v string) (n int, ok bool) {
	if v == "" {
		return 0, true
	}
	n, err := strconv.Atoi(v)
	return n, err == nil && n >= 1
}

// SubOptions are the subscription options (§6.3, pubsub#subscribe_options) a service implements: whether to
// deliver notifications at all.
type SubOptions struct {
	Deliver bool `json:"deliver"`
}

// DefaultSubOptions: notifications are delivered.
func DefaultSubOptions() SubOptions { return SubOptions{Deliver: true} }

// DecodeSubOptions reads what Encode wrote ("" is the default).
func DecodeSubOptions(s string) SubOptions {
	o := DefaultSubOptions()
	if s != "" {
		_ = json.Unmarshal([]byte(s), &o) // unreadable: the default
	}
	return o
}

// Encode is the form SubOptions take in storage.
func (o SubOptions) Encode() string {
	b, _ := json.Marshal(o)
	return string(b)
}

// Form is the subscribe_options form with the current values (§6.3.2).
func (o SubOptions) Form() string {
	return dataform.New("form", NSSubOptions).Bool("pubsub#deliver", "Enable delivery?", o.Deliver).String()
}

// Apply sets the fields f carries; any other field is a *FieldError (§6.3.5: the service answers
// bad-request with invalid-options) and leaves o unchanged.
func (o *SubOptions) Apply(f dataform.Form) error {
	n := *o
	for _, v := range f.Vars {
		if v != "pubsub#deliver" {
			return &FieldError{Field: v, Reason: "not supported"}
		}
		b, ok := f.Bool(v)
		if !ok {
			return &FieldError{Field: v, Reason: "not a boolean"}
		}
		n.Deliver = b
	}
	*o = n
	return nil
}

// Item is one item as the features handle it.
type Item struct {
	ID, Publisher, Payload string
}

// AppendItem writes <item id='…'>payload</item>, the payload left out when withPayload is false.
func AppendItem(b []byte, it Item, withPayload bool, publisher bool) []byte {
	b = append(b, "<item id='"...)
	b = xmlstream.AppendEscapedAttr(b, it.ID)
	b = append(b, '\'')
	if publisher && it.Publisher != "" {
		b = append(b, " publisher='"...)
		b = xmlstream.AppendEscapedAttr(b, it.Publisher)
		b = append(b, '\'')
	}
	if !withPayload || it.Payload == "" {
		return append(b, "/>"...)
	}
	b = append(b, '>')
	b = append(b, it.Payload...)
	return append(b, "</item>"...)
}

// ItemsEvent is the <event/> of a publication (§7.1.2.1).
func ItemsEvent(node string, items []Item, withPayload bool) string {
	b := append([]byte("<event xmlns='"+NSEvent+"'><items node='"), xmlstream.AppendEscapedAttr(nil, node)...)
	b = append(b, "'>"...)
	for _, it := range items {
		b = AppendItem(b, it, withPayload, true)
	}
	return string(append(b, "</items></event>"...))
}

// RetractEvent is the <event/> of retracted items (§7.2.2.1).
func RetractEvent(node string, ids ...string) string {
	var b strings.Builder
	b.WriteString("<event xmlns='" + NSEvent + "'><items node='" + attr(node) + "'>")
	for _, id := range ids {
		b.WriteString("<retract id='" + attr(id) + "'/>")
	}
	b.WriteString("</items></event>")
	return b.String()
}

// NodeEvent is <event><kind node='…'/></event>: purge (§8.5.2), delete (§8.4.2), configuration (§8.2.6).
func NodeEvent(kind, node string) string {
	return "<event xmlns='" + NSEvent + "'><" + kind + " node='" + attr(node) + "'/></event>"
}

func attr(s string) string { return string(xmlstream.AppendEscapedAttr(nil, s)) }

// NotifySuffix is the XEP-0163 §4.2 suffix of a caps feature meaning "send me notifications of this node".
const NotifySuffix = "+notify"

// Interests returns the nodes a caps feature list asks notifications for.
func Interests(features []string) []string {
	var out []string
	for _, f := range features {
		if n, ok := strings.CutSuffix(f, NotifySuffix); ok && n != "" {
			out = append(out, n)
		}
	}
	return out
}
