package xmppload

import (
	"slices"
	"testing"
)

// The half-online roster: with -roster-online 0.5 every online user has
// exactly half of its contacts online, the relation stays symmetric (so
// every subscription can be mutual), and the share of accounts online is
// the one asked for.
func TestRosterOnlineShare(t *testing.T) {
	for _, tc := range []struct {
		accounts, roster int
		share            float64
		online           int // accounts online
		onlineContacts   int // online contacts of every online account (-1: not checked)
	}{
		{400, 200, 0.5, 200, 100},
		{12, 6, 0.5, 6, 2}, // neighbours ±1..3 of an odd position: ±2 are odd
		{10, 4, 1, 10, 4},
		{9, 4, 1.0 / 3, 3, -1},
	} {
		r := &runner{cfg: Config{RosterSize: tc.roster, RosterOnline: tc.share}}
		r.clients = make([]*client, tc.accounts)
		online := 0
		for i := range r.clients {
			r.clients[i] = &client{idx: i + 1}
			if r.rosterOnline(i) {
				online++
			}
		}
		if online != tc.online {
			t.Errorf("%+v: %d online, want %d", tc, online, tc.online)
		}
		for i := range r.clients {
			contacts := r.rosterContacts(i)
			if len(contacts) != tc.roster {
				t.Fatalf("%+v: position %d has %d contacts, want %d", tc, i, len(contacts), tc.roster)
			}
			seen := map[int]bool{}
			on := 0
			for _, j := range contacts {
				if j == i || seen[j] {
					t.Fatalf("%+v: position %d: contact %d repeated or itself (%v)", tc, i, j, contacts)
				}
				seen[j] = true
				if !slices.Contains(r.rosterContacts(j), i) {
					t.Errorf("%+v: %d lists %d but not the reverse: no mutual subscription possible", tc, i, j)
				}
				if r.rosterOnline(j) {
					on++
				}
			}
			if r.rosterOnline(i) && tc.onlineContacts >= 0 && on != tc.onlineContacts {
				t.Errorf("%+v: online position %d has %d online contacts, want %d", tc, i, on, tc.onlineContacts)
			}
		}
	}
}

func TestRosterOnlineFlagBounds(t *testing.T) {
	c := Config{Profile: ProfileRoster}
	if err := c.defaults(); err != nil || c.RosterOnline != 1 {
		t.Errorf("default share %v (%v), want 1", c.RosterOnline, err)
	}
	c = Config{Profile: ProfileRoster, RosterOnline: 1.5}
	if err := c.defaults(); err == nil {
		t.Error("a share above 1 accepted")
	}
}

func TestMutualContacts(t *testing.T) {
	roster := []byte(`<iq type='result' id='roster1'><query xmlns='jabber:iq:roster'>` +
		`<item jid='a@localhost' subscription='both'/><item subscription="both" jid="b@localhost"><group>g</group></item>` +
		`<item jid='c@localhost' subscription='to' ask='subscribe'/><item jid='d@localhost' subscription='from'/>` +
		`<item jid='e@localhost'/></query></iq>`)
	got := mutualContacts(roster)
	if len(got) != 2 || !got["a@localhost"] || !got["b@localhost"] {
		t.Errorf("mutual contacts %v, want a and b", got)
	}
}

// -stagger: the senders' phases are distinct and evenly spaced over one period, so at any rate each tick carries
// about clients/ticks-per-period sends instead of all of them.
func TestStaggerPhases(t *testing.T) {
	r := &runner{clients: make([]*client, 200)}
	seen := map[int]bool{}
	for i := range r.clients {
		p := r.staggerPhase(i)
		if p < 0 || p >= 1 {
			t.Fatalf("phase %v of %d outside [0, 1)", p, i)
		}
		k := int(p*200 + 0.5)
		if seen[k] {
			t.Fatalf("phase %v of %d shared", p, i)
		}
		seen[k] = true
	}
	// At 1 msg/s, in the first 10 ms tick only the senders with a phase of at least 0.99 are due: 2 of 200.
	due := 0
	for i := range r.clients {
		if uint64(1*0.01+r.staggerPhase(i)) >= 1 {
			due++
		}
	}
	if due != 2 {
		t.Errorf("%d of 200 due in the first 10 ms at 1/s, want 2", due)
	}
}
