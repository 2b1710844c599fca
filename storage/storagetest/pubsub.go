package storagetest

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/xmppd/xmppd/storage"
)

// Two PEP services (XEP-0163: the service is the owner's bare JID) and a
// standalone one, which share node names on purpose.
const (
	svc     = "alice@example.org"
	bobSvc  = "bob@example.org"
	compSvc = "pubsub.example.org"
)

func putNode(t *testing.T, s storage.Store, service, node string) {
	t.Helper()
	must(t, s.PutPubSubNode(ctx(t), service, storage.PubSubNode{Node: node, Config: "{}", Created: stamp}))
}

// publish stores an item whose payload names its service, node and id, so a
// read that crosses services or nodes shows up in the payload.
func publish(t *testing.T, s storage.Store, service, node, id string, max int) {
	t.Helper()
	must(t, s.PublishPubSubItem(ctx(t), service, node, item(service, node, id), max))
}

func item(service, node, id string) storage.PubSubItem {
	return storage.PubSubItem{ID: id, Publisher: service + "/res", Payload: "<x>" + service + " " + node + " " + id + "</x>", Published: stamp}
}

// itemIDs returns the IDs PubSubItems lists, newest first.
func itemIDs(t *testing.T, s storage.Store, service, node string, max int) []string {
	t.Helper()
	items, err := s.PubSubItems(ctx(t), service, node, max)
	must(t, err)
	if items == nil {
		t.Errorf("PubSubItems(%s, %s) = nil", service, node)
	}
	ids := []string{}
	for _, it := range items {
		ids = append(ids, it.ID)
	}
	return ids
}

func wantIDs(t *testing.T, s storage.Store, service, node string, max int, want ...string) {
	t.Helper()
	if want == nil {
		want = []string{}
	}
	if got := itemIDs(t, s, service, node, max); !slices.Equal(got, want) {
		t.Errorf("items of %s/%s (max %d) = %v, want %v", service, node, max, got, want)
	}
}

func members(t *testing.T, s storage.Store, service, node string) []storage.PubSubMember {
	t.Helper()
	ms, err := s.PubSubMembers(ctx(t), service, node)
	must(t, err)
	if ms == nil {
		t.Errorf("PubSubMembers(%s, %s) = nil, want non-nil", service, node)
	}
	return ms
}

func nodeNames(t *testing.T, s storage.Store, service string) []string {
	t.Helper()
	nodes, err := s.PubSubNodes(ctx(t), service)
	must(t, err)
	if nodes == nil {
		t.Errorf("PubSubNodes(%s) = nil, want non-nil", service)
	}
	names := []string{}
	for _, n := range nodes {
		names = append(names, n.Node)
	}
	return names
}

func testPubSubNodes(t *testing.T, s storage.Store) {
	if names := nodeNames(t, s, svc); len(names) != 0 {
		t.Fatalf("nodes of a new service: %v", names)
	}
	// Bytewise order: "B" < "a" < "b" < "é".
	zone := time.FixedZone("X", 2*3600)
	created := stamp.Add(789 * time.Nanosecond).In(zone)
	for _, n := range []string{"b", "é", "urn:xmpp:microblog:0", "a", "B"} {
		must(t, s.PutPubSubNode(ctx(t), svc, storage.PubSubNode{Node: n, Config: "cfg " + n, Created: created}))
	}
	if names := nodeNames(t, s, svc); !slices.Equal(names, []string{"B", "a", "b", "urn:xmpp:microblog:0", "é"}) {
		t.Errorf("nodes = %v, want bytewise order", names)
	}

	// A second put replaces Config and keeps Created.
	must(t, s.PutPubSubNode(ctx(t), svc, storage.PubSubNode{Node: "a", Config: `{"x":1}`, Created: stamp.Add(time.Hour)}))
	nodes, err := s.PubSubNodes(ctx(t), svc)
	must(t, err)
	if len(nodes) != 5 {
		t.Fatalf("a second put added a node: %+v", nodes)
	}
	for _, n := range nodes {
		wantCfg := "cfg " + n.Node
		if n.Node == "a" {
			wantCfg = `{"x":1}`
		}
		if n.Config != wantCfg {
			t.Errorf("node %s config = %q, want %q", n.Node, n.Config, wantCfg)
		}
		// Microseconds kept, the nanoseconds dropped, returned in UTC.
		if !n.Created.Equal(stamp) || n.Created.Location() != time.UTC {
			t.Errorf("node %s created = %v, want %v in UTC", n.Node, n.Created, stamp)
		}
	}
	if names := nodeNames(t, s, bobSvc); len(names) != 0 {
		t.Errorf("another service sees nodes: %v", names)
	}

	// One node by name: what the list says, ErrNotFound in another service or for a name never put.
	n, err := s.PubSubNode(ctx(t), svc, "a")
	must(t, err)
	if n.Node != "a" || n.Config != `{"x":1}` || !n.Created.Equal(stamp) || n.Created.Location() != time.UTC {
		t.Errorf("PubSubNode(a) = %+v", n)
	}
	for _, q := range [][2]string{{bobSvc, "a"}, {svc, "A"}, {compSvc, "b"}} {
		if _, err := s.PubSubNode(ctx(t), q[0], q[1]); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("PubSubNode(%s, %s) err = %v, want ErrNotFound", q[0], q[1], err)
		}
	}
}

func testPubSubItems(t *testing.T, s storage.Store) {
	putNode(t, s, svc, "n")
	putNode(t, s, svc, "m")
	wantIDs(t, s, svc, "n", 0)
	for _, id := range []string{"1", "3", "2"} {
		publish(t, s, svc, "n", id, 0)
	}
	publish(t, s, svc, "m", "other", 0)
	// Newest first: publication order, not id order.
	wantIDs(t, s, svc, "n", 0, "2", "3", "1")
	wantIDs(t, s, svc, "n", -1, "2", "3", "1")
	wantIDs(t, s, svc, "n", 2, "2", "3")
	wantIDs(t, s, svc, "n", 1, "2")
	wantIDs(t, s, svc, "n", 10, "2", "3", "1")
	wantIDs(t, s, svc, "m", 0, "other")

	zone := time.FixedZone("X", -5*3600)
	in := storage.PubSubItem{ID: "t", Publisher: "bob@example.org/phone", Payload: "<geoloc xmlns='http://jabber.org/protocol/geoloc'><text>Verona</text></geoloc>", Published: stamp.Add(789 * time.Nanosecond).In(zone)}
	must(t, s.PublishPubSubItem(ctx(t), svc, "n", in, 0))
	got, err := s.PubSubItem(ctx(t), svc, "n", "t")
	must(t, err)
	want := in
	want.Published = stamp
	if got != want || got.Published.Location() != time.UTC {
		t.Errorf("PubSubItem = %+v, want %+v in UTC", got, want)
	}
	items, err := s.PubSubItems(ctx(t), svc, "n", 1)
	must(t, err)
	if len(items) != 1 || items[0] != want || items[0].Published.Location() != time.UTC {
		t.Errorf("PubSubItems(max 1) = %+v, want [%+v] in UTC", items, want)
	}

	_, err = s.PubSubItem(ctx(t), svc, "n", "missing")
	wantErr(t, err, storage.ErrNotFound)
	_, err = s.PubSubItem(ctx(t), svc, "m", "1") // in another node of the service
	wantErr(t, err, storage.ErrNotFound)
}

func testPubSubMaxItems(t *testing.T, s storage.Store) {
	putNode(t, s, svc, "n")
	putNode(t, s, svc, "m")
	for _, id := range []string{"m1", "m2", "m3"} {
		publish(t, s, svc, "m", id, 0)
	}
	for _, id := range []string{"1", "2", "3", "4"} {
		publish(t, s, svc, "n", id, 2)
	}
	wantIDs(t, s, svc, "n", 0, "4", "3")
	// The trim is per node.
	wantIDs(t, s, svc, "m", 0, "m3", "m2", "m1")

	// No limit keeps everything; a later limit trims the backlog at once.
	publish(t, s, svc, "n", "5", 0)
	publish(t, s, svc, "n", "6", -1)
	wantIDs(t, s, svc, "n", 0, "6", "5", "4", "3")
	publish(t, s, svc, "n", "7", 1)
	wantIDs(t, s, svc, "n", 0, "7")

	// Republishing within the limit: the replaced item is not counted twice,
	// and it is the oldest other item that goes.
	publish(t, s, svc, "n", "8", 3)
	publish(t, s, svc, "n", "9", 3)
	wantIDs(t, s, svc, "n", 0, "9", "8", "7")
	publish(t, s, svc, "n", "7", 3)
	wantIDs(t, s, svc, "n", 0, "7", "9", "8")
	publish(t, s, svc, "n", "9", 2)
	wantIDs(t, s, svc, "n", 0, "9", "7")
	if _, err := s.PubSubItem(ctx(t), svc, "n", "8"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("trimmed item still readable: %v", err)
	}
}

func testPubSubReplace(t *testing.T, s storage.Store) {
	putNode(t, s, svc, "n")
	publish(t, s, svc, "n", "a", 0)
	publish(t, s, svc, "n", "b", 0)
	later := stamp.Add(time.Minute)
	repl := storage.PubSubItem{ID: "a", Publisher: "carol@example.org", Payload: "<new/>", Published: later}
	must(t, s.PublishPubSubItem(ctx(t), svc, "n", repl, 0))
	// One item per id, and the republished one is the newest.
	wantIDs(t, s, svc, "n", 0, "a", "b")
	got, err := s.PubSubItem(ctx(t), svc, "n", "a")
	must(t, err)
	if got != repl {
		t.Errorf("replaced item = %+v, want %+v", got, repl)
	}
	got, err = s.PubSubItem(ctx(t), svc, "n", "b")
	must(t, err)
	if got != item(svc, "n", "b") {
		t.Errorf("untouched item = %+v", got)
	}
}

func testPubSubRetract(t *testing.T, s storage.Store) {
	putNode(t, s, svc, "n")
	putNode(t, s, svc, "m")
	for _, id := range []string{"a", "b", "c"} {
		publish(t, s, svc, "n", id, 0)
	}
	publish(t, s, svc, "m", "b", 0)
	ok, err := s.RetractPubSubItem(ctx(t), svc, "n", "b")
	must(t, err)
	if !ok {
		t.Error("retract of an existing item reported false")
	}
	wantIDs(t, s, svc, "n", 0, "c", "a")
	_, err = s.PubSubItem(ctx(t), svc, "n", "b")
	wantErr(t, err, storage.ErrNotFound)
	// The same id in another node is a different item.
	wantIDs(t, s, svc, "m", 0, "b")

	for _, c := range []struct{ service, node, id string }{
		{svc, "n", "b"},    // already retracted
		{svc, "n", "zzz"},  // never published
		{svc, "none", "a"}, // no such node
		{bobSvc, "n", "a"}, // no such service
		{svc, "n", ""},     // empty id
	} {
		ok, err := s.RetractPubSubItem(ctx(t), c.service, c.node, c.id)
		must(t, err)
		if ok {
			t.Errorf("retract of missing %v reported true", c)
		}
	}
	wantIDs(t, s, svc, "n", 0, "c", "a")

	// A retracted id can be published again.
	publish(t, s, svc, "n", "b", 0)
	wantIDs(t, s, svc, "n", 0, "b", "c", "a")
}

func testPubSubPurge(t *testing.T, s storage.Store) {
	putNode(t, s, svc, "n")
	putNode(t, s, svc, "m")
	publish(t, s, svc, "n", "a", 0)
	publish(t, s, svc, "n", "b", 0)
	publish(t, s, svc, "m", "c", 0)
	must(t, s.PutPubSubMember(ctx(t), svc, "n", storage.PubSubMember{JID: "bob@example.org", Subscription: "subscribed"}))
	must(t, s.PurgePubSubNode(ctx(t), svc, "n"))
	wantIDs(t, s, svc, "n", 0)
	wantIDs(t, s, svc, "m", 0, "c")
	// Purge removes items only: the node and its members stay.
	if names := nodeNames(t, s, svc); !slices.Equal(names, []string{"m", "n"}) {
		t.Errorf("nodes after purge = %v", names)
	}
	if ms := members(t, s, svc, "n"); len(ms) != 1 {
		t.Errorf("members after purge = %+v", ms)
	}
	must(t, s.PurgePubSubNode(ctx(t), svc, "n"))    // already empty
	must(t, s.PurgePubSubNode(ctx(t), svc, "none")) // no such node
	publish(t, s, svc, "n", "a", 0)
	wantIDs(t, s, svc, "n", 0, "a")
}

func testPubSubMembers(t *testing.T, s storage.Store) {
	putNode(t, s, svc, "n")
	if ms := members(t, s, svc, "n"); len(ms) != 0 {
		t.Fatalf("members of a new node: %+v", ms)
	}
	if ms := members(t, s, svc, "none"); len(ms) != 0 {
		t.Fatalf("members of a missing node: %+v", ms)
	}
	put := func(m storage.PubSubMember) {
		t.Helper()
		must(t, s.PutPubSubMember(ctx(t), svc, "n", m))
	}
	put(storage.PubSubMember{JID: "zed@example.org", Affiliation: "member"})
	put(storage.PubSubMember{JID: "bob@example.org/phone", Subscription: "subscribed", SubID: "s1", Options: "<x/>"})
	put(storage.PubSubMember{JID: "Bob@example.org", Affiliation: "publisher"})
	put(storage.PubSubMember{JID: svc, Affiliation: "owner", Subscription: "subscribed", SubID: "s0"})
	// A second put replaces every field of the row.
	put(storage.PubSubMember{JID: "zed@example.org", Affiliation: "outcast"})
	put(storage.PubSubMember{JID: "bob@example.org/phone", Subscription: "pending", SubID: "s2"})

	want := []storage.PubSubMember{ // bytewise by JID
		{JID: "Bob@example.org", Affiliation: "publisher"},
		{JID: svc, Affiliation: "owner", Subscription: "subscribed", SubID: "s0"},
		{JID: "bob@example.org/phone", Subscription: "pending", SubID: "s2"},
		{JID: "zed@example.org", Affiliation: "outcast"},
	}
	if ms := members(t, s, svc, "n"); !slices.Equal(ms, want) {
		t.Fatalf("members = %+v\nwant      %+v", ms, want)
	}

	// Neither affiliation nor subscription: the row goes, whatever else it carries.
	put(storage.PubSubMember{JID: "zed@example.org"})
	put(storage.PubSubMember{JID: "bob@example.org/phone", SubID: "s2", Options: "<x/>"})
	put(storage.PubSubMember{JID: "nobody@example.org"}) // absent: no error, no row
	want = want[:2]
	if ms := members(t, s, svc, "n"); !slices.Equal(ms, want) {
		t.Errorf("members after removals = %+v\nwant                   %+v", ms, want)
	}
}

func testPubSubDeleteNodeCascade(t *testing.T, s storage.Store) {
	putNode(t, s, svc, "n")
	putNode(t, s, svc, "m")
	for _, node := range []string{"n", "m"} {
		publish(t, s, svc, node, "a", 0)
		must(t, s.PutPubSubMember(ctx(t), svc, node, storage.PubSubMember{JID: "bob@example.org", Affiliation: "member"}))
	}
	must(t, s.DeletePubSubNode(ctx(t), svc, "n"))
	must(t, s.DeletePubSubNode(ctx(t), svc, "n"))    // absent: no error
	must(t, s.DeletePubSubNode(ctx(t), bobSvc, "n")) // no such service: no error
	if names := nodeNames(t, s, svc); !slices.Equal(names, []string{"m"}) {
		t.Errorf("nodes after delete = %v", names)
	}
	_, err := s.PubSubItem(ctx(t), svc, "n", "a")
	wantErr(t, err, storage.ErrNotFound)
	err = s.PublishPubSubItem(ctx(t), svc, "n", item(svc, "n", "b"), 0)
	wantErr(t, err, storage.ErrNotFound)

	// A node created again under the same name starts empty and new.
	later := stamp.Add(time.Hour)
	must(t, s.PutPubSubNode(ctx(t), svc, storage.PubSubNode{Node: "n", Config: "new", Created: later}))
	wantIDs(t, s, svc, "n", 0)
	if ms := members(t, s, svc, "n"); len(ms) != 0 {
		t.Errorf("members outlived their node: %+v", ms)
	}
	nodes, err := s.PubSubNodes(ctx(t), svc)
	must(t, err)
	if len(nodes) != 2 || nodes[1].Node != "n" || !nodes[1].Created.Equal(later) || nodes[1].Config != "new" {
		t.Errorf("recreated node = %+v, want created %v", nodes, later)
	}

	// The sibling node kept its items and members.
	wantIDs(t, s, svc, "m", 0, "a")
	if ms := members(t, s, svc, "m"); len(ms) != 1 {
		t.Errorf("sibling node members = %+v", ms)
	}
}

func testPubSubDeleteService(t *testing.T, s storage.Store) {
	for _, service := range []string{svc, bobSvc} {
		for _, node := range []string{"a", "b"} {
			putNode(t, s, service, node)
			publish(t, s, service, node, "1", 0)
			must(t, s.PutPubSubMember(ctx(t), service, node, storage.PubSubMember{JID: "carol@example.org", Subscription: "subscribed"}))
		}
	}
	must(t, s.DeletePubSubService(ctx(t), svc))
	must(t, s.DeletePubSubService(ctx(t), svc))                  // already gone
	must(t, s.DeletePubSubService(ctx(t), "nobody@example.org")) // never existed
	if names := nodeNames(t, s, svc); len(names) != 0 {
		t.Errorf("nodes after DeletePubSubService: %v", names)
	}
	// Items and members went too: a node created again is empty.
	putNode(t, s, svc, "a")
	wantIDs(t, s, svc, "a", 0)
	if ms := members(t, s, svc, "a"); len(ms) != 0 {
		t.Errorf("members outlived their service: %+v", ms)
	}
	// The other service is untouched.
	if names := nodeNames(t, s, bobSvc); !slices.Equal(names, []string{"a", "b"}) {
		t.Errorf("another service's nodes: %v", names)
	}
	for _, node := range []string{"a", "b"} {
		wantIDs(t, s, bobSvc, node, 0, "1")
		if ms := members(t, s, bobSvc, node); len(ms) != 1 {
			t.Errorf("another service's members of %s: %+v", node, ms)
		}
	}

	// Deleting an account takes its PEP service (service = the bare JID)
	// with it, and nobody else's.
	const carol = "carol@example.org"
	must(t, s.CreateAccount(ctx(t), carol, nil))
	putNode(t, s, carol, "n")
	publish(t, s, carol, "n", "1", 0)
	must(t, s.DeleteAccount(ctx(t), carol))
	if names := nodeNames(t, s, carol); len(names) != 0 {
		t.Errorf("PEP nodes outlived the account: %v", names)
	}
	putNode(t, s, carol, "n")
	wantIDs(t, s, carol, "n", 0)
	if names := nodeNames(t, s, bobSvc); len(names) != 2 {
		t.Errorf("deleting carol's account touched bob's service: %v", names)
	}
}

func testPubSubNotFound(t *testing.T, s storage.Store) {
	err := s.PublishPubSubItem(ctx(t), svc, "none", item(svc, "none", "a"), 0)
	wantErr(t, err, storage.ErrNotFound)
	err = s.PutPubSubMember(ctx(t), svc, "none", storage.PubSubMember{JID: "bob@example.org", Affiliation: "member"})
	wantErr(t, err, storage.ErrNotFound)
	err = s.PutPubSubMember(ctx(t), svc, "none", storage.PubSubMember{JID: "bob@example.org"})
	wantErr(t, err, storage.ErrNotFound)
	_, err = s.PubSubItem(ctx(t), svc, "none", "a")
	wantErr(t, err, storage.ErrNotFound)
	wantIDs(t, s, svc, "none", 0)

	// A node of the same name in another service does not count.
	putNode(t, s, bobSvc, "none")
	err = s.PublishPubSubItem(ctx(t), svc, "none", item(svc, "none", "a"), 0)
	wantErr(t, err, storage.ErrNotFound)

	// The failed calls created nothing, neither a node nor rows that a node
	// created later would inherit.
	if names := nodeNames(t, s, svc); len(names) != 0 {
		t.Errorf("a failed call created nodes: %v", names)
	}
	putNode(t, s, svc, "none")
	wantIDs(t, s, svc, "none", 0)
	if ms := members(t, s, svc, "none"); len(ms) != 0 {
		t.Errorf("a failed call left members: %+v", ms)
	}
	wantIDs(t, s, bobSvc, "none", 0)
}

func testPubSubIsolation(t *testing.T, s storage.Store) {
	services := []string{svc, bobSvc, compSvc}
	for _, service := range services {
		putNode(t, s, service, "n")
		putNode(t, s, service, "only-"+service)
		// The same item ids everywhere; the payloads tell them apart.
		publish(t, s, service, "n", "a", 0)
		publish(t, s, service, "n", "b", 0)
		must(t, s.PutPubSubMember(ctx(t), service, "n", storage.PubSubMember{JID: "sub@" + service, Subscription: "subscribed"}))
	}
	for _, service := range services {
		if names := nodeNames(t, s, service); !slices.Equal(names, []string{"n", "only-" + service}) {
			t.Errorf("nodes of %s = %v", service, names)
		}
		items, err := s.PubSubItems(ctx(t), service, "n", 0)
		must(t, err)
		if want := []storage.PubSubItem{item(service, "n", "b"), item(service, "n", "a")}; !slices.Equal(items, want) {
			t.Errorf("items of %s = %+v\nwant        %+v", service, items, want)
		}
		got, err := s.PubSubItem(ctx(t), service, "n", "a")
		must(t, err)
		if got != item(service, "n", "a") {
			t.Errorf("item a of %s = %+v", service, got)
		}
		if ms := members(t, s, service, "n"); len(ms) != 1 || ms[0].JID != "sub@"+service {
			t.Errorf("members of %s = %+v", service, ms)
		}
	}

	// Every write to bob's node leaves the others' node of the same name alone.
	publish(t, s, bobSvc, "n", "c", 1)
	ok, err := s.RetractPubSubItem(ctx(t), bobSvc, "n", "a")
	must(t, err)
	if ok {
		t.Error("retracted bob's item a, which the max 1 publish had trimmed")
	}
	must(t, s.PutPubSubMember(ctx(t), bobSvc, "n", storage.PubSubMember{JID: "sub@" + svc, Affiliation: "outcast"}))
	must(t, s.PutPubSubMember(ctx(t), bobSvc, "n", storage.PubSubMember{JID: "sub@" + bobSvc}))
	must(t, s.PutPubSubNode(ctx(t), bobSvc, storage.PubSubNode{Node: "n", Config: "changed", Created: stamp}))
	wantIDs(t, s, bobSvc, "n", 0, "c")
	for _, service := range []string{svc, compSvc} {
		wantIDs(t, s, service, "n", 0, "b", "a")
		if ms := members(t, s, service, "n"); len(ms) != 1 || ms[0].JID != "sub@"+service || ms[0].Affiliation != "" {
			t.Errorf("members of %s after bob's writes = %+v", service, ms)
		}
		nodes, err := s.PubSubNodes(ctx(t), service)
		must(t, err)
		if nodes[0].Config != "{}" {
			t.Errorf("config of %s/n = %q after bob's put", service, nodes[0].Config)
		}
	}

	must(t, s.PurgePubSubNode(ctx(t), bobSvc, "n"))
	must(t, s.DeletePubSubNode(ctx(t), compSvc, "n"))
	wantIDs(t, s, svc, "n", 0, "b", "a")
	if names := nodeNames(t, s, svc); len(names) != 2 {
		t.Errorf("alice's nodes after the others' deletes: %v", names)
	}
	if names := nodeNames(t, s, bobSvc); len(names) != 2 {
		t.Errorf("bob's nodes after the component's delete: %v", names)
	}
}
