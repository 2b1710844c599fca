#!/usr/bin/python3
"""Log in once with Debian's python3-slixmpp (1.8.x) and report every SASL
attempt it made, for the channel-binding tests (tlsunique_test.go).

Usage: slixmpp_login.py HOST PORT DOMAIN CAFILE USER PASSWORD MODE TLSMAX [SECONDS]

MODE is "starttls" or "direct" (XEP-0368 direct TLS). TLSMAX is "1.2" to cap
the client at TLS 1.2 (where tls-unique exists), or "default" for the stock
client (TLS 1.3 against xmppd). slixmpp chooses its mechanism itself, as for a
user; nothing about SASL is configured.

Prints one line "REPORT: {json}" with the negotiated TLS version, each
attempt in order (mechanism and, for SCRAM, the GS2 channel-binding flag it
sent), each <failure/> condition, and the mechanism that succeeded (null if
none), then "RESULT: PASS" when the session started or "RESULT: FAIL: ...".
Run with /usr/bin/python3: the pyenv python on PATH cannot see Debian's
packages.
"""

import asyncio
import json
import logging
import os
import ssl
import sys

import slixmpp
from slixmpp.util import sasl
from slixmpp.util.sasl import mechanisms as sasl_mechs

HOST, PORT, DOMAIN, CAFILE, USER, PASSWORD, MODE, TLSMAX = sys.argv[1:9]
SECONDS = float(sys.argv[9]) if len(sys.argv) > 9 else 20.0

attempts = []  # {"mech": name, "gs2": flag or None}

# Observe, without changing, what slixmpp sends: the mechanism sasl.choose()
# picks for each <auth/> and the gs2-cbind-flag of SCRAM's client-first.
_choose = sasl.choose


def _observed_choose(*args, **kwargs):
    mech = _choose(*args, **kwargs)
    attempts.append({"mech": mech.name, "gs2": None})
    return mech


sasl.choose = _observed_choose
_process_1 = sasl_mechs.SCRAM.process_1


def _observed_process_1(self, challenge):
    msg = _process_1(self, challenge)
    if attempts and attempts[-1]["mech"] == self.name:
        attempts[-1]["gs2"] = self.gs2_header.split(b",", 1)[0].decode()
    return msg


sasl_mechs.SCRAM.process_1 = _observed_process_1


class Client(slixmpp.ClientXMPP):
    def __init__(self):
        super().__init__(f"{USER}@{DOMAIN}/tlsunique", PASSWORD)
        ctx = ssl.create_default_context(cafile=CAFILE)
        if TLSMAX == "1.2":
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        self.ssl_context = ctx
        self.failures = []
        self.succeeded = None
        self.cb_types = None
        self.done = asyncio.get_event_loop().create_future()
        self.add_event_handler("failed_auth", self.on_failed_auth)
        self.add_event_handler("failed_all_auth", self.on_failed_all)
        self.add_event_handler("auth_success", self.on_auth_success)
        self.add_event_handler("session_start", self.on_start)
        self.add_event_handler("stream_negotiated", lambda _: None)
        self.register_handler(
            slixmpp.xmlstream.handler.Callback(
                "features",
                slixmpp.xmlstream.matcher.MatchXPath("{http://etherx.jabber.org/streams}features"),
                self.on_features,
            )
        )

    def on_features(self, features):
        # slixmpp itself ignores XEP-0440; record what the server announced.
        cb = features.xml.find("{urn:xmpp:sasl-cb:0}sasl-channel-binding")
        if cb is not None and self.cb_types is None:
            self.cb_types = [e.get("type") for e in cb]

    def on_failed_auth(self, stanza):
        self.failures.append(str(stanza["condition"]))

    def on_failed_all(self, _):
        if not self.done.done():
            self.done.set_exception(RuntimeError("no mechanism worked"))

    def on_auth_success(self, _):
        self.succeeded = self["feature_mechanisms"].mech.name

    def on_start(self, _):
        if not self.done.done():
            self.done.set_result(True)


async def run(c):
    c.connect((HOST, int(PORT)), use_ssl=(MODE == "direct"))
    await asyncio.wait_for(c.done, SECONDS)


def main():
    logging.basicConfig(level=getattr(logging, os.environ.get("SLIX_LOG", "ERROR")))
    loop = asyncio.get_event_loop()
    c = Client()
    code, result = 0, "RESULT: PASS"
    try:
        loop.run_until_complete(run(c))
    except Exception as e:  # report any failure the same way
        code, result = 1, f"RESULT: FAIL: {type(e).__name__}: {e!r}"
    tls = None
    if c.transport is not None:
        obj = c.transport.get_extra_info("ssl_object")
        tls = obj.version() if obj else None
    report = {
        "tls": tls,
        "attempts": attempts,
        "failures": c.failures,
        "succeeded": c.succeeded,
        "cb_types": c.cb_types,
    }
    print("REPORT: " + json.dumps(report))
    print(result)
    try:
        c.disconnect()
    except Exception:
        pass
    # Skip interpreter teardown: with TLS transports still pending it has
    # crashed (SIGSEGV) in python3.11 after a failure.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
