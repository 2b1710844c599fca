package actors

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// inspect asks an actor to describe itself (the debug endpoint's actor tree is gathered by asking, never by
// reading another actor's memory).
type inspect struct{}

// ActorInfo is one node of the live actor tree.
type ActorInfo struct {
	ID       string            `json:"id"`
	Kind     string            `json:"kind"`
	JID      string            `json:"jid,omitempty"`
	Attrs    map[string]string `json:"attrs,omitempty"`
	Children []*ActorInfo      `json:"children,omitempty"`
}

func (c *conn) describe(ctx actor.Context) *ActorInfo {
	states := [...]string{"header", "negotiating", "restart", "authenticated", "binding", "bound", "closed"}
	a := &ActorInfo{ID: ctx.Self().Id, Kind: "conn", Attrs: map[string]string{
		"remote": c.netConn.RemoteAddr().String(),
		"state":  states[c.state],
		"tls":    boolString(c.secure),
	}}
	if !c.user.IsZero() {
		a.JID = c.user.String()
		a.Attrs["mechanism"] = c.authMech
	}
	if !c.full.IsZero() {
		a.JID = c.full.String()
	}
	return a
}

func (s *session) describe(ctx actor.Context) *ActorInfo {
	return &ActorInfo{ID: ctx.Self().Id, Kind: "session", JID: s.full.String(), Attrs: map[string]string{
		"available": boolString(s.available),
		"conn":      s.conn.Id,
	}}
}

func (l *listener) answerInspect(ctx actor.Context, _ *inspect) {
	ctx.Respond(&ActorInfo{ID: ctx.Self().Id, Kind: "listener", Attrs: map[string]string{"connections": itoa(l.conns)}})
}

func (r *router) answerInspect(ctx actor.Context, _ *inspect) {
	ctx.Respond(&ActorInfo{ID: ctx.Self().Id, Kind: "router", Attrs: map[string]string{"users": itoa(len(r.users))}})
}

func (r *rosterActor) answerInspect(ctx actor.Context, _ *inspect) {
	ctx.Respond(&ActorInfo{ID: ctx.Self().Id, Kind: "roster", JID: r.bare.String(), Attrs: map[string]string{
		"items": itoa(len(r.items)), "resources": itoa(len(r.resources)),
		"idle_since": time.Since(r.lastSeen).Round(time.Second).String(),
	}})
}
