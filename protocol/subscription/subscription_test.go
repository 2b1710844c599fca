package subscription

import "testing"

// The nine states of RFC 6121 Appendix A.1, by name.
var states = map[string]State{
	"None":                  {},
	"None + Pending Out":    {PendingOut: true},
	"None + Pending In":     {PendingIn: true},
	"None + Pending Out/In": {PendingOut: true, PendingIn: true},
	"To":                    {To: true},
	"To + Pending In":       {To: true, PendingIn: true},
	"From":                  {From: true},
	"From + Pending Out":    {From: true, PendingOut: true},
	"Both":                  {To: true, From: true},
}

type row struct {
	from, typ, to string // "" in to: no state change
	route         bool
}

// Appendix A.2: outbound subscription stanzas (the user's server, the user's roster item for the contact).
var outboundRows = []row{
	// A.2.1 subscribe: routed in every state (§3.1.2) so the contact's server can auto-reply.
	{"None", "subscribe", "None + Pending Out", true},
	{"None + Pending Out", "subscribe", "", true},
	{"None + Pending In", "subscribe", "None + Pending Out/In", true},
	{"None + Pending Out/In", "subscribe", "", true},
	{"To", "subscribe", "", true},
	{"To + Pending In", "subscribe", "", true},
	{"From", "subscribe", "From + Pending Out", true},
	{"From + Pending Out", "subscribe", "", true},
	{"Both", "subscribe", "", true},
	// A.2.2 unsubscribe
	{"None", "unsubscribe", "", false},
	{"None + Pending Out", "unsubscribe", "None", true},
	{"None + Pending In", "unsubscribe", "", false},
	{"None + Pending Out/In", "unsubscribe", "None + Pending In", true},
	{"To", "unsubscribe", "None", true},
	{"To + Pending In", "unsubscribe", "None + Pending In", true},
	{"From", "unsubscribe", "", false},
	{"From + Pending Out", "unsubscribe", "From", true},
	{"Both", "unsubscribe", "From", true},
	// A.2.3 subscribed (rows without Pending In are pre-approvals, §3.4, checked separately)
	{"None + Pending In", "subscribed", "From", true},
	{"None + Pending Out/In", "subscribed", "From + Pending Out", true},
	{"To + Pending In", "subscribed", "Both", true},
	{"From", "subscribed", "", false},
	{"From + Pending Out", "subscribed", "", false},
	{"Both", "subscribed", "", false},
	// A.2.4 unsubscribed
	{"None", "unsubscribed", "", false},
	{"None + Pending Out", "unsubscribed", "", false},
	{"None + Pending In", "unsubscribed", "None", true},
	{"None + Pending Out/In", "unsubscribed", "None + Pending Out", true},
	{"To", "unsubscribed", "", false},
	{"To + Pending In", "unsubscribed", "To", true},
	{"From", "unsubscribed", "None", true},
	{"From + Pending Out", "unsubscribed", "None + Pending Out", true},
	{"Both", "unsubscribed", "To", true},
}

// Appendix A.3: inbound subscription stanzas (the user's server, the user's roster item for the contact that
// sent them). route here means: delivered to the user.
var inboundRows = []row{
	// A.3.1 subscribe
	{"None", "subscribe", "None + Pending In", true},
	{"None + Pending Out", "subscribe", "None + Pending Out/In", true},
	{"None + Pending In", "subscribe", "", false},
	{"None + Pending Out/In", "subscribe", "", false},
	{"To", "subscribe", "To + Pending In", true},
	{"To + Pending In", "subscribe", "", false},
	{"From", "subscribe", "", false},
	{"From + Pending Out", "subscribe", "", false},
	{"Both", "subscribe", "", false},
	// A.3.2 unsubscribe
	{"None", "unsubscribe", "", false},
	{"None + Pending Out", "unsubscribe", "", false},
	{"None + Pending In", "unsubscribe", "None", true},
	{"None + Pending Out/In", "unsubscribe", "None + Pending Out", true},
	{"To", "unsubscribe", "", false},
	{"To + Pending In", "unsubscribe", "To", true},
	{"From", "unsubscribe", "None", true},
	{"From + Pending Out", "unsubscribe", "None + Pending Out", true},
	{"Both", "unsubscribe", "To", true},
	// A.3.3 subscribed
	{"None", "subscribed", "", false},
	{"None + Pending Out", "subscribed", "To", true},
	{"None + Pending In", "subscribed", "", false},
	{"None + Pending Out/In", "subscribed", "To + Pending In", true},
	{"To", "subscribed", "", false},
	{"To + Pending In", "subscribed", "", false},
	{"From", "subscribed", "", false},
	{"From + Pending Out", "subscribed", "Both", true},
	{"Both", "subscribed", "", false},
	// A.3.4 unsubscribed
	{"None", "unsubscribed", "", false},
	{"None + Pending Out", "unsubscribed", "None", true},
	{"None + Pending In", "unsubscribed", "", false},
	{"None + Pending Out/In", "unsubscribed", "None + Pending In", true},
	{"To", "unsubscribed", "None", true},
	{"To + Pending In", "unsubscribed", "None + Pending In", true},
	{"From", "unsubscribed", "", false},
	{"From + Pending Out", "unsubscribed", "From", true},
	{"Both", "unsubscribed", "From", true},
}

func check(t *testing.T, dir string, f func(State, string) Result, rows []row) {
	t.Helper()
	for _, r := range rows {
		s, ok := states[r.from]
		if !ok {
			t.Fatalf("unknown state %q", r.from)
		}
		res := f(s, r.typ)
		want := r.to
		if want == "" {
			want = r.from
		}
		if got := res.State.Name(); got != want {
			t.Errorf("%s %s in %q: state %q, want %q", dir, r.typ, r.from, got, want)
		}
		if res.Changed != (r.to != "") {
			t.Errorf("%s %s in %q: changed=%v, want %v", dir, r.typ, r.from, res.Changed, r.to != "")
		}
		if res.Route != r.route {
			t.Errorf("%s %s in %q: route=%v, want %v", dir, r.typ, r.from, res.Route, r.route)
		}
	}
}

func TestOutboundAppendixA2(t *testing.T) { check(t, "outbound", Outbound, outboundRows) }
func TestInboundAppendixA3(t *testing.T)  { check(t, "inbound", Inbound, inboundRows) }

func TestEveryRowCovered(t *testing.T) {
	count := func(rows []row) map[string]int {
		m := map[string]int{}
		for _, r := range rows {
			m[r.typ]++
		}
		return m
	}
	for typ, n := range count(inboundRows) {
		if n != len(states) {
			t.Errorf("inbound %s: %d rows, want %d", typ, n, len(states))
		}
	}
	out := count(outboundRows)
	for _, typ := range []string{"subscribe", "unsubscribe", "unsubscribed"} {
		if out[typ] != len(states) {
			t.Errorf("outbound %s: %d rows, want %d", typ, out[typ], len(states))
		}
	}
	if out["subscribed"]+3 != len(states) { // + the three pre-approval rows of TestPreApproval
		t.Errorf("outbound subscribed: %d rows", out["subscribed"])
	}
}

// RFC 6121 §3.4: "subscribed" without a pending request pre-approves; a later inbound subscribe is approved
// at once with an automatic "subscribed" reply and is not shown to the user.
func TestPreApproval(t *testing.T) {
	for _, name := range []string{"None", "None + Pending Out", "To"} {
		r := Outbound(states[name], "subscribed")
		if !r.State.PreApproved || r.Route || !r.Changed {
			t.Fatalf("pre-approval in %q: %+v", name, r)
		}
		in := Inbound(r.State, "subscribe")
		if !in.State.From || in.State.PreApproved || in.AutoReply != "subscribed" || in.Route {
			t.Fatalf("subscribe after pre-approval in %q: %+v", name, in)
		}
	}
	// unsubscribed cancels a pre-approval.
	r := Outbound(State{PreApproved: true}, "unsubscribed")
	if r.State.PreApproved || !r.Changed || r.Route {
		t.Fatalf("unsubscribed after pre-approval: %+v", r)
	}
}

func TestAutoReplyWhenAlreadySubscribed(t *testing.T) {
	for _, name := range []string{"From", "From + Pending Out", "Both"} {
		if r := Inbound(states[name], "subscribe"); r.AutoReply != "subscribed" {
			t.Errorf("%s: auto reply %q", name, r.AutoReply)
		}
	}
	if r := Outbound(states["Both"], "unsubscribed"); !r.SendUnavailable {
		t.Error("cancelling a 'from' subscription must send unavailable presence (RFC 6121 §3.2.2)")
	}
	if r := Outbound(states["None + Pending In"], "subscribed"); !r.SendPresence {
		t.Error("approving a request must send current presence (RFC 6121 §3.1.5)")
	}
}
