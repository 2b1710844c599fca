#!/usr/bin/python3
"""Interop check of xmppd's XEP-0313 message archive with Debian's python3-slixmpp (1.8.x: xep_0313, xep_0441).

Usage: slixmpp_mam.py HOST PORT DOMAIN CAFILE USER_A USER_B USER_C PASSWORD [SECONDS]

The three accounts must exist (the Go test creates them, with empty archives) and share PASSWORD. All log in
with STARTTLS trusting CAFILE. Then:

  a. disco: A's bare JID advertises urn:xmpp:mam:2, urn:xmpp:mam:2#extended and urn:xmpp:sid:0.
  b. live: B sends A 7 chat messages; each reaches A with one <stanza-id by=A's bare JID/>.
  c. forwards: A iterates its archive with B with xep_0313's RSM iterator, pages of 3: the 7 messages in
     order, each result id equal to the live stanza-id, bodies as sent.
  d. backwards: the same with reverse=True (empty <before/>, then <before>first</before>): newest first.
  e. time: a query with start/end taken from the archived delays of messages 2 and 4 gives messages 2..4.
  f. form and metadata: get_fields lists with/start/end; the metadata's start/end ids are the first and last.
  g. prefs (XEP-0441): A sets default never with B always; C's message then arrives without a stanza-id
     and is not in the archive, B's is.

Every scenario runs even if an earlier one failed. Prints "RESULT: PASS" and exits 0, or
"RESULT: FAIL: reason; reason..." and 1. SECONDS (default 30) bounds the whole run. Run with /usr/bin/python3;
SLIX_LOG=DEBUG shows the XML.
"""

import asyncio
import ssl
import sys
import time

import slixmpp
import slixrun

HOST, PORT, DOMAIN, CAFILE, USER_A, USER_B, USER_C, PASSWORD = sys.argv[1:9]
SECONDS = float(sys.argv[9]) if len(sys.argv) > 9 and sys.argv[9] else 30.0
STEP = min(10.0, SECONDS / 2)

JID_A, JID_B, JID_C = (f"{u}@{DOMAIN}" for u in (USER_A, USER_B, USER_C))
NS_SID = "urn:xmpp:sid:0"


class Client(slixmpp.ClientXMPP):
    def __init__(self, user):
        super().__init__(f"{user}@{DOMAIN}/slix", PASSWORD)
        for p in ("xep_0030", "xep_0004", "xep_0059", "xep_0297", "xep_0313", "xep_0441"):
            self.register_plugin(p)
        self.ssl_context = ssl.create_default_context(cafile=CAFILE)
        self.started = asyncio.get_event_loop().create_future()
        self.received = []  # live chat messages
        self.add_event_handler("session_start", self.on_start)
        self.add_event_handler("failed_all_auth", self.on_no_auth)
        self.add_event_handler("message", self.on_message)

    def on_no_auth(self, event):
        if not self.started.done():
            self.started.set_exception(RuntimeError(f"{self.boundjid.bare}: authentication failed"))

    async def on_start(self, event):
        try:
            await self.get_roster(timeout=STEP)
            self.send_presence()
        except Exception as e:  # noqa: BLE001 - reported through the future
            if not self.started.done():
                self.started.set_exception(RuntimeError(f"{self.boundjid.bare}: session start: {e!r}"))
            return
        if not self.started.done():
            self.started.set_result(True)

    def on_message(self, msg):
        if msg["body"] and msg.xml.find("{urn:xmpp:mam:2}result") is None:
            self.received.append(msg)

    async def wait_body(self, body):
        deadline = time.monotonic() + STEP
        while time.monotonic() < deadline:
            for m in self.received:
                if m["body"] == body:
                    return m
            await asyncio.sleep(0.02)
        raise RuntimeError(f"{self.boundjid.bare} did not receive {body!r}")


def stanza_ids(msg, by):
    return [e.get("id") for e in msg.xml.findall(f"{{{NS_SID}}}stanza-id") if e.get("by") == by]


describe = slixrun.describe

LIVE = []  # (body, stanza-id) of what B sent A, in order


async def disco(a, b, c):
    info = await a["xep_0030"].get_info(jid=JID_A, timeout=STEP)
    feats = set(info["disco_info"]["features"])
    missing = {"urn:xmpp:mam:2", "urn:xmpp:mam:2#extended", NS_SID} - feats
    if missing:
        raise RuntimeError(f"A's disco#info lacks {sorted(missing)}")
    return "mam:2, #extended and sid:0 advertised"


async def live(a, b, c):
    for i in range(7):
        body = f"slix {i}"
        b.send_message(mto=JID_A, mbody=body, mtype="chat")
        m = await a.wait_body(body)
        ids = stanza_ids(m, JID_A)
        if len(ids) != 1:
            raise RuntimeError(f"{body!r} arrived with stanza-ids {ids}")
        LIVE.append((body, ids[0]))
    return f"7 messages, each with one stanza-id by {JID_A}"


def result_of(msg):
    res = msg["mam_result"]
    return res["id"], res["forwarded"]["stanza"]["body"], res["forwarded"]["delay"]["stamp"]


async def archived(a, reverse=False, **kw):
    out = []
    async for msg in a["xep_0313"].iterate(with_jid=slixmpp.JID(JID_B), reverse=reverse, rsm={"max": 3}, **kw):
        out.append(result_of(msg))
    return out


async def forwards(a, b, c):
    got = await archived(a)
    if [(body, i) for i, body, _ in got] != LIVE:
        raise RuntimeError(f"archive {[(b_, i) for i, b_, _ in got]} != live {LIVE}")
    return f"{len(got)} messages in 3 pages, ids = live stanza-ids"


async def backwards(a, b, c):
    got = await archived(a, reverse=True)
    if [(body, i) for i, body, _ in got] != list(reversed(LIVE)):
        raise RuntimeError(f"backwards {[(b_, i) for i, b_, _ in got]}")
    return f"{len(got)} messages newest first"


async def timespan(a, b, c):
    got = await archived(a)
    start, end = got[2][2], got[4][2]
    part = []
    async for msg in a["xep_0313"].iterate(with_jid=slixmpp.JID(JID_B), start=start, end=end, rsm={"max": 3}):
        part.append(result_of(msg)[1])
    if part != ["slix 2", "slix 3", "slix 4"]:
        raise RuntimeError(f"start..end gave {part}")
    return f"{start.isoformat()}..{end.isoformat()}: {part}"


async def form_and_metadata(a, b, c):
    fields = set((await a["xep_0313"].get_fields(timeout=STEP)).get_fields().keys())
    if not {"with", "start", "end"} <= fields:
        raise RuntimeError(f"query form fields {sorted(fields)}")
    md = await a["xep_0313"].get_archive_metadata(timeout=STEP)
    first, last = md["mam_metadata"]["start"]["id"], md["mam_metadata"]["end"]["id"]
    if (first, last) != (LIVE[0][1], LIVE[-1][1]):
        raise RuntimeError(f"metadata {first}..{last}, archive {LIVE[0][1]}..{LIVE[-1][1]}")
    return f"form {sorted(fields)}; metadata {first}..{last}"


async def prefs(a, b, c):
    await a["xep_0441"].set_preferences(default="never", always=[slixmpp.JID(JID_B)], never=[], timeout=STEP)
    default, always, never = await a["xep_0441"].get_preferences(timeout=STEP)
    if default != "never" or {j.bare for j in always} != {JID_B}:
        raise RuntimeError(f"prefs read back {default} {always} {never}")
    c.send_message(mto=JID_A, mbody="from a stranger", mtype="chat")
    m = await a.wait_body("from a stranger")
    if stanza_ids(m, JID_A):
        raise RuntimeError("C's message got a stanza-id with default never")
    b.send_message(mto=JID_A, mbody="always B", mtype="chat")
    kept = stanza_ids(await a.wait_body("always B"), JID_A)
    everything = []
    async for msg in a["xep_0313"].iterate(rsm={"max": 5}):
        everything.append(result_of(msg)[:2])
    if everything[-1] != (kept[0], "always B") or any(body == "from a stranger" for _, body in everything):
        raise RuntimeError(f"archive after prefs: {everything[-3:]}")
    return f"default never, always B: {len(everything)} archived"


async def run():
    a, b, c = Client(USER_A), Client(USER_B), Client(USER_C)
    for x in (a, b, c):
        x.connect((HOST, int(PORT)))
    for x in (a, b, c):
        await asyncio.wait_for(x.started, STEP)
    print(f"login ok: {a.boundjid} {b.boundjid} {c.boundjid}")
    try:
        await slixrun.scenarios((("a disco", disco), ("b live", live), ("c forwards", forwards),
                                 ("d backwards", backwards), ("e time", timespan),
                                 ("f form+metadata", form_and_metadata), ("g prefs", prefs)), (a, b, c), describe)
    finally:
        for x in (a, b, c):
            x.disconnect()


if __name__ == "__main__":
    slixrun.main(run, SECONDS)
