package actors

import (
	"fmt"
	"testing"
)

// Placement: every key has one home among the members; when a member leaves only its keys move (rendezvous
// hashing), and a node missing from its own list places nothing on itself.
func TestPlacement(t *testing.T) {
	members := []string{"127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"}
	home := func(p *placement, key string) string {
		if h := p.home(key); h != "" {
			return h
		}
		return p.self
	}
	full := newPlacement(&clusterTopology{self: members[0], members: members})
	less := newPlacement(&clusterTopology{self: members[0], members: members[:2]})
	count := map[string]int{}
	for i := range 3000 {
		key := fmt.Sprintf("user%d@localhost", i)
		h := home(full, key)
		count[h]++
		if h2 := home(less, key); h != members[2] && h2 != h {
			t.Fatalf("%s moved from %s to %s although its home stayed", key, h, h2)
		}
		if home(less, key) == members[2] {
			t.Fatalf("%s placed on a member that left", key)
		}
	}
	for _, m := range members {
		if count[m] < 700 {
			t.Errorf("member %s holds %d of 3000 keys: placement does not spread (%v)", m, count[m], count)
		}
	}
	outside := newPlacement(&clusterTopology{self: "127.0.0.1:7009", members: members})
	for i := range 100 {
		if outside.home(fmt.Sprintf("u%d@localhost", i)) == "" {
			t.Fatal("a node that is not a member placed a key on itself")
		}
	}
	var none *placement
	if none.home("a@localhost") != "" {
		t.Fatal("a single node forwards")
	}
}
