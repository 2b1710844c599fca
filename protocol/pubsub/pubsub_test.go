package pubsub

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/xmppd/xmppd/protocol/dataform"
	"github.com/xmppd/xmppd/protocol/xmlstream"
)

var lim = Limit{MaxItems: 100}

func form(fields map[string][]string, order ...string) dataform.Form {
	return dataform.Form{Type: "submit", Vars: order, Values: fields}
}

func TestApply(t *testing.T) {
	tests := []struct {
		name   string
		f      dataform.Form
		check  func(Config) bool
		errVar string
	}{
		{"access open", form(map[string][]string{"pubsub#access_model": {"open"}}, "pubsub#access_model"),
			func(c Config) bool { return c.AccessModel == AccessOpen }, ""},
		{"max items max", form(map[string][]string{"pubsub#max_items": {"max"}}, "pubsub#max_items"),
			func(c Config) bool { return c.MaxItems == MaxItemsMax && c.EffectiveMax(lim) == 100 }, ""},
		{"max items number", form(map[string][]string{"pubsub#max_items": {"7"}}, "pubsub#max_items"),
			func(c Config) bool { return c.MaxItems == 7 && c.EffectiveMax(lim) == 7 }, ""},
		{"booleans both spellings", form(map[string][]string{"pubsub#persist_items": {"false"}, "pubsub#notify_config": {"1"}},
			"pubsub#persist_items", "pubsub#notify_config"),
			func(c Config) bool { return !c.PersistItems && c.NotifyConfig && c.EffectiveMax(lim) == 1 }, ""},
		{"roster groups", form(map[string][]string{"pubsub#access_model": {"roster"}, "pubsub#roster_groups_allowed": {"a", "b"}},
			"pubsub#access_model", "pubsub#roster_groups_allowed"),
			func(c Config) bool { return reflect.DeepEqual(c.RosterGroups, []string{"a", "b"}) }, ""},
		{"send last", form(map[string][]string{"pubsub#send_last_published_item": {"never"}}, "pubsub#send_last_published_item"),
			func(c Config) bool { return c.SendLastPublished == SendNever }, ""},
		{"unknown access", form(map[string][]string{"pubsub#access_model": {"everyone"}}, "pubsub#access_model"), nil, "pubsub#access_model"},
		{"too many items", form(map[string][]string{"pubsub#max_items": {"101"}}, "pubsub#max_items"), nil, "pubsub#max_items"},
		{"zero items", form(map[string][]string{"pubsub#max_items": {"0"}}, "pubsub#max_items"), nil, "pubsub#max_items"},
		{"not a boolean", form(map[string][]string{"pubsub#persist_items": {"yes"}}, "pubsub#persist_items"), nil, "pubsub#persist_items"},
		{"unknown field", form(map[string][]string{"pubsub#bogus": {"1"}}, "pubsub#bogus"), nil, "pubsub#bogus"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultPEP()
			err := c.Apply(tc.f, lim)
			if tc.errVar != "" {
				var fe *FieldError
				if !errors.As(err, &fe) || fe.Field != tc.errVar {
					t.Fatalf("err = %v, want a FieldError on %s", err, tc.errVar)
				}
				if !reflect.DeepEqual(c, DefaultPEP()) {
					t.Errorf("a refused form changed the config: %+v", c)
				}
				return
			}
			if err != nil || !tc.check(c) {
				t.Errorf("err %v, config %+v", err, c)
			}
		})
	}
}

func TestMeets(t *testing.T) {
	c := DefaultPEP()
	c.AccessModel = AccessOpen
	c.MaxItems = MaxItemsMax
	tests := []struct {
		f    dataform.Form
		want string
	}{
		{form(map[string][]string{"pubsub#access_model": {"open"}}, "pubsub#access_model"), ""},
		{form(map[string][]string{"pubsub#access_model": {"presence"}}, "pubsub#access_model"), "pubsub#access_model"},
		{form(map[string][]string{"pubsub#persist_items": {"true"}, "pubsub#max_items": {"max"}}, "pubsub#persist_items", "pubsub#max_items"), ""},
		{form(map[string][]string{"pubsub#max_items": {"100"}}, "pubsub#max_items"), ""}, // "max" is the service's bound
		{form(map[string][]string{"pubsub#max_items": {"5"}}, "pubsub#max_items"), "pubsub#max_items"},
		{form(map[string][]string{"pubsub#persist_items": {"1"}, "pubsub#deliver_payloads": {"0"}}, "pubsub#persist_items", "pubsub#deliver_payloads"), "pubsub#deliver_payloads"},
		{form(map[string][]string{"pubsub#unknown": {"x"}}, "pubsub#unknown"), "pubsub#unknown"},
	}
	for _, tc := range tests {
		if got := c.Meets(tc.f, lim); got != tc.want {
			t.Errorf("Meets(%v) = %q, want %q", tc.f.Values, got, tc.want)
		}
	}
}

func TestEncodeDecode(t *testing.T) {
	c := DefaultService()
	c.Title = "t <&>"
	c.RosterGroups = []string{"Friends"}
	got, err := Decode(c.Encode(), DefaultPEP())
	if err != nil || !reflect.DeepEqual(got, c) {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	// A stored value from an older version lacks new fields: the default fills them.
	old, err := Decode(`{"access_model":"open"}`, DefaultPEP())
	if err != nil || old.AccessModel != AccessOpen || !old.PersistItems || old.MaxItems != 1 {
		t.Errorf("partial decode: %+v, %v", old, err)
	}
	if _, err := Decode(`{`, DefaultPEP()); err == nil {
		t.Error("broken JSON decoded")
	}
}

func TestFormRoundTrip(t *testing.T) {
	c := DefaultPEP()
	c.AccessModel = AccessWhitelist
	c.MaxItems = MaxItemsMax
	n, err := xmlstream.ParseNode(c.Form(NSNodeConfig, lim, []string{"Friends"}), "jabber:client")
	if err != nil {
		t.Fatal(err)
	}
	f := dataform.Parse(n)
	if f.FormType != NSNodeConfig {
		t.Errorf("FORM_TYPE %q", f.FormType)
	}
	f.Type = "submit"
	back := DefaultPEP()
	if err := back.Apply(f, lim); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, c) {
		t.Errorf("form round trip: %+v, want %+v", back, c)
	}
}

func TestEvents(t *testing.T) {
	ev := ItemsEvent("urn:n'", []Item{{ID: "1", Publisher: "a@b", Payload: "<x xmlns='u'/>"}}, true)
	if ev != `<event xmlns='http://jabber.org/protocol/pubsub#event'><items node='urn:n&apos;'><item id='1' publisher='a@b'><x xmlns='u'/></item></items></event>` {
		t.Errorf("items event %s", ev)
	}
	if ev := ItemsEvent("n", []Item{{ID: "1", Payload: "<x/>"}}, false); strings.Contains(ev, "<x/>") {
		t.Errorf("payload delivered with deliver_payloads off: %s", ev)
	}
	if ev := RetractEvent("n", "a", "b"); !strings.Contains(ev, "<retract id='a'/><retract id='b'/>") {
		t.Errorf("retract event %s", ev)
	}
	for _, s := range []string{ev, NodeEvent("purge", "n&")} {
		if _, err := xmlstream.ParseNode(s, "jabber:client"); err != nil {
			t.Errorf("%s: %v", s, err)
		}
	}
}

func TestInterests(t *testing.T) {
	got := Interests([]string{"urn:xmpp:avatar:metadata+notify", "+notify", "urn:a", "eu.siacs.conversations.axolotl.devicelist+notify"})
	want := []string{"urn:xmpp:avatar:metadata", "eu.siacs.conversations.axolotl.devicelist"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Interests = %v", got)
	}
}

// FuzzApply: whatever a client submits, Apply either refuses it and leaves the config alone, or yields a config
// that its own form and encoding carry unchanged.
func FuzzApply(f *testing.F) {
	f.Add(`<x xmlns='jabber:x:data' type='submit'><field var='pubsub#access_model'><value>open</value></field><field var='pubsub#max_items'><value>max</value></field></x>`)
	f.Add(`<x xmlns='jabber:x:data' type='submit'><field var='pubsub#persist_items'><value>0</value></field><field var='pubsub#roster_groups_allowed'><value>a</value><value>b</value></field></x>`)
	f.Fuzz(func(t *testing.T, s string) {
		n, err := xmlstream.ParseNode(s, "jabber:client")
		if err != nil {
			return
		}
		c := DefaultPEP()
		if err := c.Apply(dataform.Parse(n), lim); err != nil {
			if !reflect.DeepEqual(c, DefaultPEP()) {
				t.Fatalf("refused form changed the config")
			}
			return
		}
		if c.EffectiveMax(lim) < 1 || c.EffectiveMax(lim) > lim.MaxItems {
			t.Fatalf("EffectiveMax %d out of range", c.EffectiveMax(lim))
		}
		back, err := Decode(c.Encode(), Config{})
		if err != nil || back.Encode() != c.Encode() {
			t.Fatalf("encoding round trip: %v", err)
		}
		if c.Meets(dataform.Form{}, lim) != "" {
			t.Fatal("an empty precondition failed")
		}
	})
}

// A service that implements fewer access models offers only those and refuses the others.
func TestLimitAccessModels(t *testing.T) {
	l := Limit{MaxItems: 10, AccessModels: []string{AccessOpen, AccessWhitelist}}
	c := DefaultService()
	if err := c.Apply(form(map[string][]string{"pubsub#access_model": {"whitelist"}}, "pubsub#access_model"), l); err != nil || c.AccessModel != AccessWhitelist {
		t.Errorf("whitelist: %v %q", err, c.AccessModel)
	}
	var fe *FieldError
	if err := c.Apply(form(map[string][]string{"pubsub#access_model": {"presence"}}, "pubsub#access_model"), l); !errors.As(err, &fe) || c.AccessModel != AccessWhitelist {
		t.Errorf("presence on a service without it: %v %q", err, c.AccessModel)
	}
	f := c.Form(NSNodeConfig, l, nil)
	if strings.Contains(f, "<value>presence</value>") || !strings.Contains(f, "<option><value>whitelist</value></option>") {
		t.Errorf("form offers %s", f)
	}
	if f := c.Form(NSNodeConfig, Limit{MaxItems: 10}, nil); !strings.Contains(f, "<option><value>presence</value></option>") {
		t.Errorf("without a list every model is offered: %s", f)
	}
}

func TestSubOptions(t *testing.T) {
	o := DecodeSubOptions("")
	if !o.Deliver {
		t.Fatal("deliver is on by default")
	}
	if err := o.Apply(form(map[string][]string{"pubsub#deliver": {"false"}}, "pubsub#deliver")); err != nil || o.Deliver {
		t.Errorf("deliver false: %v %+v", err, o)
	}
	if got := DecodeSubOptions(o.Encode()); got != o {
		t.Errorf("round trip %+v", got)
	}
	if err := o.Apply(form(map[string][]string{"pubsub#digest": {"1"}}, "pubsub#digest")); err == nil {
		t.Errorf("an unknown option was accepted")
	}
	if err := o.Apply(form(map[string][]string{"pubsub#deliver": {"maybe"}}, "pubsub#deliver")); err == nil || o.Deliver {
		t.Errorf("a non-boolean was accepted: %+v", o)
	}
	if f := o.Form(); !strings.Contains(f, NSSubOptions) || !strings.Contains(f, "var='pubsub#deliver' type='boolean'") {
		t.Errorf("form %s", f)
	}
}

func TestSmallPieces(t *testing.T) {
	if got := SubscriptionXML("n&", "a@b/c", Subscribed, ""); got != "<subscription node='n&amp;' jid='a@b/c' subscription='subscribed'/>" {
		t.Errorf("SubscriptionXML %s", got)
	}
	if got := SubscriptionXML("", "a@b", Subscribed, "s1"); got != "<subscription jid='a@b' subscription='subscribed' subid='s1'/>" {
		t.Errorf("SubscriptionXML %s", got)
	}
	for v, want := range map[string]struct {
		n  int
		ok bool
	}{"": {0, true}, "3": {3, true}, "0": {0, false}, "x": {0, false}, "-1": {0, false}} {
		if n, ok := MaxItemsAttr(v); ok != want.ok || (ok && n != want.n) {
			t.Errorf("MaxItemsAttr(%q) = %d %v", v, n, ok)
		}
	}
	q, err := xmlstream.ParseNode("<pubsub xmlns='"+NS+"'><publish node='n'/><other xmlns='x'/><publish-options/></pubsub>", "")
	if err != nil {
		t.Fatal(err)
	}
	act, extra := Action(q, NS)
	if act == nil || act.Name.Local != "publish" || extra == nil || extra.Name.Local != "publish-options" {
		t.Errorf("Action: %v %v", act, extra)
	}
	if got := ItemsResult("n", []Item{{ID: "1", Payload: "<p/>"}, {ID: "2"}}); got != "<pubsub xmlns='"+NS+"'><items node='n'><item id='1'><p/></item><item id='2'/></items></pubsub>" {
		t.Errorf("ItemsResult %s", got)
	}
	x, _ := xmlstream.ParseNode("<configure><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>other</value></field></x></configure>", "")
	if _, ok := SubmittedForm(x, NSNodeConfig); ok {
		t.Errorf("a form of another FORM_TYPE was taken")
	}
	x, _ = xmlstream.ParseNode("<configure><x xmlns='jabber:x:data' type='cancel'/></configure>", "")
	if f, ok := SubmittedForm(x, NSNodeConfig); f != nil || !ok {
		t.Errorf("a cancelled form: %v %v", f, ok)
	}
}
