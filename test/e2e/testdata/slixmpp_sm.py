#!/usr/bin/python3
"""Interop check of xmppd's XEP-0198 stream management with Debian's python3-slixmpp (its xep_0198 plugin).

Usage: slixmpp_sm.py HOST PORT DOMAIN CAFILE USER_A USER_B USER_C PASSWORD [SECONDS]

A logs in with xep_0198 (enable with resume); B sends A three messages; A acknowledges them, then loses its TCP
connection (the transport is aborted, no </stream:stream>); B sends two more while A is away; A reconnects and
slixmpp resumes the session (session_resumed, not a new bind); A gets the two messages sent meanwhile exactly once
and none of the acknowledged ones again. USER_C is not used.

slixmpp 1.8 logs "Inconsistent sequence numbers from the server" on <resumed h='1'/>: it empties its own queue of
unacknowledged stanzas when it sends <resume/>, so the server's correct h (A's one presence) exceeds what it still
counts. Its own state, not the server's answer, is wrong there.
"""

import asyncio
import ssl
import sys
import time

import slixmpp
import slixrun

HOST, PORT, DOMAIN, CAFILE, USER_A, USER_B, _USER_C, PASSWORD = sys.argv[1:9]
SECONDS = float(sys.argv[9]) if len(sys.argv) > 9 and sys.argv[9] else 40.0
STEP = min(10.0, SECONDS / 3)


class Client(slixmpp.ClientXMPP):
    def __init__(self, user, sm):
        super().__init__(f"{user}@{DOMAIN}/slix", PASSWORD)
        if sm:
            self.register_plugin("xep_0198")
        self.ssl_context = ssl.create_default_context(cafile=CAFILE)
        self.started = asyncio.get_event_loop().create_future()
        self.bodies = []
        self.events = []
        self.add_event_handler("session_start", self.on_start)
        self.add_event_handler("message", lambda m: self.bodies.append(m["body"]))
        for ev in ("sm_enabled", "session_resumed", "sm_failed"):
            self.add_event_handler(ev, lambda s, ev=ev: self.events.append(ev))

    async def on_start(self, event):
        self.send_presence()
        if not self.started.done():
            self.started.set_result(True)


async def until(pred, what):
    deadline = time.monotonic() + STEP
    while time.monotonic() < deadline:
        if pred():
            return
        await asyncio.sleep(0.05)
    raise RuntimeError(f"timed out waiting for {what}")


async def resume(a, b):
    await until(lambda: "sm_enabled" in a.events, "sm_enabled")
    to = a.boundjid.full
    for i in (1, 2, 3):
        b.send_message(mto=to, mbody=f"m{i}", mtype="chat")
    await until(lambda: len(a.bodies) >= 3, "m1..m3")
    a["xep_0198"].send_ack()
    await asyncio.sleep(0.3)
    a.transport.abort()  # the connection is lost: no </stream:stream>
    await asyncio.sleep(0.5)
    for i in (4, 5):
        b.send_message(mto=to, mbody=f"m{i}", mtype="chat")
    await asyncio.sleep(0.3)
    a.connect((HOST, int(PORT)))
    await until(lambda: "session_resumed" in a.events, "session_resumed")
    await until(lambda: len(a.bodies) >= 5, "m4 and m5")
    await asyncio.sleep(0.5)
    if a.bodies != ["m1", "m2", "m3", "m4", "m5"]:
        raise RuntimeError(f"A got {a.bodies}, want m1..m5 once each")
    if "sm_failed" in a.events:
        raise RuntimeError("a resumption failed")
    return f"resumed as {a.boundjid}; got {a.bodies}"


async def run():
    a, b = Client(USER_A, True), Client(USER_B, False)
    for x in (a, b):
        x.connect((HOST, int(PORT)))
    for x in (a, b):
        await asyncio.wait_for(x.started, STEP)
    try:
        await slixrun.scenarios((("resume", resume),), (a, b), str)
    finally:
        for x in (a, b):
            x.disconnect()


if __name__ == "__main__":
    slixrun.main(run, SECONDS)
