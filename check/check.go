// Package check is `xmppd check`: what an operator should fix before (or while) running xmppd, with the fix
// spelled out, in the spirit of `prosodyctl check`. It looks at the configuration, the certificate (does it cover
// every served domain and every service domain, is it expired), DNS (the SRV records clients and servers look
// up, and the domain's address records) and the ports (does each configured listener answer).
package check

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/xmppd/xmppd/actors"
	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/features"
)

// Level says how bad a finding is.
type Level string

const (
	OK    Level = "ok"
	Warn  Level = "warn"
	Error Level = "error"
)

// Finding is one result: what was checked, how it went, and what to do about it ("" when nothing).
type Finding struct {
	Level Level
	What  string
	Fix   string
}

// Resolver is the part of net.Resolver the DNS checks use.
type Resolver interface {
	LookupSRV(ctx context.Context, service, proto, name string) (string, []*net.SRV, error)
	LookupHost(ctx context.Context, host string) ([]string, error)
}

// Options are what the checks reach outside the configuration with.
type Options struct {
	Resolver Resolver
	// Dial connects to a listener to see whether it answers (net.Dialer.DialContext).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	Now  time.Time
}

// Run runs every check on cfg.
func Run(ctx context.Context, cfg *config.Config, o Options) []Finding {
	var out []Finding
	out = append(out, certificate(cfg, o.Now)...)
	out = append(out, dns(ctx, cfg, o.Resolver)...)
	out = append(out, ports(ctx, cfg, o.Dial)...)
	return out
}

// ServiceDomains are the domains of the enabled services (conference, pubsub, upload, proxy…): the certificate
// must cover them too, since clients connect to them over TLS or verify them in s2s.
func ServiceDomains(cfg *config.Config) []string {
	var out []string
	for _, f := range features.All() {
		if f.Service == nil || slices.Contains(cfg.Features.Disable, f.Name) || (f.Enabled != nil && !f.Enabled(cfg)) {
			continue
		}
		if h := f.Service.Host(cfg); h != "" {
			out = append(out, h)
		}
	}
	return out
}

func certificate(cfg *config.Config, now time.Time) []Finding {
	file := cfg.TLS.CertFile
	selfSigned := file == ""
	if selfSigned {
		file, _ = actors.SelfSignedPaths(cfg)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		if selfSigned && errors.Is(err, os.ErrNotExist) {
			return []Finding{{Warn, "no certificate configured; xmppd generates a self-signed one at first start (" + file + ")",
				"set [tls] cert_file and key_file to a certificate from a CA (e.g. Let's Encrypt) covering " + strings.Join(append(slices.Clone(cfg.Domains), ServiceDomains(cfg)...), ", ")}}
		}
		return []Finding{{Error, "certificate " + file + ": " + err.Error(), "fix [tls] cert_file"}}
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return []Finding{{Error, "certificate " + file + ": no PEM certificate", "fix [tls] cert_file"}}
	}
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return []Finding{{Error, "certificate " + file + ": " + err.Error(), "fix [tls] cert_file"}}
	}
	var out []Finding
	switch left := cert.NotAfter.Sub(now); {
	case left <= 0:
		out = append(out, Finding{Error, fmt.Sprintf("certificate %s expired on %s", file, cert.NotAfter.Format(time.DateOnly)), "renew it, then send xmppd SIGHUP"})
	case left < 14*24*time.Hour:
		out = append(out, Finding{Warn, fmt.Sprintf("certificate %s expires on %s", file, cert.NotAfter.Format(time.DateOnly)), "renew it, then send xmppd SIGHUP"})
	default:
		out = append(out, Finding{OK, fmt.Sprintf("certificate %s valid until %s", file, cert.NotAfter.Format(time.DateOnly)), ""})
	}
	if selfSigned || (bytes.Equal(cert.RawIssuer, cert.RawSubject) && cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature) == nil) {
		out = append(out, Finding{Warn, "the certificate is self-signed: clients must trust it explicitly and other servers cannot verify it (dialback only)",
			"use a certificate from a CA ([tls] cert_file, key_file)"})
	}
	for _, d := range cfg.Domains {
		out = append(out, covers(cert, d, Error))
	}
	for _, d := range ServiceDomains(cfg) {
		out = append(out, covers(cert, d, Warn))
	}
	return out
}

func covers(cert *x509.Certificate, domain string, missing Level) Finding {
	if err := cert.VerifyHostname(domain); err != nil {
		return Finding{missing, "the certificate does not cover " + domain, "add " + domain + " (or *." + parent(domain) + ") to the certificate's names"}
	}
	return Finding{OK, "the certificate covers " + domain, ""}
}

func parent(d string) string {
	if _, p, ok := strings.Cut(d, "."); ok {
		return p
	}
	return d
}

// local: a domain no DNS knows (localhost, .test, .example, .invalid, .local, RFC 6761/6762).
func local(d string) bool {
	if d == "localhost" || net.ParseIP(d) != nil {
		return true
	}
	for _, s := range []string{".localhost", ".test", ".example", ".invalid", ".local"} {
		if strings.HasSuffix(d, s) {
			return true
		}
	}
	return false
}

func dns(ctx context.Context, cfg *config.Config, r Resolver) []Finding {
	var out []Finding
	c2sPort, s2sPort := port(cfg.C2S.Listen, "5222"), port(cfg.S2S.Listen, "5269")
	for _, d := range cfg.Domains {
		if local(d) {
			out = append(out, Finding{OK, d + " is a local name: no DNS records needed", ""})
			continue
		}
		if _, err := r.LookupHost(ctx, d); err != nil {
			out = append(out, Finding{Warn, d + " has no A/AAAA record (" + err.Error() + ")", "only needed if clients or servers connect to " + d + " itself; SRV records below can point elsewhere"})
		}
		out = append(out, srv(ctx, r, "xmpp-client", d, c2sPort, cfg.C2S.Listen != "", Error)...)
		out = append(out, srv(ctx, r, "xmpps-client", d, port(cfg.C2S.DirectTLSListen, "5223"), cfg.C2S.DirectTLSListen != "", Warn)...)
		out = append(out, srv(ctx, r, "xmpp-server", d, s2sPort, cfg.S2S.Listen != "", Error)...)
	}
	for _, d := range ServiceDomains(cfg) {
		if local(d) || cfg.S2S.Listen == "" {
			continue
		}
		if _, err := r.LookupHost(ctx, d); err != nil {
			if _, srvs, err2 := r.LookupSRV(ctx, "xmpp-server", "tcp", d); err2 != nil || len(srvs) == 0 {
				out = append(out, Finding{Warn, d + " has neither an address nor an _xmpp-server._tcp record: remote users cannot reach it",
					fmt.Sprintf("_xmpp-server._tcp.%s. SRV 0 5 %s <this host>.", d, s2sPort)})
			}
		}
	}
	return out
}

// srv checks one SRV record set; want: the listener is on, so the record should exist.
func srv(ctx context.Context, r Resolver, service, domain, port string, want bool, missing Level) []Finding {
	name := "_" + service + "._tcp." + domain
	_, recs, err := r.LookupSRV(ctx, service, "tcp", domain)
	switch {
	case !want:
		return nil
	case err != nil || len(recs) == 0:
		return []Finding{{missing, "no " + name + " SRV record", fmt.Sprintf("%s. SRV 0 5 %s <this host>.", name, port)}}
	}
	var to []string
	for _, s := range recs {
		to = append(to, fmt.Sprintf("%s:%d", strings.TrimSuffix(s.Target, "."), s.Port))
	}
	return []Finding{{OK, name + " → " + strings.Join(to, ", "), ""}}
}

func port(listen, dflt string) string {
	if _, p, err := net.SplitHostPort(listen); err == nil && p != "" {
		return p
	}
	return dflt
}

// ports dials every configured listener on this machine.
func ports(ctx context.Context, cfg *config.Config, dial func(context.Context, string, string) (net.Conn, error)) []Finding {
	var out []Finding
	for _, l := range []struct{ key, addr string }{
		{"c2s.listen", cfg.C2S.Listen}, {"c2s.direct_tls_listen", cfg.C2S.DirectTLSListen}, {"s2s.listen", cfg.S2S.Listen},
		{"http.listen", cfg.HTTP.Listen}, {"proxy65.listen", cfg.Proxy65.Listen}, {"component_listen", cfg.ComponentListen},
		{"debug.listen", cfg.Debug.Listen},
	} {
		if l.addr == "" {
			continue
		}
		host, p, err := net.SplitHostPort(l.addr)
		if err != nil {
			out = append(out, Finding{Error, l.key + " " + l.addr + ": " + err.Error(), "write host:port"})
			continue
		}
		if host == "" || host == "0.0.0.0" || host == "::" {
			host = "127.0.0.1"
		}
		dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		c, err := dial(dctx, "tcp", net.JoinHostPort(host, p))
		cancel()
		if err != nil {
			out = append(out, Finding{Warn, l.key + " " + l.addr + " does not answer (" + shortErr(err) + ")", "start xmppd; if it runs, check the firewall and that nothing else holds the port"})
			continue
		}
		c.Close()
		out = append(out, Finding{OK, l.key + " " + l.addr + " answers", ""})
	}
	return out
}

func shortErr(err error) string {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err.Error()
	}
	return err.Error()
}

// Errors counts the findings at level Error.
func Errors(fs []Finding) int {
	n := 0
	for _, f := range fs {
		if f.Level == Error {
			n++
		}
	}
	return n
}
