package actors

import (
	"errors"
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/scheduler"

	"github.com/xmppd/xmppd/protocol/jid"
	"github.com/xmppd/xmppd/protocol/nodewire"
)

// Feature messages across cluster nodes (ARCHITECTURE.md "The cluster"). A feature part's message to another
// account's user actor (toUser: Session.ToUserOf, Session.Ask) whose account is placed on another node goes to
// that node's router, as a stanza does: router → cluster actor → (nodewire.UserCall) → the home's cluster actor →
// its router → the user actor, as a local one would get it. A survey (toAllUsers: Session.Survey) goes to every
// member (nodewire.Survey), whose router hands it to its own user actors only. The message crosses as the bytes
// of its feature's codec (feature.Wire), named by the feature's name and the type's wire name; a message the
// feature does not declare cannot cross and is dropped where it would (logged, counted as
// xmppd_cluster_stanzas_total{direction="dropped"}); a question dropped so is answered with no answer at once.
//
// Answers: a question's asker is a collector (host.go) on the asking node. On the answering node an answerRelay,
// a short-lived child of the cluster actor, asks in the collector's place and sends what it gets back, encoded
// the same way, to the asking node's cluster actor (nodewire.Answer, and for a survey nodewire.Reached: how many
// user actors it asked), which hands it to the collector. So user actors, services and collectors never see the
// wire, and a question forwarded on once more (hops) is answered along the same way back.

// Messages of the cluster actor from the router.
type (
	// forwardUser: a feature message for an address placed on home.
	forwardUser struct {
		home string
		m    *toUser
	}
	// forwardSurvey: a feature message for every user actor of every one of members.
	forwardSurvey struct {
		members []string
		msg     any
	}
)

// others are the members besides this node.
func (p *placement) others() []string {
	if p == nil {
		return nil
	}
	out := make([]string, 0, len(p.members))
	for _, m := range p.members {
		if m != p.self {
			out = append(out, m)
		}
	}
	return out
}

// featureWire handles the cluster actor's feature messages, both ways.
func (c *clusterActor) featureWire(ctx actor.Context, msg any) {
	switch m := msg.(type) {
	case *forwardUser:
		w, ask, err := c.env.wireFeature(m.m.msg, c.self)
		if err != nil {
			c.dropFeature(m.m.bare.String(), err)
			if q, ok := featureAsk(m.m.msg); ok { // no answer, now rather than at the asker's timeout
				ctx.Send(q.replyTo, &surveyAnswer{})
			}
			return
		}
		c.env.metrics.clusterFeature.WithLabelValues("out").Inc()
		ctx.Send(actor.NewPID(m.home, clusterActorName), &nodewire.UserCall{Bare: m.m.bare.String(), Msg: w, Ask: ask, Hops: uint32(m.m.hops) + 1})
	case *forwardSurvey:
		w, ask, err := c.env.wireFeature(m.msg, c.self)
		if err != nil {
			c.dropFeature("every user", err)
			if q, ok := featureAsk(m.msg); ok {
				for _, node := range m.members { // not asked: nothing to wait for
					ctx.Send(q.replyTo, &surveyReached{node: node})
				}
			}
			return
		}
		for _, node := range m.members {
			c.env.metrics.clusterFeature.WithLabelValues("out").Inc()
			ctx.Send(actor.NewPID(node, clusterActorName), &nodewire.Survey{Msg: w, Ask: ask})
		}
	case *nodewire.UserCall:
		bare, err := jid.Parse(m.Bare)
		if err != nil {
			err = fmt.Errorf("address: %w", err)
		}
		idx, fm, err2 := c.env.featureFromWire(m.Msg)
		if err = errors.Join(err, err2); err != nil {
			c.dropFeature(m.Bare, err)
			if m.Ask != nil { // answered with no answer: the asker need not wait for its timeout
				ctx.Send(actor.NewPID(m.Ask.Node, clusterActorName), &nodewire.Answer{To: m.Ask.Id, Node: c.self})
			}
			return
		}
		c.env.metrics.clusterFeature.WithLabelValues("in").Inc()
		call := &toUser{bare: bare, msg: &featureMsg{idx: idx, msg: fm}, hops: uint8(min(m.Hops, maxHops))}
		if m.Ask == nil {
			ctx.Send(c.env.router, call)
			return
		}
		c.relay(ctx, m.Ask, idx, fm, call)
	case *nodewire.Survey:
		idx, fm, err := c.env.featureFromWire(m.Msg)
		if err != nil {
			c.dropFeature("every user", err)
			if m.Ask != nil { // asked none
				ctx.Send(actor.NewPID(m.Ask.Node, clusterActorName), &nodewire.Reached{To: m.Ask.Id, Node: c.self})
			}
			return
		}
		c.env.metrics.clusterFeature.WithLabelValues("in").Inc()
		if m.Ask == nil {
			ctx.Send(c.env.router, &toAllUsers{msg: &featureMsg{idx: idx, msg: fm}, local: true})
			return
		}
		c.relay(ctx, m.Ask, idx, fm, nil)
	case *nodewire.Answer:
		var a any
		if m.Msg != nil {
			var err error
			if _, a, err = c.env.featureFromWire(m.Msg); err != nil {
				// Counted all the same (an answer came), so that the collector does not wait for it.
				c.env.log.Warn().Err(err).Str("node", m.Node).Msg("cluster: an answer from another node cannot be read")
			}
		}
		c.env.metrics.clusterFeature.WithLabelValues("answer_in").Inc()
		ctx.Send(actor.NewPID(c.self, m.To), &surveyAnswer{a: a, node: m.Node})
	case *nodewire.Reached:
		ctx.Send(actor.NewPID(c.self, m.To), &surveyReached{node: m.Node, n: int(m.Users)})
	}
}

// dropFeature: a feature message that cannot cross (its type is not in its feature's Wire, or another node sent
// what this one cannot read).
func (c *clusterActor) dropFeature(to string, err error) {
	c.env.log.Warn().Err(err).Str("jid", to).Msg("cluster: a feature message cannot cross nodes; not delivered")
	c.env.metrics.clusterRouted.WithLabelValues("dropped").Inc()
}

// relay spawns the stand-in of a collector on another node: call asks one user actor (toUser), nil every user
// actor here.
func (c *clusterActor) relay(ctx actor.Context, reply *nodewire.Reply, idx int, q any, call *toUser) {
	timeout := time.Duration(reply.TimeoutMs) * time.Millisecond
	if timeout <= 0 || timeout > maxRelayWait {
		timeout = maxRelayWait
	}
	rl := &answerRelay{env: c.env, self: c.self, reply: reply, idx: idx, q: q, call: call, timeout: timeout}
	ctx.Spawn(actor.PropsFromProducer(func() actor.Actor { return rl }))
}

// maxRelayWait bounds how long a relay waits for its answers, whatever the asker said.
const maxRelayWait = time.Minute

// featureAsk is the question a feature message carries, if it is one.
func featureAsk(msg any) (*surveyAsk, bool) {
	if fm, ok := msg.(*featureMsg); ok {
		q, ok := fm.msg.(*surveyAsk)
		return q, ok
	}
	return nil, false
}

// wireFeature encodes a feature message (a *featureMsg, maybe a question) with its feature's codec; a question's
// answers go to the actor that asked, through self's cluster actor.
func (e *env) wireFeature(msg any, self string) (*nodewire.FeatureMessage, *nodewire.Reply, error) {
	fm, ok := msg.(*featureMsg)
	if !ok {
		return nil, nil, fmt.Errorf("%T is not a feature's message", msg)
	}
	var reply *nodewire.Reply
	inner := fm.msg
	if q, ok := inner.(*surveyAsk); ok {
		inner = q.q
		reply = &nodewire.Reply{Node: self, Id: q.replyTo.Id, TimeoutMs: q.timeout.Milliseconds()}
	}
	w, err := e.encodeFeature(fm.idx, inner)
	return w, reply, err
}

// encodeFeature is msg of the feature at idx on the wire.
func (e *env) encodeFeature(idx int, msg any) (*nodewire.FeatureMessage, error) {
	if idx < 0 || idx >= len(e.reg.list) {
		return nil, errors.New("no such feature")
	}
	f := e.reg.list[idx]
	name, data, ok := f.EncodeWire(msg)
	if !ok {
		return nil, fmt.Errorf("feature %s: %T may not cross nodes (not in its Wire)", f.Name, msg)
	}
	return &nodewire.FeatureMessage{Feature: f.Name, Type: name, Data: data}, nil
}

// featureFromWire is a feature message from another node: the index of its feature here and the message.
func (e *env) featureFromWire(w *nodewire.FeatureMessage) (int, any, error) {
	if w == nil {
		return 0, nil, errors.New("no feature message")
	}
	idx, ok := e.reg.byName[w.Feature]
	if !ok {
		return 0, nil, fmt.Errorf("feature %q is not enabled here", w.Feature)
	}
	msg, err := e.reg.list[idx].DecodeWire(w.Type, w.Data)
	if err != nil {
		return 0, nil, err
	}
	return idx, msg, nil
}

// answerRelay asks, on the node that answers, in the place of a collector on another node: one user actor
// (call) or, for a survey, every user actor here; it sends back how many it asked (Reached, a survey) and each
// answer (Answer), encoded with the feature's codec, to the asking node's cluster actor. It stops when it has
// sent as many answers as it asked for, or when the asker's time is up.
type answerRelay struct {
	env     *env
	self    string
	reply   *nodewire.Reply
	idx     int
	q       any
	call    *toUser // nil: a survey
	timeout time.Duration
	want    int // -1 until the router said how many it asked
	got     int
}

func (a *answerRelay) Receive(ctx actor.Context) {
	asker := actor.NewPID(a.reply.Node, clusterActorName)
	switch m := ctx.Message().(type) {
	case *actor.Started:
		scheduler.NewTimerScheduler(ctx).SendOnce(a.timeout, ctx.Self(), surveyTimeout{})
		ask := &featureMsg{idx: a.idx, msg: &surveyAsk{q: a.q, replyTo: ctx.Self(), timeout: a.timeout}}
		if a.call == nil {
			a.want = -1
			ctx.Request(a.env.router, &toAllUsers{msg: ask, local: true})
			return
		}
		a.want = 1
		call := *a.call
		call.msg = ask
		ctx.Send(a.env.router, &call)
		return
	case *usersReached:
		a.want = m.n
		ctx.Send(asker, &nodewire.Reached{To: a.reply.Id, Node: a.self, Users: int64(m.n)})
	case *surveyAnswer:
		a.got++
		w := &nodewire.Answer{To: a.reply.Id, Node: a.self}
		if m.a != nil {
			var err error
			if w.Msg, err = a.env.encodeFeature(a.idx, m.a); err != nil {
				// Sent as no answer: the asker counts it and does not wait.
				a.env.log.Warn().Err(err).Msg("cluster: an answer cannot cross nodes")
			}
		}
		a.env.metrics.clusterFeature.WithLabelValues("answer_out").Inc()
		ctx.Send(asker, w)
	case surveyTimeout:
		ctx.Stop(ctx.Self())
		return
	}
	if a.want >= 0 && a.got >= a.want {
		ctx.Stop(ctx.Self())
	}
}
