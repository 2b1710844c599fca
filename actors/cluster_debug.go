package actors

import (
	"encoding/json"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/xmppd/xmppd/protocol/jid"
	"github.com/xmppd/xmppd/protocol/nodewire"
)

// ClusterStatus is what /debug/cluster answers (and `xmppd cluster status` prints): the member list this node
// sees and what each member says it hosts.
type ClusterStatus struct {
	Enabled bool            `json:"enabled"`
	Self    string          `json:"self,omitempty"`
	Members []ClusterMember `json:"members"`
	// JID and Home answer ?jid=: the member the address is placed on (its account, or its service's domain).
	JID  string `json:"jid,omitempty"`
	Home string `json:"home,omitempty"`
}

// ClusterMember is one member's answer; Error when it did not answer in time.
type ClusterMember struct {
	Address string `json:"address"`
	Self    bool   `json:"self,omitempty"`
	// Users: user actors placed and running here; Sessions: sessions here (of clients on any node).
	Users       int64 `json:"users"`
	Sessions    int64 `json:"sessions"`
	Connections int64 `json:"connections"`
	// SplitHome: sessions here whose client is connected to another node; SplitEdge: clients connected here
	// whose session is on another node.
	SplitHome int64  `json:"split_sessions_home"`
	SplitEdge int64  `json:"split_sessions_edge"`
	RoutedOut int64  `json:"stanzas_out"`
	RoutedIn  int64  `json:"stanzas_in"`
	Error     string `json:"error,omitempty"`
}

// clusterStatus asks the cluster actor for the members, then every member (in parallel, from this HTTP
// goroutine, like the actor tree's walk) for its StatusReply.
func (s *Server) clusterStatus(w http.ResponseWriter, r *http.Request) {
	st := ClusterStatus{Members: []ClusterMember{}}
	if s.env.cluster != nil {
		q := &clusterMembers{}
		if v := r.URL.Query().Get("jid"); v != "" {
			j, err := jid.Parse(v)
			if err != nil {
				http.Error(w, "jid: "+err.Error(), http.StatusBadRequest)
				return
			}
			st.JID, q.key = j.String(), placementKey(s.env, j)
		}
		res, err := s.sys.Root.RequestFuture(s.env.cluster, q, 5*time.Second).Result()
		if err != nil {
			http.Error(w, "the cluster actor did not answer: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		mi := res.(*clusterMemberIs)
		st.Enabled, st.Self, st.Home = true, mi.self, mi.home
		st.Members = make([]ClusterMember, len(mi.members))
		var wg sync.WaitGroup
		for i, addr := range mi.members {
			wg.Add(1)
			go func() {
				defer wg.Done()
				m := ClusterMember{Address: addr, Self: addr == mi.self}
				res, err := s.sys.Root.RequestFuture(actor.NewPID(addr, clusterActorName), &nodewire.StatusRequest{}, 3*time.Second).Result()
				if rep, ok := res.(*nodewire.StatusReply); ok && err == nil {
					m.Users, m.Sessions, m.Connections = rep.Users, rep.Sessions, rep.Connections
					m.SplitHome, m.SplitEdge, m.RoutedOut, m.RoutedIn = rep.ProxiesHome, rep.ProxiesEdge, rep.RoutedOut, rep.RoutedIn
				} else {
					m.Error = "no answer"
					if err != nil {
						m.Error = err.Error()
					}
				}
				st.Members[i] = m
			}()
		}
		wg.Wait()
		sort.Slice(st.Members, func(i, j int) bool { return st.Members[i].Address < st.Members[j].Address })
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(&st)
}
