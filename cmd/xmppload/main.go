// Command xmppload drives many simulated XMPP clients against any server
// (xmppd, Prosody, ejabberd…) and reports login rate, message delivery
// (loss, duplicates, order) and latency percentiles. The engine lives in
// test/xmppload; this file only maps flags onto its Config.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/xmppd/xmppd/test/xmppload"
)

func main() {
	os.Exit(run())
}

func run() int {
	var (
		cfg       xmppload.Config
		ramp      string
		sourceIPs string
		serverPID string
		jsonPath  string
		quiet     bool
	)
	fs := flag.NewFlagSet("xmppload", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), `Usage: xmppload [flags]

Simulates -clients XMPP users against a server and reports logins, message
delivery and latency. Accounts are <user-prefix><i>@<domain> for
i = -first-index … -first-index+clients-1, all with password -password (or
<password><i> with -password-suffix-index). With -register they are first
created by XEP-0077 in-band registration (existing ones are reused).

Profiles:
  idle    log in, send presence, stay connected for -duration (memory per connection)
  chat    clients 1&2, 3&4 … send each other chat messages: -rate msgs/s per client,
          or with -rate 0 a closed loop keeping -window messages in flight (saturation)
  roster  rosters of -roster-size mutual contacts (set up on first use), then presence
          updates at -rate per client (default 0.2/s) fanned out to online contacts;
          -roster-online 0.5 logs in only every second account for the measured phase;
          deliveries to contacts are counted against the online contacts of each sender
  churn   clients log in, stay about -hold, log out and in again until -duration
  muc     clients spread over -rooms XEP-0045 rooms at -muc-service send groupchat messages at
          -rate per client (default 1/s); every copy (to each occupant, the sender's reflection
          included) is counted, so messages, latency and server CPU µs/msg are per delivered copy
  reconnect  XEP-0198 sessions (-sm implied) whose TCP connections are reset every ~-hold;
          each client resumes at once on a new connection (TLS, SASL, <resume/>);
          with -rate > 0 the pairs chat meanwhile as in chat

With -sm every client enables XEP-0198 stream management after bind, counts
what it receives, answers the server's <r/> and asks for an <a/> every
-ack-every stanzas it sends (ack latency, acks checked against what was sent).

Exit status: 0 ok, 1 messages lost, a resumption failed or no login succeeded,
2 usage or fatal error.

Flags:
`)
		fs.PrintDefaults()
	}
	fs.StringVar(&cfg.Addr, "addr", "127.0.0.1:5222", "server c2s address host:port; several, comma-separated, spread the clients over them (client i on the (i mod n)th: the nodes of a cluster)")
	fs.StringVar(&cfg.Domain, "domain", "localhost", "XMPP domain")
	fs.IntVar(&cfg.Clients, "clients", 10, "number of simulated clients")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "length of the measured phase (after all logins)")
	fs.StringVar(&cfg.Profile, "profile", "chat", "workload: idle|chat|roster|churn|muc|reconnect")
	fs.IntVar(&cfg.Rooms, "rooms", 1, "muc: rooms the clients are spread over (client i in room i mod rooms)")
	fs.StringVar(&cfg.MUCService, "muc-service", "", "muc: the MUC service's domain (default conference.<domain>)")
	fs.BoolVar(&cfg.SM, "sm", false, "XEP-0198 stream management: enable (with resume) after bind, count and acknowledge stanzas")
	fs.BoolVar(&cfg.TLSResume, "tls-resume", false, "a TLS session cache per client: reconnections resume the TLS session (RFC 8446 tickets) instead of a full handshake")
	fs.IntVar(&cfg.AckEvery, "ack-every", 10, "with -sm: send <r/> after this many stanzas sent (-1: never)")
	fs.BoolVar(&cfg.Register, "register", false, "create the accounts by XEP-0077 in-band registration first")
	fs.StringVar(&cfg.UserPrefix, "user-prefix", "u", "account name prefix (accounts <prefix>1…<prefix>N)")
	fs.IntVar(&cfg.FirstIndex, "first-index", 1, "number of the first account")
	fs.StringVar(&cfg.Password, "password", "pw", "password of every account")
	fs.BoolVar(&cfg.PasswordSuffixIndex, "password-suffix-index", false, "password of account i is <password><i> (e.g. pass1, pass2…)")
	fs.StringVar(&cfg.TLS, "tls", "starttls", "transport security: starttls|direct|none (websocket: wss, bosh: https, unless none)")
	fs.StringVar(&cfg.Transport, "transport", "tcp", "tcp, websocket (RFC 7395) or bosh (XEP-0124/0206); for both, -addr is the HTTP listener, e.g. 127.0.0.1:5281")
	fs.StringVar(&cfg.WebSocketPath, "websocket-path", "/xmpp-websocket", "websocket: the endpoint's path")
	fs.StringVar(&cfg.BOSHPath, "bosh-path", "/http-bind", "bosh: the endpoint's path")
	fs.DurationVar(&cfg.BOSHGap, "bosh-gap", 0, "bosh: send a request while another is outstanding only once that one is this old (0: at once; ejabberd 23.01 needs it, see docs/benchmarks.md)")
	fs.StringVar(&cfg.Mech, "mech", "auto", "SASL mechanism: auto|SCRAM-SHA-256|SCRAM-SHA-1|PLAIN")
	fs.StringVar(&cfg.CAFile, "cafile", "", "PEM file of trusted roots; empty: do not verify the server certificate")
	fs.StringVar(&cfg.Resource, "resource", "xl", "resource requested at bind")
	fs.Float64Var(&cfg.Rate, "rate", 0, "chat: messages/s per client (0 = closed loop, -window in flight); roster: presence updates/s per client; muc: groupchat messages/s per occupant (default 1)")
	fs.BoolVar(&cfg.Stagger, "stagger", false, "chat/roster at a -rate: spread the senders evenly over each 1/rate period instead of all sending on the same tick (as independent clients would)")
	fs.IntVar(&cfg.Window, "window", 10, "chat: max messages in flight per client")
	fs.IntVar(&cfg.BodySize, "body-size", 0, "chat: pad message bodies to this many extra bytes")
	fs.IntVar(&cfg.Burst, "burst", 0, "idle: after the idle phase each client sends this many messages (padded by -body-size) to its pair, then the server is sampled again after -settle")
	fs.DurationVar(&cfg.BurstSettle, "burst-settle", 0, "idle with -burst: pause after the burst arrived before the server is sampled (default: -settle)")
	fs.StringVar(&cfg.ServerMetrics, "server-metrics", "", "a Go server's Prometheus /metrics URL: heap, stack and goroutines sampled beside RSS")
	fs.StringVar(&cfg.ServerPprof, "server-pprof", "", "a Go server's CPU profile URL (e.g. http://127.0.0.1:17280/debug/pprof/profile): profile the measured phase (churn: the whole run) into -server-pprof-out")
	fs.StringVar(&cfg.ServerPprofOut, "server-pprof-out", "", "file for the -server-pprof profile")
	fs.IntVar(&cfg.RosterSize, "roster-size", 10, "roster: contacts per user (rounded down to even)")
	fs.Float64Var(&cfg.RosterOnline, "roster-online", 1, "roster: share of the -clients accounts logged in for the measured phase, spread evenly (0.5: every second account, so half of each roster is online); the rosters span all accounts, and a setup logs in all of them")
	fs.DurationVar(&cfg.Hold, "hold", time.Second, "churn: mean session length; reconnect: mean connection length (uniform ±50%)")
	fs.StringVar(&ramp, "ramp", "0", "connection attempts per second, e.g. 500/s (0 = as fast as -login-concurrency allows)")
	fs.IntVar(&cfg.LoginConcurrency, "login-concurrency", 50, "logins in progress at once (keep below the server's accept backlog)")
	fs.StringVar(&sourceIPs, "source-ips", "", "local addresses to spread connections over, e.g. 127.0.0.1-127.0.0.50 (beyond ~28k connections per port)")
	fs.DurationVar(&cfg.Settle, "settle", 2*time.Second, "pause between the login phase and the measured phase")
	fs.DurationVar(&cfg.Drain, "drain", 5*time.Second, "how long to wait for in-flight messages after the measured phase")
	fs.DurationVar(&cfg.LoginTimeout, "login-timeout", 30*time.Second, "deadline for one login")
	fs.StringVar(&serverPID, "server-pid", "", "comma-separated server PIDs to sample RSS and CPU from /proc")
	fs.StringVar(&jsonPath, "json", "", "write the report as JSON to this file (- for stdout)")
	fs.BoolVar(&quiet, "q", false, "no progress line")
	if err := fs.Parse(os.Args[1:]); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "xmppload:", err)
		return 2
	}
	var err error
	if cfg.Ramp, err = xmppload.ParseRate(ramp); err != nil {
		return fail(err)
	}
	if sourceIPs != "" {
		if cfg.SourceIPs, err = xmppload.ParseSourceIPs(sourceIPs); err != nil {
			return fail(err)
		}
	}
	for _, s := range strings.Split(serverPID, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		pid, err := strconv.Atoi(s)
		if err != nil {
			return fail(fmt.Errorf("bad -server-pid %q", s))
		}
		cfg.ServerPIDs = append(cfg.ServerPIDs, pid)
	}
	if !quiet {
		cfg.Progress = os.Stderr
		if fi, err := os.Stderr.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			cfg.ProgressTTY = true
		}
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	rep, err := xmppload.Run(ctx, cfg)
	if err != nil {
		return fail(err)
	}
	rep.WriteText(os.Stdout)
	if jsonPath != "" {
		if err := rep.WriteJSON(jsonPath); err != nil {
			return fail(err)
		}
	}
	if failed, why := rep.Failed(); failed {
		fmt.Fprintln(os.Stderr, "xmppload: FAIL:", why)
		return 1
	}
	return 0
}
