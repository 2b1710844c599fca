package actors

import (
	"errors"
	"net"
	"slices"
	"strconv"

	"github.com/asynkron/protoactor-go/actor"
)

// Messages of the listener actor.
type (
	// accepted comes from an accept goroutine.
	accepted struct {
		conn      net.Conn
		directTLS bool
	}
	// acceptEnded: a listening socket failed or was closed.
	acceptEnded struct {
		addr string
		err  error
	}
	// shutdownStreams asks the listener to stop accepting and to end every stream with <system-shutdown/>; it
	// answers shutdownDone once every conn actor has stopped.
	shutdownStreams struct{}
	shutdownDone    struct{}
)

// listener is the c2s supervisor: it owns the listening sockets (through one accept goroutine each) and is the
// parent of one conn actor per accepted socket.
type listener struct {
	env       *env
	sockets   []net.Listener
	directTLS []bool
	nextID    uint64
	conns     int
	shutdown  bool
	waiter    *actor.PID // who asked for shutdown
}

func newListenerProps(e *env, socks []net.Listener, directTLS []bool) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor {
		return &listener{env: e, sockets: socks, directTLS: directTLS}
	}, actor.WithSupervisor(stopStrategy), withInspection(e, kindListener))
}

func (l *listener) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		root := ctx.ActorSystem().Root
		self := ctx.Self()
		for i, s := range l.sockets {
			go acceptLoop(root, self, s, l.directTLS[i])
		}
	case *accepted:
		if l.shutdown {
			_ = m.conn.Close()
			return
		}
		l.nextID++
		l.conns++
		l.env.sockets.Add(1)
		ctx.SpawnNamed(newConnProps(l.env, l.nextID, m.conn, m.directTLS), strconv.FormatUint(l.nextID, 10))
	case *acceptEnded:
		if !l.shutdown {
			l.env.log.Error().Err(m.err).Str("listen", m.addr).Msg("listener failed")
		}
	case *actor.Terminated:
		l.conns--
		l.maybeDone(ctx)
	case *shutdownStreams:
		l.shutdown = true
		l.waiter = ctx.Sender()
		for _, s := range l.sockets {
			_ = s.Close()
		}
		for _, kid := range slices.Clone(ctx.Children()) {
			ctx.Send(kid, &closeStream{condition: "system-shutdown"})
		}
		l.maybeDone(ctx)
	}
}

func (l *listener) maybeDone(ctx actor.Context) {
	if l.shutdown && l.conns == 0 && l.waiter != nil {
		ctx.Send(l.waiter, &shutdownDone{})
		l.waiter = nil
	}
}

func acceptLoop(root *actor.RootContext, self *actor.PID, s net.Listener, directTLS bool) {
	for {
		c, err := s.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			root.Send(self, &acceptEnded{addr: s.Addr().String(), err: err})
			return
		}
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetKeepAlive(true)
		}
		root.Send(self, &accepted{conn: c, directTLS: directTLS})
	}
}
