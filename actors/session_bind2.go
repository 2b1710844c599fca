package actors

import (
	"strings"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/xmppd/xmppd/feature"
)

// bind2Start applies the features a XEP-0386 Bind 2 request enabled for this session, before the session handles
// anything else (it runs in Started): the features' inline elements (carbons, CSI) through their Bind2 hooks,
// then the XEP-0198 <enable/>, so that every stanza the session sends its client is counted from the <enabled/>
// the client finds in <success/>. The answer goes to the conn, which writes <success/> once it also has the user
// actor's bindResult. Until the conn has written that <success/>, what the session has for its client waits
// (gated): a stanza written before <success/> would break the stream, and one the conn held and then lost with its
// socket would be lost for good.
func (s *session) bind2Start(ctx actor.Context) {
	in := s.inline
	s.inline = nil
	var b strings.Builder
	for _, n := range in.els {
		idx, ok := s.env.reg.bind2[n.Name]
		if !ok {
			continue
		}
		if h, ok := s.parts[idx].(feature.Bind2Enabler); ok {
			b.WriteString(h.Bind2(n))
		}
	}
	if in.sm != nil {
		b.WriteString(s.smEnable(ctx, *in.sm))
	}
	s.gated = true
	ctx.Send(s.conn, &bind2Done{bound: b.String()})
}

// ungate: the conn wrote <success/> (bind2Go), or ended before it; what waited goes out now, through out, so
// stream management counts it after the <enabled/> the client saw, and a conn that is gone hands it back.
func (s *session) ungate() {
	if !s.gated {
		return
	}
	s.gated = false
	waiting := s.gatedOut
	s.gatedOut = nil
	for _, st := range waiting {
		s.out(st)
	}
}
