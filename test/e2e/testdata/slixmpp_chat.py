#!/usr/bin/python3
"""Interop check of xmppd with Debian's python3-slixmpp (1.8.x).

Usage: slixmpp_chat.py HOST PORT DOMAIN CAFILE USER_A USER_B PASSWORD [SECONDS [MECH]]

Registers USER_A and USER_B by in-band registration (XEP-0077), logs both in
with STARTTLS trusting CAFILE, has A add B to its roster (name and group) and
subscribe, B auto-approves, A sends B a chat message and pings the server, and
finally checks that A's roster shows B as 'both' with the name and group
intact. Prints "RESULT: PASS" and exits 0, or "RESULT: FAIL: reason" and 1.
MECH pins the SASL mechanism (e.g. PLAIN); empty means slixmpp's own choice.
Run with /usr/bin/python3: the pyenv python on PATH cannot see Debian's
packages.
"""

import asyncio
import ssl
import sys

import slixmpp
import slixrun
from slixmpp.exceptions import IqError, IqTimeout

HOST, PORT, DOMAIN, CAFILE, USER_A, USER_B, PASSWORD = sys.argv[1:8]
SECONDS = float(sys.argv[8]) if len(sys.argv) > 8 else 20.0
MECH = sys.argv[9] if len(sys.argv) > 9 and sys.argv[9] else None
BODY = "hello from slixmpp \u2603 <&>"


class Client(slixmpp.ClientXMPP):
    def __init__(self, user):
        super().__init__(f"{user}@{DOMAIN}/slix", PASSWORD, sasl_mech=MECH)
        self.register_plugin("xep_0030")
        self.register_plugin("xep_0004")
        self.register_plugin("xep_0066")
        self.register_plugin("xep_0077")
        self.register_plugin("xep_0199")
        self["xep_0077"].force_registration = True
        # slixmpp 1.8.3 queues IQs sent before the session starts, which
        # would hang registration forever.
        self._always_send_everything = True
        self.ssl_context = ssl.create_default_context(cafile=CAFILE)
        self.registered = asyncio.get_event_loop().create_future()
        self.started = asyncio.get_event_loop().create_future()
        self.subscribed = asyncio.get_event_loop().create_future()
        self.messages = asyncio.Queue()
        self.add_event_handler("register", self.on_register)
        self.add_event_handler("session_start", self.on_start)
        # slixmpp moves on to the next mechanism after a failure (e.g. a
        # -PLUS variant with tls-unique, which TLS 1.3 does not define);
        # only running out of mechanisms is fatal.
        self.add_event_handler("failed_auth", self.on_failed_auth)
        self.add_event_handler("no_auth", self.on_no_auth)
        self.auth_failures = []
        self.add_event_handler("message", self.on_message)
        self.add_event_handler("presence_subscribed", self.on_subscribed)
        # B approves subscription requests automatically.
        self.auto_authorize = True
        self.auto_subscribe = False

    async def on_register(self, form):
        iq = self.Iq()
        iq["type"] = "set"
        iq["register"]["username"] = self.boundjid.user
        iq["register"]["password"] = self.password
        try:
            await iq.send(timeout=10)
            if not self.registered.done():
                self.registered.set_result(True)
        except (IqError, IqTimeout) as e:
            if not self.registered.done():
                self.registered.set_exception(RuntimeError(f"registration failed: {e}"))

    def on_failed_auth(self, event):
        self.auth_failures.append(str(event["condition"]) if hasattr(event, "__getitem__") else str(event))

    def on_no_auth(self, event):
        if not self.started.done():
            self.started.set_exception(RuntimeError(f"no mechanism worked; failures: {self.auth_failures}"))

    async def on_start(self, event):
        self.send_presence()
        try:
            await self.get_roster(timeout=10)
        except (IqError, IqTimeout) as e:
            self.started.set_exception(RuntimeError(f"roster fetch failed: {e}"))
            return
        if not self.started.done():
            self.started.set_result(True)

    def on_message(self, msg):
        if msg["type"] in ("chat", "normal"):
            self.messages.put_nowait(msg)

    def on_subscribed(self, pres):
        if not self.subscribed.done():
            self.subscribed.set_result(pres["from"].bare)


async def run():
    a, b = Client(USER_A), Client(USER_B)
    for c in (a, b):
        c.connect((HOST, int(PORT)))
    for c in (a, b):
        await asyncio.wait_for(c.registered, SECONDS)
        await asyncio.wait_for(c.started, SECONDS)
    if not a.is_connected() or not b.is_connected():
        raise RuntimeError("not connected")
    ssl_obj = a.transport.get_extra_info("ssl_object") if a.transport else None
    tls_a = ssl_obj.version() if ssl_obj else None
    print(f"login ok: {a.boundjid} {b.boundjid} tls={tls_a} failed attempts before success: {a.auth_failures}")
    if not tls_a:
        raise RuntimeError("A's stream is not encrypted")

    jid_b = f"{USER_B}@{DOMAIN}"
    jid_a = f"{USER_A}@{DOMAIN}"
    await a.update_roster(jid_b, name="Bee", groups=["slix"], timeout=10)
    a.send_presence_subscription(pto=jid_b)
    got = await asyncio.wait_for(a.subscribed, SECONDS)
    if got != jid_b:
        raise RuntimeError(f"subscribed from {got}")
    print("subscription approved")

    a.send_message(mto=b.boundjid.full, mbody=BODY, mtype="chat")
    msg = await asyncio.wait_for(b.messages.get(), SECONDS)
    if msg["body"] != BODY or msg["from"].bare != jid_a:
        raise RuntimeError(f"B got {msg['body']!r} from {msg['from']}")
    print("message delivered")

    b.send_message(mto=jid_a, mbody="echo: " + BODY, mtype="chat")
    msg = await asyncio.wait_for(a.messages.get(), SECONDS)
    if msg["body"] != "echo: " + BODY:
        raise RuntimeError(f"A got {msg['body']!r}")
    print("reply delivered")

    rtt = await a["xep_0199"].ping(jid=DOMAIN, timeout=10)
    print(f"ping ok ({rtt:.4f}s)")

    # B approved A, and B's auto_authorize answered... only A→B; make it
    # mutual so the roster should say 'both'.
    b.send_presence_subscription(pto=jid_a)
    a_roster = a.client_roster
    for _ in range(int(SECONDS * 10)):
        item = a_roster[jid_b]
        if item["subscription"] == "both":
            break
        await asyncio.sleep(0.1)
    item = a.client_roster[jid_b]
    if item["subscription"] != "both" or item["name"] != "Bee" or list(item["groups"]) != ["slix"]:
        raise RuntimeError(
            f"A's roster item for B: sub={item['subscription']} name={item['name']!r} groups={item['groups']}"
        )
    print(f"roster ok: {jid_b} name={item['name']!r} sub=both groups={item['groups']}")

    for c in (a, b):
        c.disconnect()


if __name__ == "__main__":
    slixrun.main(run, SECONDS * 3)
