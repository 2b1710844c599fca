package actors

import (
	"bytes"
	"encoding/json"
	"runtime"
	"testing"

	"github.com/rs/zerolog"
)

// withField puts its field on every logged event, beside the event's own, and costs less than With(): no
// 500-byte context buffer per logger.
func TestWithField(t *testing.T) {
	var buf bytes.Buffer
	base := zerolog.New(&buf).Level(zerolog.InfoLevel)
	l := withField(base, "jid", "alice@example.com/phone")
	l.Info().Str("event", "bound").Msg("hello")
	l.Debug().Msg("not logged") // below the level: the hook does not run
	var got map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("%v: %q", err, buf.String())
	}
	if got["jid"] != "alice@example.com/phone" || got["event"] != "bound" || got["message"] != "hello" {
		t.Fatalf("logged %v", got)
	}
	if n := bytes.Count(buf.Bytes(), []byte("\n")); n != 1 {
		t.Fatalf("%d lines, want 1: %q", n, buf.String())
	}
	// Bytes held per logger, kept alive as an actor keeps its own.
	held := func(mk func() zerolog.Logger) float64 {
		keep := make([]zerolog.Logger, 1000)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for i := range keep {
			keep[i] = mk()
		}
		runtime.ReadMemStats(&after)
		runtime.KeepAlive(keep)
		return float64(after.TotalAlloc-before.TotalAlloc) / float64(len(keep))
	}
	hooked := held(func() zerolog.Logger { return withField(base, "jid", "alice@example.com/phone") })
	ctx := held(func() zerolog.Logger { return base.With().Str("jid", "alice@example.com/phone").Logger() })
	t.Logf("bytes per logger: withField %.0f, With() %.0f", hooked, ctx)
	if hooked >= ctx/4 {
		t.Errorf("withField allocates %.0f bytes per logger, With() %.0f", hooked, ctx)
	}

}
