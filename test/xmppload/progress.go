package xmppload

import (
	"fmt"
	"time"
)

// startProgress prints a status line every ProgressEvery: rewritten in
// place on a terminal, one line each time otherwise (logs, CI).
func (r *runner) startProgress() (stop func()) {
	w := r.cfg.Progress
	if w == nil {
		return func() {}
	}
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(r.cfg.ProgressEvery)
		defer t.Stop()
		last := time.Now()
		lastLogins, lastRecv := r.stats.logins.Load(), r.stats.received.Load()+r.stats.presRecv.Load()
		for {
			select {
			case <-done:
				if r.cfg.ProgressTTY {
					fmt.Fprint(w, "\r\033[K")
				}
				return
			case now := <-t.C:
				dt := now.Sub(last).Seconds()
				logins, recv := r.stats.logins.Load(), r.stats.received.Load()+r.stats.presRecv.Load()
				line := fmt.Sprintf("[%6.1fs %-8s] connected %d/%d  logins %d (%.0f/s)  recv %d (%.0f/s)  errors %d",
					time.Since(r.start).Seconds(), r.phase.Load(), r.stats.connected.Load(), r.cfg.Clients,
					logins, float64(logins-lastLogins)/dt, recv, float64(recv-lastRecv)/dt, r.errorCount())
				last, lastLogins, lastRecv = now, logins, recv
				if r.cfg.ProgressTTY {
					fmt.Fprint(w, "\r\033[K"+line)
				} else {
					fmt.Fprintln(w, line)
				}
			}
		}
	}()
	return func() { close(done); <-stopped }
}
