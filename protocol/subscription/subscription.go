// Package subscription is the presence subscription state machine of RFC 6121 §3 and Appendix A, as a pure
// function of (state, direction, stanza type). The roster actor applies its result to storage and decides what to
// route and push from the returned flags.
package subscription

// State is the subscription state of one contact in one user's roster (RFC 6121 Appendix A.1).
type State struct {
	To          bool // the user receives the contact's presence
	From        bool // the contact receives the user's presence
	PendingOut  bool // the user asked to subscribe to the contact (ask='subscribe')
	PendingIn   bool // the contact asked to subscribe to the user
	PreApproved bool // RFC 6121 §3.4: a future subscribe from the contact is approved at once
}

// Subscription is the 'subscription' attribute value of the state (RFC 6121 §2.1.2.5).
func (s State) Subscription() string {
	switch {
	case s.To && s.From:
		return "both"
	case s.To:
		return "to"
	case s.From:
		return "from"
	}
	return "none"
}

// FromAttr sets To/From from a 'subscription' attribute value.
func FromAttr(sub string) (to, from bool) {
	switch sub {
	case "both":
		return true, true
	case "to":
		return true, false
	case "from":
		return false, true
	}
	return false, false
}

// Name is the Appendix A name of the state, e.g. "None + Pending Out/In"; used by tests and logs.
func (s State) Name() string {
	base := map[[2]bool]string{{false, false}: "None", {true, false}: "To", {false, true}: "From", {true, true}: "Both"}[[2]bool{s.To, s.From}]
	switch {
	case s.PendingOut && s.PendingIn:
		return base + " + Pending Out/In"
	case s.PendingOut:
		return base + " + Pending Out"
	case s.PendingIn:
		return base + " + Pending In"
	}
	return base
}

// Result says what processing a subscription stanza did.
type Result struct {
	State   State
	Changed bool // the state changed: push the roster item to interested resources (RFC 6121 §3)
	// Route: for outbound stanzas, whether the user's server routes it to the contact; for inbound, whether the
	// contact's stanza is delivered to the user's available resources.
	Route bool
	// AutoReply is a presence type the server sends back to the contact on the user's behalf ("subscribed" when
	// the contact is already allowed or pre-approved), "" for none.
	AutoReply string
	// SendPresence: after an outbound "subscribed" that granted a subscription, the user's server sends the
	// contact the current presence of the user's available resources (RFC 6121 §3.1.5).
	SendPresence bool
	// SendUnavailable: a subscription from the contact was cancelled; the contact gets unavailable presence
	// from the user's available resources (RFC 6121 §3.2.2).
	SendUnavailable bool
}

// Outbound applies a subscription stanza the user sends to the contact (Appendix A.2).
func Outbound(s State, typ string) Result {
	n := s
	r := Result{}
	switch typ {
	case "subscribe":
		// A.2.1: only None and From change (to + Pending Out); the request is routed in every state, so that
		// the contact's server can auto-reply when a subscription already exists (RFC 6121 §3.1.2).
		if !s.To {
			n.PendingOut = true
		}
		r.Route = true
	case "unsubscribe":
		// A.2.2: the user cancels its subscription to the contact (or its pending request).
		n.To = false
		n.PendingOut = false
		r.Route = s.To || s.PendingOut
	case "subscribed":
		// A.2.3: approve a pending request; with no pending request it is a pre-approval (RFC 6121 §3.4).
		if s.PendingIn {
			n.From = true
			n.PendingIn = false
			r.Route = true
			r.SendPresence = true
		} else if !s.From && !s.PreApproved {
			n.PreApproved = true
		}
	case "unsubscribed":
		// A.2.4: deny a pending request or cancel the contact's subscription; also cancels a pre-approval.
		n.PreApproved = false
		if s.From || s.PendingIn {
			r.Route = true
		}
		if s.From {
			r.SendUnavailable = true
		}
		n.From = false
		n.PendingIn = false
	}
	if n.From {
		n.PreApproved = false // a pre-approval is consumed by the subscription it approves
	}
	r.State = n
	r.Changed = n != s
	return r
}

// Inbound applies a subscription stanza the contact sends to the user (Appendix A.3).
func Inbound(s State, typ string) Result {
	n := s
	r := Result{}
	switch typ {
	case "subscribe":
		// A.3.1
		switch {
		case s.From:
			// Already subscribed: the server answers for the user (RFC 6121 §3.1.3).
			r.AutoReply = "subscribed"
		case s.PreApproved:
			n.From = true
			n.PreApproved = false
			r.AutoReply = "subscribed"
		case !s.PendingIn:
			n.PendingIn = true
			r.Route = true
		}
	case "unsubscribe":
		// A.3.2: the contact cancels its subscription to the user or its pending request.
		if s.From || s.PendingIn {
			r.Route = true
		}
		n.From = false
		n.PendingIn = false
	case "subscribed":
		// A.3.3: honoured only if the user asked (Pending Out).
		if s.PendingOut && !s.To {
			n.To = true
			n.PendingOut = false
			r.Route = true
		}
	case "unsubscribed":
		// A.3.4: the contact denies the user's request or cancels the user's subscription.
		if s.To || s.PendingOut {
			r.Route = true
		}
		n.To = false
		n.PendingOut = false
	}
	r.State = n
	r.Changed = n != s
	return r
}

// IsSubscriptionType reports whether a presence type is one of the four subscription types.
func IsSubscriptionType(typ string) bool {
	switch typ {
	case "subscribe", "subscribed", "unsubscribe", "unsubscribed":
		return true
	}
	return false
}
