#!/usr/bin/python3
"""Interop check of xmppd's XEP-0313 MUC room archive with Debian's python3-slixmpp (1.8.x: xep_0045, xep_0313).

Usage: slixmpp_mucmam.py HOST PORT DOMAIN CAFILE USER_A USER_B USER_C PASSWORD [SECONDS]

The three accounts must exist and share PASSWORD; all log in with STARTTLS trusting CAFILE. The room is
USER_A@conference.DOMAIN (a fresh name each run), semi-anonymous, archiving by default ([muc.defaults] archive).

  a. setup: A creates the instant room (nick alice), B enters (bob); the room's disco#info advertises
     urn:xmpp:mam:2 and urn:xmpp:mam:2#extended.
  b. live: A sends 5 groupchat messages; B receives each with one <stanza-id by=room/>.
  c. forwards: B iterates the room's archive in pages of 2: the 5 messages in order, result ids = the live
     stanza-ids, each from arch@…/alice without a real JID (B is a participant of a semi-anonymous room).
  d. backwards: the same with reverse=True: newest first.
  e. owner: A's query shows A's real JID in the muc#user item of each message.
  f. with: B writes once; with_jid=arch@…/bob gives that message only, arch@…/alice the five.
  g. open: C, who never entered the open room, reads all of it.
  h. history: C enters asking for 3 stanzas and gets the last three from the archive, with their stanza-ids.
  i. banned: once A bans C, C's query is forbidden.
  j. metadata: the room's archive metadata starts at the first message and ends at B's.

Every scenario runs even if an earlier one failed. Prints "RESULT: PASS" and exits 0, or "RESULT: FAIL: ..."
and 1. SECONDS (default 30) bounds the whole run. Run with /usr/bin/python3; SLIX_LOG=DEBUG shows the XML.
"""

import asyncio
import ssl
import sys
import time

import slixmpp
import slixrun
from slixmpp.exceptions import IqError

HOST, PORT, DOMAIN, CAFILE, USER_A, USER_B, USER_C, PASSWORD = sys.argv[1:9]
SECONDS = float(sys.argv[9]) if len(sys.argv) > 9 and sys.argv[9] else 30.0
STEP = min(10.0, SECONDS / 2)

JID_A, JID_B, JID_C = (f"{u}@{DOMAIN}" for u in (USER_A, USER_B, USER_C))
ROOM = f"{USER_A}@conference.{DOMAIN}"
NS_SID = "urn:xmpp:sid:0"
NS_USER = "http://jabber.org/protocol/muc#user"


class Client(slixmpp.ClientXMPP):
    def __init__(self, user):
        super().__init__(f"{user}@{DOMAIN}/slix", PASSWORD)
        for p in ("xep_0030", "xep_0004", "xep_0045", "xep_0059", "xep_0203", "xep_0297", "xep_0313"):
            self.register_plugin(p)
        self.ssl_context = ssl.create_default_context(cafile=CAFILE)
        self.started = asyncio.get_event_loop().create_future()
        self.received = []  # live groupchat messages
        self.add_event_handler("session_start", self.on_start)
        self.add_event_handler("failed_all_auth", self.on_no_auth)
        self.add_event_handler("groupchat_message", self.on_groupchat)

    def on_no_auth(self, event):
        if not self.started.done():
            self.started.set_exception(RuntimeError(f"{self.boundjid.bare}: authentication failed"))

    async def on_start(self, event):
        self.send_presence()
        if not self.started.done():
            self.started.set_result(True)

    def on_groupchat(self, msg):
        if msg["body"]:
            self.received.append(msg)

    async def wait_body(self, body):
        deadline = time.monotonic() + STEP
        while time.monotonic() < deadline:
            for m in self.received:
                if m["body"] == body:
                    return m
            await asyncio.sleep(0.02)
        raise RuntimeError(f"{self.boundjid.bare} did not receive {body!r}")


def stanza_ids(msg):
    return [e.get("id") for e in msg.xml.findall(f"{{{NS_SID}}}stanza-id") if e.get("by") == ROOM]


LIVE = []  # (body, stanza-id) in order


def result_of(msg):
    res = msg["mam_result"]
    fwd = res["forwarded"]["stanza"]
    item = fwd.xml.find(f"{{{NS_USER}}}x/{{{NS_USER}}}item")
    return res["id"], fwd["body"], str(fwd["from"]), str(fwd["to"]), (item.get("jid") if item is not None else None)


async def archived(x, reverse=False, **kw):
    out = []
    async for msg in x["xep_0313"].iterate(jid=slixmpp.JID(ROOM), reverse=reverse, rsm={"max": 2}, **kw):
        out.append(result_of(msg))
    return out


async def setup(a, b, c):
    await a["xep_0045"].join_muc_wait(ROOM, "alice", timeout=STEP)
    await a["xep_0045"].set_room_config(ROOM, a["xep_0004"].make_form(ftype="submit"), timeout=STEP)
    await b["xep_0045"].join_muc_wait(ROOM, "bob", timeout=STEP)
    feats = set((await b["xep_0030"].get_info(jid=ROOM, timeout=STEP))["disco_info"]["features"])
    missing = {"urn:xmpp:mam:2", "urn:xmpp:mam:2#extended"} - feats
    if missing:
        raise RuntimeError(f"room disco#info lacks {sorted(missing)}")
    return "room created, mam:2 advertised"


async def live(a, b, c):
    for i in range(5):
        body = f"arch {i}"
        a.send_message(mto=ROOM, mbody=body, mtype="groupchat")
        ids = stanza_ids(await b.wait_body(body))
        if len(ids) != 1:
            raise RuntimeError(f"{body!r} arrived with stanza-ids {ids}")
        LIVE.append((body, ids[0]))
    return f"5 messages, each with one stanza-id by {ROOM}"


async def forwards(a, b, c):
    got = await archived(b)
    if [(body, i) for i, body, _, _, _ in got] != LIVE:
        raise RuntimeError(f"archive {got} != live {LIVE}")
    for _, _, frm, to, real in got:
        if frm != f"{ROOM}/alice" or to or real:
            raise RuntimeError(f"archived copy from {frm} to {to!r} real JID {real!r}")
    return f"{len(got)} messages in pages of 2, ids = live stanza-ids, no real JIDs"


async def backwards(a, b, c):
    got = await archived(b, reverse=True)
    if [(body, i) for i, body, _, _, _ in got] != list(reversed(LIVE)):
        raise RuntimeError(f"backwards {got}")
    return f"{len(got)} messages newest first"


async def owner(a, b, c):
    got = await archived(a)
    reals = {real for _, _, _, _, real in got}
    if reals != {str(a.boundjid)}:
        raise RuntimeError(f"the owner sees real JIDs {reals}, want {a.boundjid}")
    return f"real JID {a.boundjid} for the owner"


async def with_occupant(a, b, c):
    b.send_message(mto=ROOM, mbody="bob speaks", mtype="groupchat")
    LIVE.append(("bob speaks", stanza_ids(await a.wait_body("bob speaks"))[0]))
    bob = [body for _, body, _, _, _ in await archived(b, with_jid=slixmpp.JID(f"{ROOM}/bob"))]
    alice = [body for _, body, _, _, _ in await archived(b, with_jid=slixmpp.JID(f"{ROOM}/alice"))]
    if bob != ["bob speaks"] or len(alice) != 5:
        raise RuntimeError(f"with bob {bob}, with alice {alice}")
    return "with = occupant JID"


async def open_room(a, b, c):
    got = await archived(c)
    if len(got) != len(LIVE):
        raise RuntimeError(f"C read {len(got)} of {len(LIVE)}")
    return "a non-occupant reads the open room"


async def banned(a, b, c):
    await a["xep_0045"].set_affiliation(ROOM, "outcast", jid=slixmpp.JID(JID_C), timeout=STEP)
    try:
        # xep_0059's iterator ends quietly on an error: ask for the query form, which the same access rule guards.
        await c["xep_0313"].get_fields(jid=slixmpp.JID(ROOM), timeout=STEP)
    except IqError as e:
        if e.iq["error"]["condition"] != "forbidden":
            raise RuntimeError(f"banned C: {slixrun.describe(e)}")
        return "banned: forbidden"
    raise RuntimeError("banned C read the archive")


async def history(a, b, c):
    _, _, _, hist = await c["xep_0045"].join_muc_wait(ROOM, "carol", maxstanzas=3, timeout=STEP)
    got = [(m["body"], (stanza_ids(m) or [None])[0]) for m in hist]
    if got != LIVE[-3:]:
        raise RuntimeError(f"history {got}, want {LIVE[-3:]}")
    return f"history from the archive: {[b_ for b_, _ in got]}"


async def metadata(a, b, c):
    md = await b["xep_0313"].get_archive_metadata(jid=slixmpp.JID(ROOM), timeout=STEP)
    first, last = md["mam_metadata"]["start"]["id"], md["mam_metadata"]["end"]["id"]
    if (first, last) != (LIVE[0][1], LIVE[-1][1]):
        raise RuntimeError(f"metadata {first}..{last}, archive {LIVE[0][1]}..{LIVE[-1][1]}")
    return f"{first}..{last}"


async def run():
    clients = [Client(u) for u in (USER_A, USER_B, USER_C)]
    for x in clients:
        x.connect((HOST, int(PORT)))
    for x in clients:
        await asyncio.wait_for(x.started, STEP)
    try:
        await slixrun.scenarios((("a setup", setup), ("b live", live), ("c forwards", forwards),
                                 ("d backwards", backwards), ("e owner", owner), ("f with", with_occupant),
                                 ("g open", open_room), ("h history", history), ("i banned", banned),
                                 ("j metadata", metadata)),
                                clients, slixrun.describe)
    finally:
        for x in clients:
            x.disconnect()


if __name__ == "__main__":
    slixrun.main(run, SECONDS)
