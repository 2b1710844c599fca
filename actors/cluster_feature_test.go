package actors

import (
	"errors"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/feature"
	"github.com/xmppd/xmppd/protocol/nodewire"
)

type wireTestMsg struct{ Text string }
type wireTestOther struct{ N int }

func wireTestEnv(t *testing.T, fs ...*feature.Feature) *env {
	t.Helper()
	cfg := config.Default()
	reg, err := newRegistry(&cfg, fs)
	if err != nil {
		t.Fatal(err)
	}
	return &env{reg: reg}
}

// A feature message crosses by the feature's name and the type's wire name: decoded on a node whose registry
// has the feature at another index, it reaches that feature; a question names its asker; a type the feature
// does not declare, or a feature the receiving node does not run, does not cross.
func TestFeatureWire(t *testing.T) {
	carried := &feature.Feature{Name: "carried", Wire: []feature.WireType{feature.WireJSON("msg", func(m wireTestMsg) error {
		if m.Text == "" {
			return errors.New("empty")
		}
		return nil
	})}}
	other := &feature.Feature{Name: "other"}
	sender, receiver := wireTestEnv(t, carried, other), wireTestEnv(t, other, carried)
	replyTo := actor.NewPID("127.0.0.1:7001", "session/$7")
	w, ask, err := sender.wireFeature(&featureMsg{idx: 0, msg: &surveyAsk{q: wireTestMsg{Text: "hi"}, replyTo: replyTo, timeout: 3 * time.Second}}, "127.0.0.1:7001")
	if err != nil {
		t.Fatal(err)
	}
	if w.Feature != "carried" || w.Type != "msg" || ask == nil || ask.Node != "127.0.0.1:7001" || ask.Id != replyTo.Id || ask.TimeoutMs != 3000 {
		t.Fatalf("on the wire: %v, reply %v", w, ask)
	}
	idx, msg, err := receiver.featureFromWire(w)
	if err != nil || idx != 1 || msg != (wireTestMsg{Text: "hi"}) {
		t.Fatalf("received: feature %d, %#v, %v", idx, msg, err)
	}
	if _, ask, err := sender.wireFeature(&featureMsg{idx: 0, msg: wireTestMsg{Text: "told"}}, "x"); err != nil || ask != nil {
		t.Fatalf("a message without an answer: reply %v, %v", ask, err)
	}
	for name, m := range map[string]any{
		"an undeclared type":            &featureMsg{idx: 0, msg: wireTestOther{N: 1}},
		"a feature without a wire":      &featureMsg{idx: 1, msg: wireTestMsg{Text: "x"}},
		"not a feature message":         &toUser{},
		"an index beyond the registry ": &featureMsg{idx: 7, msg: wireTestMsg{Text: "x"}},
	} {
		if _, _, err := sender.wireFeature(m, "x"); err == nil {
			t.Errorf("%s crossed", name)
		}
	}
	for name, w := range map[string]*nodewire.FeatureMessage{
		"a feature not enabled here":  {Feature: "gone", Type: "msg", Data: []byte(`{"Text":"x"}`)},
		"an unknown type":             {Feature: "carried", Type: "nope", Data: []byte(`{}`)},
		"a payload its check refuses": {Feature: "carried", Type: "msg", Data: []byte(`{"Text":""}`)},
		"a malformed payload":         {Feature: "carried", Type: "msg", Data: []byte(`{"Text":`)},
		"nothing":                     nil,
	} {
		if _, m, err := receiver.featureFromWire(w); err == nil {
			t.Errorf("%s was taken: %#v", name, m)
		}
	}
	dup := &feature.Feature{Name: "dup", Wire: []feature.WireType{feature.WireJSON[wireTestMsg]("m", nil), feature.WireJSON[wireTestOther]("m", nil)}}
	cfg := config.Default()
	if _, err := newRegistry(&cfg, []*feature.Feature{dup}); err == nil {
		t.Error("a wire name declared twice was accepted")
	}
}

// The collector of a survey over the cluster is done when this node and every member still there have sent as
// many answers as each said it asked for, whatever order the counts and answers come in.
func TestSurveyComplete(t *testing.T) {
	for _, c := range []struct {
		name      string
		want, got map[string]int
		done      bool
	}{
		{"nothing yet", map[string]int{}, nil, false},
		{"a single node, all answered", map[string]int{"": 2}, map[string]int{"": 2}, true},
		{"a single node, one missing", map[string]int{"": 2}, map[string]int{"": 1}, false},
		{"a member has not said", map[string]int{"": 0, "b": -1}, nil, false},
		{"a member said, answers missing", map[string]int{"": 1, "b": 2}, map[string]int{"": 1, "b": 1}, false},
		{"all members answered", map[string]int{"": 1, "b": 2, "c": 0}, map[string]int{"": 1, "b": 2}, true},
		{"a member's count before this node's", map[string]int{"b": 1}, map[string]int{"b": 1}, false},
	} {
		col := &surveyCollector{want: c.want, got: c.got}
		if col.got == nil {
			col.got = map[string]int{}
		}
		if got := col.complete(); got != c.done {
			t.Errorf("%s: complete %v, want %v", c.name, got, c.done)
		}
	}
}

// A survey does not wait for a member that is gone: the collector watches each member's cluster actor, and one
// that does not exist (here: no remote at its address) ends its wait, with the local answers, well before the
// collector's own timeout.
func TestSurveyMemberGone(t *testing.T) {
	sys := actor.NewActorSystem()
	router := sys.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		if m, ok := ctx.Message().(*toAllUsers); ok {
			q := m.msg.(*featureMsg).msg.(*surveyAsk)
			ctx.Respond(&usersReached{n: 2, members: []string{"192.0.2.1:7001"}})
			ctx.Send(q.replyTo, &surveyAnswer{a: "one"})
			ctx.Send(q.replyTo, &surveyAnswer{})
		}
	}))
	done := make(chan *surveyDone, 1)
	sys.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		switch m := ctx.Message().(type) {
		case *actor.Started:
			ctx.Spawn(actor.PropsFromProducer(func() actor.Actor {
				return &surveyCollector{router: router, q: "how many?", timeout: time.Minute}
			}))
		case *surveyDone:
			done <- m
		}
	}))
	select {
	case d := <-done:
		if len(d.answers) != 1 || d.answers[0] != "one" {
			t.Fatalf("answers %v", d.answers)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the survey waits for a member that is gone")
	}
}

// The cluster actor's side, both ways, in one process (the node's address is its own, so what it sends "to the
// asking node" comes back to itself): a question from another node is asked here by a relay, whose count and
// answer go back encoded and reach the asker decoded; a question it cannot read is answered with no answer at
// once, so the asker does not wait for its timeout.
func TestClusterFeatureLoopback(t *testing.T) {
	carried := &feature.Feature{Name: "carried", Wire: []feature.WireType{feature.WireJSON[wireTestMsg]("msg", nil)}}
	e := wireTestEnv(t, &feature.Feature{Name: "first"}, carried)
	e.metrics, e.log, e.workers = newMetrics(nil), zerolog.Nop(), newWorkers(2)
	defer e.workers.close()
	sys := actor.NewActorSystem()
	e.router = sys.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		switch m := ctx.Message().(type) {
		case *toAllUsers:
			if !m.local {
				t.Error("a survey from another node was handed on again")
			}
			q := m.msg.(*featureMsg).msg.(*surveyAsk)
			ctx.Respond(&usersReached{n: 1})
			ctx.Send(q.replyTo, &surveyAnswer{a: wireTestMsg{Text: "answer to " + q.q.(wireTestMsg).Text}})
		case *toUser:
			q := m.msg.(*featureMsg).msg.(*surveyAsk)
			ctx.Send(q.replyTo, &surveyAnswer{a: wireTestMsg{Text: m.bare.String()}})
		}
	}))
	got := make(chan any, 8)
	probe := sys.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		switch m := ctx.Message().(type) {
		case *surveyAnswer, *surveyReached:
			got <- m
		}
	}))
	c, err := sys.Root.SpawnNamed(newClusterProps(e, sys.Address(), nil), clusterActorName)
	if err != nil {
		t.Fatal(err)
	}
	next := func() any {
		t.Helper()
		select {
		case m := <-got:
			return m
		case <-time.After(10 * time.Second):
			t.Fatal("nothing came back")
			return nil
		}
	}
	ask := &nodewire.Reply{Node: sys.Address(), Id: probe.Id, TimeoutMs: 5000}
	q := &nodewire.FeatureMessage{Feature: "carried", Type: "msg", Data: []byte(`{"Text":"how many?"}`)}
	sys.Root.Send(c, &nodewire.Survey{Msg: q, Ask: ask})
	reached, answer := next(), next()
	if _, first := reached.(*surveyAnswer); first {
		reached, answer = answer, reached
	}
	if r, ok := reached.(*surveyReached); !ok || r.n != 1 || r.node != sys.Address() {
		t.Fatalf("reached: %#v", reached)
	}
	if a, ok := answer.(*surveyAnswer); !ok || a.a != (wireTestMsg{Text: "answer to how many?"}) || a.node != sys.Address() {
		t.Fatalf("answer: %#v", answer)
	}
	sys.Root.Send(c, &nodewire.UserCall{Bare: "alice@example.com", Msg: q, Ask: ask})
	if a, ok := next().(*surveyAnswer); !ok || a.a != (wireTestMsg{Text: "alice@example.com"}) {
		t.Fatalf("the answer of one account: %#v", a)
	}
	bad := &nodewire.FeatureMessage{Feature: "carried", Type: "msg", Data: []byte(`{"Text":`)}
	sys.Root.Send(c, &nodewire.UserCall{Bare: "alice@example.com", Msg: bad, Ask: ask})
	if a, ok := next().(*surveyAnswer); !ok || a.a != nil {
		t.Fatalf("a question that cannot be read: %#v", a)
	}
	sys.Root.Send(c, &nodewire.Survey{Msg: bad, Ask: ask})
	if r, ok := next().(*surveyReached); !ok || r.n != 0 {
		t.Fatalf("a survey that cannot be read: %#v", r)
	}
}
