package actors

import (
	"errors"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/feature"
)

// outsideTestPart is a service part that answers every question with what it was asked, and says when its actor
// stops.
type outsideTestPart struct{ stopped chan struct{} }

func (outsideTestPart) Answer(q any) any { return q }
func (p outsideTestPart) Stopped()       { p.stopped <- struct{}{} }

// A service's Mailbox in a cluster (servicesActor.outside): while the service's domain is placed on another
// node, a question whose type the feature declares in Wire goes to the router (which forwards it to the home),
// one that cannot cross is answered with no answer at once, a notice that cannot cross is dropped, and no
// service actor is spawned here; placed here, the questions reach the part on this node; placed elsewhere again,
// the service actor here retires and the questions go to the router again.
func TestServiceMailboxPlacement(t *testing.T) {
	spawned, stopped := make(chan struct{}, 8), make(chan struct{}, 8)
	f := &feature.Feature{
		Name: "svc",
		Service: &feature.ServiceSpec{
			Host: func(*config.Config) string { return "svc.example" },
			New:  func(feature.ServiceHost) any { spawned <- struct{}{}; return outsideTestPart{stopped: stopped} },
		},
		Wire: []feature.WireType{feature.WireJSON[wireTestMsg]("msg", nil)},
	}
	cfg := config.Default()
	cfg.Cluster.Enabled = true
	reg, err := newRegistry(&cfg, []*feature.Feature{f})
	if err != nil || len(reg.services) != 1 {
		t.Fatalf("registry: %v, %d services", err, len(reg.services))
	}
	e := &env{cfg: cfg, reg: reg, metrics: newMetrics(reg.kindNames()), log: zerolog.Nop(), workers: newWorkers(2)}
	defer e.workers.close()
	members := []string{"127.0.0.1:7001", "127.0.0.1:7002"}
	elsewhere := &clusterTopology{self: members[0], members: members}
	if newPlacement(elsewhere).home("svc.example") == "" {
		elsewhere.self = members[1]
	}
	here := &clusterTopology{self: members[0], members: members}
	if here.self == elsewhere.self {
		here.self = members[1]
	}
	forwarded := make(chan *toUser, 8)
	sys := actor.NewActorSystem()
	e.router = sys.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		switch m := ctx.Message().(type) {
		case *watchPlacement:
			ctx.Respond(elsewhere)
		case *toUser:
			forwarded <- m
			if q, ok := m.msg.(*featureMsg).msg.(*surveyAsk); ok {
				ctx.Send(q.replyTo, &surveyAnswer{a: "from the home"})
			}
		}
	}))
	services, err := sys.Root.SpawnNamed(newServicesProps(e), "services")
	if err != nil {
		t.Fatal(err)
	}
	mb := &serviceMailbox{sys: sys, services: services, sv: reg.services[0]}

	if a, ok := mb.Ask(wireTestMsg{Text: "begin"}, 5*time.Second); !ok || a != "from the home" {
		t.Fatalf("a question that may cross: %v %v", a, ok)
	}
	if m := <-forwarded; m.bare.String() != "svc.example" {
		t.Fatalf("forwarded to %s", m.bare)
	}
	start := time.Now()
	if a, ok := mb.Ask(wireTestOther{N: 1}, 5*time.Second); ok {
		t.Fatalf("a question that cannot cross was answered: %v", a)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("a question that cannot cross waited %v for its timeout", d)
	}
	mb.Tell(wireTestOther{N: 2})
	select {
	case <-spawned:
		t.Fatal("a service actor was spawned on a node that is not the service's home")
	case m := <-forwarded:
		t.Fatalf("a notice that cannot cross was forwarded: %#v", m)
	case <-time.After(200 * time.Millisecond):
	}

	sys.Root.Send(services, here)
	if a, ok := mb.Ask(wireTestOther{N: 3}, 5*time.Second); !ok || a != (wireTestOther{N: 3}) {
		t.Fatalf("placed here, the part did not answer: %v %v", a, ok)
	}
	<-spawned

	sys.Root.Send(services, elsewhere)
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("the service actor did not retire when its domain moved to another node")
	}
	if a, ok := mb.Ask(wireTestMsg{Text: "again"}, 5*time.Second); !ok || a != "from the home" {
		t.Fatalf("moved away, a question that may cross: %v %v", a, ok)
	}
	if a, ok := mb.Ask(wireTestOther{N: 4}, 5*time.Second); ok {
		t.Fatalf("moved away, the retired part answered: %v", a)
	}
	select {
	case <-spawned:
		t.Fatal("a service actor was spawned again after the service moved away")
	default:
	}
}

// A service whose InCluster refuses the configuration is off in a cluster (and said so, offInCluster), and on
// when the node is alone.
func TestServiceOffInCluster(t *testing.T) {
	f := &feature.Feature{Name: "svc", Service: &feature.ServiceSpec{
		Host:      func(*config.Config) string { return "svc.example" },
		InCluster: func(*config.Config) error { return errors.New("needs a shared directory") },
	}}
	cfg := config.Default()
	reg, err := newRegistry(&cfg, []*feature.Feature{f})
	if err != nil || len(reg.services) != 1 || len(reg.offInCluster) != 0 {
		t.Fatalf("one node: %v, %d services, %d off", err, len(reg.services), len(reg.offInCluster))
	}
	cfg.Cluster.Enabled = true
	reg, err = newRegistry(&cfg, []*feature.Feature{f})
	if err != nil || len(reg.services) != 0 || len(reg.offInCluster) != 1 || reg.offInCluster[0].host != "svc.example" {
		t.Fatalf("a cluster: %v, %d services, off %v", err, len(reg.services), reg.offInCluster)
	}
}
