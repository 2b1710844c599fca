#!/usr/bin/python3
"""Interop check of xmppd's conversions between PEP and the older forms, with Debian's python3-slixmpp (1.8.x).

Usage: slixmpp_conversion.py HOST PORT DOMAIN CAFILE USER_A USER_B USER_C PASSWORD [SECONDS]

The three accounts must exist and share PASSWORD. A logs in twice: A/legacy, a client that only knows XEP-0048
bookmarks in XEP-0049 private XML and vcard-temp avatars, and A/modern, which uses XEP-0402 bookmarks and XEP-0084
avatars (its caps carry urn:xmpp:bookmarks:1+notify and urn:xmpp:avatar:metadata+notify). B is A's mutual contact
with metadata+notify; C is a stranger.

  a. Discovery: A's account disco#info lists urn:xmpp:bookmarks-conversion:0 (XEP-0411), urn:xmpp:bookmarks:1#compat
     and #compat-pep (XEP-0402 §5.3) and urn:xmpp:pep-vcard-conversion:0 (XEP-0398).
  b. Private XML → PEP: A/legacy stores two rooms and a <url/> in private XML; A/modern gets a bookmarks:1 event
     for each, reads both from urn:xmpp:bookmarks:1 (with name, autojoin, nick, password) and the same <storage/>
     from the legacy PEP node storage:bookmarks.
  c. PEP → private XML: A/modern publishes a third room and retracts the first; A/legacy reads private XML and sees
     rooms two and three, the <url/> still there.
  d. XEP-0084 → vCard: A/modern publishes an avatar (data, then metadata); C reads A's vCard and finds the image
     as PHOTO/BINVAL with its TYPE.
  e. XEP-0153 hash: A/legacy sends plain presence; B receives it with <x xmlns='vcard-temp:x:update'><photo/>
     carrying the avatar's SHA-1, put there by the server; a presence in which the client put an empty <photo/>
     reaches B untouched.
  f. vCard → XEP-0084: A/legacy sets a vCard with another photo; B gets the metadata event with that photo's SHA-1
     as id and reads the data item, which is the photo.

Prints "RESULT: PASS" and exits 0, or "RESULT: FAIL: ..." and 1. Run with /usr/bin/python3 (clients.md);
SLIX_LOG=DEBUG shows the XML.
"""

import asyncio
import base64
import hashlib
import ssl
import sys
import time

import slixmpp
import slixrun
from slixmpp.exceptions import IqTimeout
from slixmpp.xmlstream import ET

HOST, PORT, DOMAIN, CAFILE, USER_A, USER_B, USER_C, PASSWORD = sys.argv[1:9]
SECONDS = float(sys.argv[9]) if len(sys.argv) > 9 and sys.argv[9] else 40.0
STEP = min(10.0, SECONDS / 3)

JID_A, JID_B, JID_C = (f"{u}@{DOMAIN}" for u in (USER_A, USER_B, USER_C))

NS_BM2 = "urn:xmpp:bookmarks:1"
NS_LEGACY = "storage:bookmarks"
NS_PRIVATE = "jabber:iq:private"
NS_META = "urn:xmpp:avatar:metadata"
NS_DATA = "urn:xmpp:avatar:data"
NS_VCARD = "vcard-temp"
NS_UPDATE = "vcard-temp:x:update"
ROOM1, ROOM2, ROOM3 = (f"room{i}@conference.{DOMAIN}" for i in (1, 2, 3))


class Client(slixmpp.ClientXMPP):
    def __init__(self, user, resource, interests=()):
        super().__init__(f"{user}@{DOMAIN}/{resource}", PASSWORD)
        for p in ("xep_0030", "xep_0004", "xep_0060", "xep_0115", "xep_0163", "xep_0084", "xep_0054"):
            self.register_plugin(p)
        self.ssl_context = ssl.create_default_context(cafile=CAFILE)
        self.interests = list(interests)
        self.started = asyncio.get_event_loop().create_future()
        self.events = []  # (node, message) of every pubsub item event
        self.presences = []  # every presence received
        self.add_event_handler("session_start", self.on_start)
        self.add_event_handler("pubsub_publish", lambda m: self.events.append((m["pubsub_event"]["items"]["node"], m)))
        self.add_event_handler("presence", lambda p: self.presences.append(p))
        self.auto_authorize = True
        self.auto_subscribe = False

    async def on_start(self, event):
        try:
            for ns in self.interests:
                self["xep_0163"].add_interest(ns)
            await self["xep_0115"].update_caps(broadcast=False)
            await self.get_roster(timeout=STEP)
            self.send_presence()
        except Exception as e:  # noqa: BLE001 - reported through the future
            if not self.started.done():
                self.started.set_exception(RuntimeError(f"{self.boundjid}: session start: {e!r}"))
            return
        if not self.started.done():
            self.started.set_result(True)

    async def wait_event(self, node, item_id, timeout=STEP):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for n, msg in self.events:
                if n == node and msg["from"].bare == JID_A:
                    for item in msg["pubsub_event"]["items"]:
                        if item["id"] == item_id:
                            return item
            await asyncio.sleep(0.05)
        raise RuntimeError(f"{self.boundjid} got no {node} event for {item_id} (events: {[n for n, _ in self.events]})")

    async def wait_presence(self, frm, pred, what, timeout=STEP):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for p in self.presences:
                if p["from"] == frm and pred(p):
                    return p
            await asyncio.sleep(0.05)
        raise RuntimeError(f"{self.boundjid} got no presence from {frm} {what}: {[str(p) for p in self.presences if p['from'] == frm]}")


def el(xml):
    return ET.fromstring(xml)


async def iq(xmpp, typ, payload, to=None):
    q = xmpp.make_iq(ito=to, itype=typ)
    q.append(el(payload))
    return await q.send(timeout=STEP)


async def private_get(xmpp):
    res = await iq(xmpp, "get", f"<query xmlns='{NS_PRIVATE}'><storage xmlns='{NS_LEGACY}'/></query>")
    return res.xml.find(f"{{{NS_PRIVATE}}}query/{{{NS_LEGACY}}}storage")


def rooms_of(storage):
    return {c.get("jid"): c for c in storage.findall(f"{{{NS_LEGACY}}}conference")}


async def items(xmpp, node):
    res = await xmpp["xep_0060"].get_items(JID_A, node, timeout=STEP)
    return {i["id"]: i["payload"] for i in res["pubsub"]["items"]}


async def make_contacts(a, b):
    await slixrun.make_contacts(a, b, JID_A, JID_B, STEP)


# ---- scenarios ----


async def discovery(legacy, modern, b, c):
    info = await modern["xep_0030"].get_info(jid=JID_A, timeout=STEP)
    have = set(info["disco_info"]["features"])
    want = {"urn:xmpp:bookmarks-conversion:0", NS_BM2 + "#compat", NS_BM2 + "#compat-pep",
            "urn:xmpp:pep-vcard-conversion:0"}
    if not want <= have:
        raise RuntimeError(f"account disco#info lacks {sorted(want - have)}")
    return "all four conversion features advertised"


async def private_to_pep(legacy, modern, b, c):
    storage = (f"<storage xmlns='{NS_LEGACY}'>"
               f"<conference jid='{ROOM1}' name='Room One' autojoin='true'><nick>alice</nick><password>s3cret</password></conference>"
               f"<conference jid='{ROOM2}' name='Room Two'><nick>al</nick></conference>"
               "<url name='Notes' url='https://example.org/notes'/></storage>")
    await iq(legacy, "set", f"<query xmlns='{NS_PRIVATE}'>{storage}</query>")
    for room in (ROOM1, ROOM2):
        await modern.wait_event(NS_BM2, room)
    got = await items(modern, NS_BM2)
    if set(got) != {ROOM1, ROOM2}:
        raise RuntimeError(f"bookmarks:1 has {sorted(got)}")
    r1 = got[ROOM1]
    if (r1.get("name") != "Room One" or r1.get("autojoin") not in ("true", "1")
            or r1.findtext(f"{{{NS_BM2}}}nick") != "alice" or r1.findtext(f"{{{NS_BM2}}}password") != "s3cret"):
        raise RuntimeError(f"room1 converted as {ET.tostring(r1)!r}")
    if got[ROOM2].get("autojoin") in ("true", "1"):
        raise RuntimeError("room2 got autojoin it did not have")
    leg = await items(modern, NS_LEGACY)
    st = leg.get("current")
    if st is None or set(rooms_of(st)) != {ROOM1, ROOM2} or st.find(f"{{{NS_LEGACY}}}url") is None:
        raise RuntimeError(f"legacy PEP node has {ET.tostring(st) if st is not None else None!r}")
    return "both rooms reached bookmarks:1 (with events) and the legacy PEP node"


async def pep_to_private(legacy, modern, b, c):
    conf = f"<conference xmlns='{NS_BM2}' name='Room Three' autojoin='true'><nick>a3</nick></conference>"
    await modern["xep_0060"].publish(None, NS_BM2, id=ROOM3, payload=el(conf), timeout=STEP)
    await modern["xep_0060"].retract(None, NS_BM2, ROOM1, notify=True, timeout=STEP)
    st = await private_get(legacy)
    if st is None:
        raise RuntimeError("private XML has no storage:bookmarks")
    got = rooms_of(st)
    if set(got) != {ROOM2, ROOM3}:
        raise RuntimeError(f"private XML has rooms {sorted(got)}, want room2 and room3")
    r3 = got[ROOM3]
    if r3.get("name") != "Room Three" or r3.get("autojoin") not in ("true", "1") or r3.findtext(f"{{{NS_LEGACY}}}nick") != "a3":
        raise RuntimeError(f"room3 converted as {ET.tostring(r3)!r}")
    if st.find(f"{{{NS_LEGACY}}}url") is None:
        raise RuntimeError("the <url/> was lost")
    return "private XML shows the published room, not the retracted one, and keeps the <url/>"


PHOTO1 = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 3
PHOTO2 = b"\xff\xd8\xff\xe0" + bytes(reversed(range(256))) * 2


async def pep_to_vcard(legacy, modern, b, c):
    h = hashlib.sha1(PHOTO1).hexdigest()
    await modern["xep_0084"].publish_avatar(PHOTO1, timeout=STEP)
    await modern["xep_0084"].publish_avatar_metadata({"id": h, "type": "image/png", "bytes": len(PHOTO1)}, timeout=STEP)
    res = await c["xep_0054"].get_vcard(JID_A, cached=False, timeout=STEP)
    v = res["vcard_temp"]
    binval = v["PHOTO"]["BINVAL"]
    if binval != PHOTO1 or v["PHOTO"]["TYPE"] != "image/png":
        raise RuntimeError(f"C read PHOTO type={v['PHOTO']['TYPE']!r}, {len(binval or b'')} bytes")
    return f"C read the {len(PHOTO1)}-byte avatar from A's vCard"


async def presence_hash(legacy, modern, b, c):
    h = hashlib.sha1(PHOTO1).hexdigest()
    legacy.send_presence(pstatus="hash please")

    def has_hash(p):
        x = p.xml.find(f"{{{NS_UPDATE}}}x")
        return p["status"] == "hash please" and x is not None and x.findtext(f"{{{NS_UPDATE}}}photo") == h

    await b.wait_presence(legacy.boundjid, has_hash, f"with photo {h}")
    p = legacy.make_presence(pstatus="not ready")
    p.append(el(f"<x xmlns='{NS_UPDATE}'><photo/></x>"))
    p.send()

    def untouched(p):
        x = p.xml.find(f"{{{NS_UPDATE}}}x")
        return p["status"] == "not ready" and x is not None and (x.findtext(f"{{{NS_UPDATE}}}photo") or "") == ""

    await b.wait_presence(legacy.boundjid, untouched, "with the client's empty photo")
    return "the server stamped the hash; an empty <photo/> of the client stayed empty"


async def vcard_to_pep(legacy, modern, b, c):
    h = hashlib.sha1(PHOTO2).hexdigest()
    card = (f"<vCard xmlns='{NS_VCARD}'><FN>Alice</FN><PHOTO><TYPE>image/jpeg</TYPE>"
            f"<BINVAL>{base64.b64encode(PHOTO2).decode()}</BINVAL></PHOTO></vCard>")
    await iq(legacy, "set", card)
    item = await b.wait_event(NS_META, h)
    info = item["payload"].find(f"{{{NS_META}}}info")
    if info is None or info.get("type") != "image/jpeg" or info.get("bytes") != str(len(PHOTO2)):
        raise RuntimeError(f"metadata event {ET.tostring(item['payload'])!r}")
    res = await b["xep_0084"].retrieve_avatar(JID_A, h, timeout=STEP)
    got = list(res["pubsub"]["items"])
    if len(got) != 1 or base64.b64decode(got[0]["payload"].text or "") != PHOTO2:
        raise RuntimeError("the data item is not the vCard's photo")
    return f"B got the metadata event for {h[:8]}… and the image"


async def run():
    legacy = Client(USER_A, "legacy")
    modern = Client(USER_A, "modern", interests=[NS_BM2, NS_META])
    b = Client(USER_B, "slix", interests=[NS_META])
    c = Client(USER_C, "slix")
    everyone = (legacy, modern, b, c)
    for x in everyone:
        x.connect((HOST, int(PORT)))
    for x in everyone:
        await asyncio.wait_for(x.started, STEP)
    await make_contacts(legacy, b)
    print("logged in; A and B are mutual contacts", flush=True)
    try:
        await slixrun.scenarios((("a discovery", discovery), ("b private→pep", private_to_pep),
                                 ("c pep→private", pep_to_private), ("d avatar→vcard", pep_to_vcard),
                                 ("e presence hash", presence_hash), ("f vcard→avatar", vcard_to_pep)),
                                (legacy, modern, b, c), describe)
    finally:
        for x in everyone:
            x.disconnect()


def describe(e):
    if isinstance(e, IqTimeout):
        return "timeout"
    return f"{e.iq['error']['condition']}: {e.iq['error']['text']}"


if __name__ == "__main__":
    slixrun.main(run, SECONDS)
