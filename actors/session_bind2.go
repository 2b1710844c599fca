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
// actor's bindResult.
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
	ctx.Send(s.conn, &bind2Done{bound: b.String()})
}
