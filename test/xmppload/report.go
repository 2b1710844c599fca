package xmppload

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// Report is the outcome of a run; its JSON form is what -json writes and
// what scripts/bench.sh reads.
type Report struct {
	Addr        string  `json:"addr"`
	Domain      string  `json:"domain"`
	Profile     string  `json:"profile"`
	Clients     int     `json:"clients"`
	TLS         string  `json:"tls"`
	Mech        string  `json:"mech"`
	Rate        float64 `json:"rate"`
	Window      int     `json:"window"`
	RosterSize  int     `json:"roster_size,omitempty"`
	RosterSetup bool    `json:"roster_setup,omitempty"`
	// RosterOnline: roster, the share of the accounts online in the measured phase; RosterIncomplete: logged-in
	// clients whose roster lacked a mutual ('both') subscription with one of their contacts after any setup.
	RosterOnline     float64 `json:"roster_online,omitempty"`
	RosterIncomplete int     `json:"roster_incomplete,omitempty"`
	// RosterSetupRounds: the subscription rounds the setup took (at most 3, each checked by logging in again).
	RosterSetupRounds int `json:"roster_setup_rounds,omitempty"`
	Rooms             int `json:"rooms,omitempty"`
	// RoomOccupants: muc, the occupants of each room when the measured phase began.
	RoomOccupants []int  `json:"room_occupants,omitempty"`
	StartedAt     string `json:"started_at"`

	DurationSeconds float64 `json:"duration_s"`

	Registrations         int64 `json:"registrations,omitempty"`
	RegistrationsExisting int64 `json:"registrations_existing,omitempty"`
	RegistrationErrors    int64 `json:"registration_errors,omitempty"`

	Logins            int64       `json:"logins"`
	LoginErrors       int64       `json:"login_errors"`
	Logouts           int64       `json:"logouts,omitempty"`
	PeakConnected     int64       `json:"peak_connected"`
	LoginPhaseSeconds float64     `json:"login_phase_s"`
	LoginsPerSec      float64     `json:"logins_per_sec"`
	LoginLatency      Percentiles `json:"login_latency_ms"`

	MessagesSent       int64       `json:"messages_sent"`
	MessagesReceived   int64       `json:"messages_received"`
	MessagesLost       int64       `json:"messages_lost"`
	MessagesDuplicated int64       `json:"messages_duplicated"`
	MessagesOutOfOrder int64       `json:"messages_out_of_order"`
	MessagesStale      int64       `json:"messages_stale"`
	Latency            Percentiles `json:"latency_ms"`
	MsgsPerSec         float64     `json:"msgs_per_sec"`
	// XEP-0198: messages received with an XEP-0203 delay (sent again by the
	// server), and duplicates among them (allowed by XEP-0198; the
	// duplicates above carried no delay).
	MessagesResent       int64 `json:"messages_resent,omitempty"`
	MessagesSMDuplicates int64 `json:"messages_sm_duplicates,omitempty"`

	SM               bool         `json:"sm,omitempty"`
	AckEvery         int          `json:"ack_every,omitempty"`
	SMRequests       int64        `json:"sm_requests,omitempty"`        // our <r/>s
	SMAcks           int64        `json:"sm_acks,omitempty"`            // <a/>s received
	SMServerRequests int64        `json:"sm_server_requests,omitempty"` // the server's <r/>s we answered
	AckLatency       *Percentiles `json:"ack_latency_ms,omitempty"`

	Drops         int64        `json:"drops,omitempty"`
	Resumes       int64        `json:"resumes,omitempty"`
	TLSResumed    int64        `json:"tls_resumed,omitempty"` // handshakes that resumed a TLS session (-tls-resume)
	ResumesFailed int64        `json:"resumes_failed,omitempty"`
	ResumeLatency *Percentiles `json:"resume_latency_ms,omitempty"`

	PresencesSent     int64   `json:"presences_sent,omitempty"`
	PresencesReceived int64   `json:"presences_received,omitempty"`
	PresencesPerSec   float64 `json:"presences_per_sec,omitempty"`
	// roster: the deliveries the updates sent should make (each × the sender's online contacts), those made
	// (updates of this run received from a contact), the difference, and the copies echoed to the sender.
	PresencesExpected  int64        `json:"presences_expected,omitempty"`
	PresencesDelivered int64        `json:"presences_delivered,omitempty"`
	PresencesLost      int64        `json:"presences_lost,omitempty"`
	PresencesSelf      int64        `json:"presences_self,omitempty"`
	PresenceLatency    *Percentiles `json:"presence_latency_ms,omitempty"`

	BurstSent int64 `json:"burst_sent,omitempty"` // idle with -burst: messages sent in the burst

	// ServerPprof: the file the server's CPU profile of the measured phase was written to (-server-pprof).
	ServerPprof      string `json:"server_pprof,omitempty"`
	ServerPprofError string `json:"server_pprof_error,omitempty"`

	Errors         map[string]int64 `json:"errors"`
	LoadCPUSeconds float64          `json:"load_cpu_s"`
	Server         *ServerStats     `json:"server_stats,omitempty"`
}

func (r *Report) fillConfig(c *Config) {
	r.Addr, r.Domain, r.Profile, r.Clients = c.Addr, c.Domain, c.Profile, c.Clients
	r.TLS, r.Mech, r.Rate, r.Window = c.TLS, c.Mech, c.Rate, c.Window
	if c.Profile == ProfileRoster {
		r.RosterSize = c.RosterSize
		r.RosterOnline = c.RosterOnline
	}
	if c.Profile == ProfileMUC {
		r.Rooms = c.Rooms
	}
	r.SM, r.AckEvery = c.SM, c.AckEvery
}

// Failed reports whether the run should make the command exit non-zero:
// messages were lost, or no client could log in.
func (r *Report) Failed() (bool, string) {
	switch {
	case r.MessagesLost > 0:
		return true, fmt.Sprintf("%d messages lost", r.MessagesLost)
	case r.PresencesLost > 0:
		return true, fmt.Sprintf("%d presence deliveries lost", r.PresencesLost)
	case r.ResumesFailed > 0:
		return true, fmt.Sprintf("%d resumptions failed", r.ResumesFailed)
	case r.Logins == 0:
		return true, "no client logged in"
	}
	return false, ""
}

// WriteJSON writes the report, indented, to path ("-" = stdout).
func (r *Report) WriteJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if path == "-" {
		_, err = os.Stdout.Write(b)
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// WriteText prints the human-readable report.
func (r *Report) WriteText(w io.Writer) {
	p := func(format string, a ...any) { fmt.Fprintf(w, format+"\n", a...) }
	pct := func(x Percentiles) string {
		return fmt.Sprintf("p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f ms (n=%d)", x.P50, x.P90, x.P99, x.P999, x.Max, x.Count)
	}
	p("xmppload %s: %d clients against %s (%s, tls=%s, mech=%s)", r.Profile, r.Clients, r.Addr, r.Domain, r.TLS, r.Mech)
	if r.Registrations+r.RegistrationsExisting+r.RegistrationErrors > 0 {
		p("  registration: %d created, %d existed, %d errors", r.Registrations, r.RegistrationsExisting, r.RegistrationErrors)
	}
	p("  logins:   %d ok, %d errors, %.1f/s over %.2fs, peak connected %d", r.Logins, r.LoginErrors, r.LoginsPerSec, r.LoginPhaseSeconds, r.PeakConnected)
	p("  login latency: %s", pct(r.LoginLatency))
	if r.Profile == ProfileMUC {
		p("  rooms: %d, occupants %v (messages below are delivered copies, the sender's reflection included)", r.Rooms, r.RoomOccupants)
	}
	if r.Profile == ProfileChat || r.MessagesSent > 0 {
		p("  messages: sent %d, received %d, lost %d, duplicated %d, out of order %d, stale %d",
			r.MessagesSent, r.MessagesReceived, r.MessagesLost, r.MessagesDuplicated, r.MessagesOutOfOrder, r.MessagesStale)
		if r.SM {
			p("  resent by the server (XEP-0203 delay): %d, of which XEP-0198 duplicates %d", r.MessagesResent, r.MessagesSMDuplicates)
		}
		p("  throughput: %.1f msgs/s over %.2fs", r.MsgsPerSec, r.DurationSeconds)
		p("  delivery latency: %s", pct(r.Latency))
	}
	if r.PresencesSent+r.PresencesReceived > 0 {
		p("  presences: sent %d, received %d (%.1f/s)", r.PresencesSent, r.PresencesReceived, r.PresencesPerSec)
		if r.Profile == ProfileRoster {
			p("  presence updates: %d deliveries expected, %d delivered to contacts, %d lost, %d echoed to the sender; roster %d contacts, %.0f%% online, %d rosters incomplete (setup rounds %d)",
				r.PresencesExpected, r.PresencesDelivered, r.PresencesLost, r.PresencesSelf, r.RosterSize, r.RosterOnline*100, r.RosterIncomplete, r.RosterSetupRounds)
		}
		if r.PresenceLatency != nil {
			p("  presence latency: %s", pct(*r.PresenceLatency))
		}
	}
	if r.SM {
		p("  stream management: <r/> every %d stanzas: %d sent, %d <a/> received; %d server <r/> answered", r.AckEvery, r.SMRequests, r.SMAcks, r.SMServerRequests)
		if r.AckLatency != nil {
			p("  ack latency: %s", pct(*r.AckLatency))
		}
	}
	if r.Profile == ProfileReconnect {
		p("  reconnects: %d drops, %d resumed, %d failed resumptions", r.Drops, r.Resumes, r.ResumesFailed)
		if r.TLSResumed > 0 {
			p("  TLS sessions resumed: %d handshakes", r.TLSResumed)
		}
		if r.ResumeLatency != nil {
			p("  resume latency (dial to <resumed/>): %s", pct(*r.ResumeLatency))
		}
	}
	if s := r.Server; s != nil {
		p("  server pids %v: RSS %d KiB at start, %d KiB connected (%.1f KiB/conn), peak %d KiB",
			s.PIDs, s.RSSKiBStart, s.RSSKiBConnected, s.KiBPerConn, s.RSSKiBPeak)
		p("  server CPU: %.2fs during logins (%.3f ms/login), %.2fs in the measured phase (%.2f µs/msg)",
			s.CPUSecondsLogin, s.CPUMsPerLogin, s.CPUSecondsSteady, s.CPUMicrosPerMsg)
		if s.HeapKiBConnected > 0 {
			p("  server heap in use %d → %d KiB (%.1f KiB/conn), stacks %d → %d KiB (%.1f KiB/conn), goroutines %d → %d (%.2f/conn)",
				s.HeapKiBStart, s.HeapKiBConnected, s.HeapKiBPerConn, s.StackKiBStart, s.StackKiBConnected, s.StackKiBPerConn,
				s.GoroutinesStart, s.GoroutinesConnected, s.GoroutinesPerConn)
		}
		if s.RSSKiBAfterBurst > 0 {
			p("  after a burst of %d messages: RSS %d KiB when received, %d KiB settled (%.1f KiB/conn; heap %.1f, stacks %.1f KiB/conn)",
				r.BurstSent, s.RSSKiBBurstReceived, s.RSSKiBAfterBurst, s.KiBPerConnAfterBurst, s.HeapKiBPerConnAfterBurst, s.StackKiBPerConnAfterBurst)
		}
		if r.Resumes > 0 {
			p("  server CPU per resumption: %.3f ms (measured phase CPU / resumptions)", s.CPUMsPerResume)
		}
	}
	if r.ServerPprof != "" {
		p("  server CPU profile of the measured phase: %s", r.ServerPprof)
	}
	if r.ServerPprofError != "" {
		p("  server CPU profile failed: %s", r.ServerPprofError)
	}
	p("  load tool CPU: %.2fs", r.LoadCPUSeconds)
	if len(r.Errors) == 0 {
		p("  errors: none")
	} else {
		keys := make([]string, 0, len(r.Errors))
		for k := range r.Errors {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = fmt.Sprintf("%s=%d", k, r.Errors[k])
		}
		p("  errors: %s", strings.Join(parts, " "))
	}
}
