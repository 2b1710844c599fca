package actors

import "github.com/rs/zerolog"

// actorLog is a per-actor logger that holds no context buffer of its own: the server's logger plus a few fields
// (the conn id, then key/value strings such as the remote address or the JID) added to each event when it is
// logged. zerolog's With() gives every child logger a 500-byte context buffer (measured: ~0.5 KiB per connection
// held for its lifetime, most of it never used at the default level); an idle connection logs nothing, so its
// fields cost only what they are. Events of a disabled level are nil and every method on them is a no-op, as with
// zerolog.Logger.
type actorLog struct {
	base *zerolog.Logger
	conn uint64   // the "conn" field; 0: none
	kv   []string // key, value, key, value…
}

func newActorLog(base *zerolog.Logger, conn uint64, kv ...string) actorLog {
	return actorLog{base: base, conn: conn, kv: kv}
}

// with returns a logger with one more string field (or the same key replaced).
func (l actorLog) with(k, v string) actorLog {
	kv := make([]string, 0, len(l.kv)+2)
	for i := 0; i+1 < len(l.kv); i += 2 {
		if l.kv[i] != k {
			kv = append(kv, l.kv[i], l.kv[i+1])
		}
	}
	l.kv = append(kv, k, v)
	return l
}

func (l actorLog) fields(e *zerolog.Event) *zerolog.Event {
	if e == nil {
		return nil
	}
	if l.conn != 0 {
		e = e.Uint64("conn", l.conn)
	}
	for i := 0; i+1 < len(l.kv); i += 2 {
		e = e.Str(l.kv[i], l.kv[i+1])
	}
	return e
}

func (l actorLog) logger() *zerolog.Logger {
	if l.base == nil {
		nop := zerolog.Nop()
		return &nop
	}
	return l.base
}

func (l actorLog) Debug() *zerolog.Event { return l.fields(l.logger().Debug()) }
func (l actorLog) Info() *zerolog.Event  { return l.fields(l.logger().Info()) }
func (l actorLog) Warn() *zerolog.Event  { return l.fields(l.logger().Warn()) }
func (l actorLog) Error() *zerolog.Event { return l.fields(l.logger().Error()) }

// fieldHook adds one string field to every event of a zerolog.Logger when the event is logged. A logger made
// with Hook costs a one-element slice and this value; one made with With() holds a 500-byte context buffer for
// its lifetime (two per connection: its user and session actors, ~1 KiB of an idle connection's heap, issue 17)
// and allocates it at every login. The field comes after the event's own fields instead of before them.
type fieldHook struct{ key, value string }

func (h fieldHook) Run(e *zerolog.Event, _ zerolog.Level, _ string) { e.Str(h.key, h.value) }

// withField is base with the field key=value on every event, through a fieldHook.
func withField(base zerolog.Logger, key, value string) zerolog.Logger {
	return base.Hook(fieldHook{key: key, value: value})
}
