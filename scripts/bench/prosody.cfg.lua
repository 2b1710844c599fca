-- Benchmark-only Prosody config (scripts/bench.sh substitutes @DIR@ and @PORT@).
-- Loopback only, no s2s, no rate limits (no mod_limits), registration open
-- from loopback so xmppload -register can create the accounts.
run_as_root = true            -- we run as root in the sandbox; all files are root's
pidfile = "@DIR@/prosody.pid"
data_path = "@DIR@/data"
plugin_paths = { }
admins = { }

network_backend = "epoll"
network_settings = { tcp_backlog = 1024 }

interfaces = { "127.0.0.1" }
c2s_interfaces = { "127.0.0.1" }
c2s_ports = { @PORT@ }
c2s_direct_tls_ports = { }
s2s_ports = { }
modules_disabled = { "s2s" }

modules_enabled = {
    "roster";
    "saslauth";
    "tls";
    "disco";
    "ping";
    "posix";
    "register";
    "smacks";      -- XEP-0198, in Prosody 0.12's core (the prosody package, not prosody-modules)
}
smacks_max_unacked_stanzas = 5   -- ask for an ack every 5 stanzas, as xmppd's request_every (default 0: every stanza)

authentication = "internal_hashed"   -- SCRAM-SHA-1 + PLAIN (0.12 has no SCRAM-SHA-256)
default_iteration_count = @ITER@      -- PBKDF2 iterations for new accounts
storage = "internal"
c2s_require_encryption = true
allow_unencrypted_plain_auth = true
allow_registration = true
min_seconds_between_registrations = 0
registration_throttle_max = 1000000
registration_throttle_period = 1

log = {
    { levels = { min = "warn" }, to = "file", filename = "@DIR@/prosody.log" };
}

VirtualHost "localhost"
    ssl = {
        certificate = "@CERTS@/localhost.crt";
        key = "@CERTS@/localhost.key";
    }

-- XEP-0045 for the muc run: anyone may create rooms, no rate limit (no mod_muc_limits).
Component "conference.localhost" "muc"
    restrict_room_creation = false
    max_history_messages = 20
