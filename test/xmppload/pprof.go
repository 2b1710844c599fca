package xmppload

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"strings"
	"time"
)

// serverProfile fetches a Go server's CPU profile (net/http/pprof's
// /debug/pprof/profile?seconds=N) covering the measured phase, so that the
// profile shows where the server spends the CPU the report charges to each
// message, and nothing of the logins before it.
type serverProfile struct {
	done chan struct{}
	err  error
}

// startServerProfile asks url for a profile of d (rounded up to whole
// seconds, the endpoint's unit) and writes it to path.
func startServerProfile(url, path string, d time.Duration) *serverProfile {
	p := &serverProfile{done: make(chan struct{})}
	secs := int(math.Ceil(d.Seconds()))
	if secs < 1 {
		secs = 1
	}
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	go func() {
		defer close(p.done)
		cl := http.Client{Timeout: time.Duration(secs)*time.Second + 30*time.Second}
		resp, err := cl.Get(fmt.Sprintf("%s%sseconds=%d", url, sep, secs))
		if err != nil {
			p.err = err
			return
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			p.err = fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(b)))
			return
		}
		f, err := os.Create(path)
		if err != nil {
			p.err = err
			return
		}
		if _, err = io.Copy(f, resp.Body); err != nil {
			f.Close()
			p.err = err
			return
		}
		p.err = f.Close()
	}()
	return p
}

// wait returns once the profile is written (or failed); nil p: no profile asked for.
func (p *serverProfile) wait() error {
	if p == nil {
		return nil
	}
	<-p.done
	return p.err
}
