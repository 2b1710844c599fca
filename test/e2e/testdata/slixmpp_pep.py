#!/usr/bin/python3
"""Interop check of xmppd's XEP-0163 PEP / XEP-0060 with Debian's python3-slixmpp (1.8.x).

Usage: slixmpp_pep.py HOST PORT DOMAIN CAFILE USER_A USER_B USER_C PASSWORD [SECONDS]

The three accounts must exist (the Go test creates them) and share PASSWORD.
All log in with STARTTLS trusting CAFILE. A and B become mutual presence
contacts (each subscribes, the other auto-approves); C is a stranger to A.
Then, against A's PEP service (A's bare JID):

  a. OMEMO: A publishes the legacy (eu.siacs.conversations.axolotl) device list
     and bundle and the OMEMO 2 (urn:xmpp:omemo:2) device list and bundle, with
     publish-options pubsub#access_model=open; C, a stranger, reads them all.
  b. +notify: B's XEP-0115 caps (announced in presence after the interest was
     added) carry http://jabber.org/protocol/nick+notify; A publishes a nick and
     B gets the event; C, with no such interest and no subscription, does not.
  c. Bookmarks (XEP-0402): A publishes two conferences to urn:xmpp:bookmarks:1
     with the XEP-0402 publish-options (persist_items, max_items=max,
     send_last_published_item=never, access_model=whitelist); A reads both back;
     B (a contact) and C are refused with not-allowed/closed-node.
  d. Precondition: A publishes to the bookmarks node again with access_model=open
     and gets conflict/precondition-not-met (XEP-0060 §7.1.5); the node stays
     closed.
  e. Avatar (XEP-0084): A publishes data then metadata with the xep_0084 plugin;
     B gets the metadata event (xep_0084 registers metadata+notify) and fetches
     the data item by id.

Every scenario runs even if an earlier one failed. Prints "RESULT: PASS" and
exits 0, or "RESULT: FAIL: reason; reason..." and 1. SECONDS (default 30) bounds
the whole run. slixmpp 1.8 has no xep_0402 plugin, so the bookmark payload is
built by hand and published with xep_0060. Run with /usr/bin/python3 (the pyenv
python on PATH cannot see Debian's packages); SLIX_LOG=DEBUG shows the XML.
"""

import asyncio
import base64
import hashlib
import ssl
import sys
import time

import slixmpp
import slixrun
from slixmpp.exceptions import IqError, IqTimeout
from slixmpp.xmlstream import ET

HOST, PORT, DOMAIN, CAFILE, USER_A, USER_B, USER_C, PASSWORD = sys.argv[1:9]
SECONDS = float(sys.argv[9]) if len(sys.argv) > 9 and sys.argv[9] else 30.0
STEP = min(10.0, SECONDS / 2)  # one IQ or one awaited event

JID_A, JID_B, JID_C = (f"{u}@{DOMAIN}" for u in (USER_A, USER_B, USER_C))

NS_PUBSUB_ERRORS = "http://jabber.org/protocol/pubsub#errors"
NS_AXOLOTL = "eu.siacs.conversations.axolotl"
NS_OMEMO2 = "urn:xmpp:omemo:2"
NS_NICK = "http://jabber.org/protocol/nick"
NS_MOOD = "http://jabber.org/protocol/mood"
NS_BOOKMARKS = "urn:xmpp:bookmarks:1"
NS_AVATAR_META = "urn:xmpp:avatar:metadata"
NS_AVATAR_DATA = "urn:xmpp:avatar:data"


class Client(slixmpp.ClientXMPP):
    def __init__(self, user, interests=()):
        super().__init__(f"{user}@{DOMAIN}/slix", PASSWORD)
        for p in ("xep_0030", "xep_0004", "xep_0060", "xep_0115", "xep_0163", "xep_0084"):
            self.register_plugin(p)
        self.ssl_context = ssl.create_default_context(cafile=CAFILE)
        self.interests = list(interests)
        self.started = asyncio.get_event_loop().create_future()
        self.events = []  # (node, message) of every pubsub item event received
        self.add_event_handler("session_start", self.on_start)
        self.add_event_handler("failed_all_auth", self.on_no_auth)
        self.add_event_handler("pubsub_publish", self.on_publish)
        # Subscription requests are approved; nobody subscribes back by itself.
        self.auto_authorize = True
        self.auto_subscribe = False

    def on_no_auth(self, event):
        if not self.started.done():
            self.started.set_exception(RuntimeError(f"{self.boundjid.bare}: authentication failed"))

    async def on_start(self, event):
        try:
            # XEP-0163 §4.2: the +notify features go into the caps *before*
            # the presence that announces them (add_interest only schedules an
            # update without broadcasting it).
            for ns in self.interests:
                self["xep_0163"].add_interest(ns)
            await self["xep_0115"].update_caps(broadcast=False)
            await self.get_roster(timeout=STEP)
            self.send_presence()  # xep_0115's filter adds <c/> with the ver
        except Exception as e:  # noqa: BLE001 - reported through the future
            if not self.started.done():
                self.started.set_exception(RuntimeError(f"{self.boundjid.bare}: session start: {e!r}"))
            return
        if not self.started.done():
            self.started.set_result(True)

    def on_publish(self, msg):
        self.events.append((msg["pubsub_event"]["items"]["node"], msg))

    async def wait_event(self, node, item_id=None, frm=None, timeout=STEP):
        """The first item event for node (and item_id, from frm's bare JID)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for n, msg in self.events:
                if n != node or (frm and msg["from"].bare != frm):
                    continue
                for item in msg["pubsub_event"]["items"]:
                    if item_id is None or item["id"] == item_id:
                        return msg, item
            await asyncio.sleep(0.05)
        got = [(n, m["from"].full) for n, m in self.events]
        raise RuntimeError(f"{self.boundjid.bare} got no event for {node} item {item_id} (events: {got})")


def form(xmpp, **fields):
    """A publish-options form (XEP-0060 §7.1.5); keys use _ for #."""
    f = xmpp["xep_0004"].make_form(ftype="submit")
    f.add_field(var="FORM_TYPE", ftype="hidden", value="http://jabber.org/protocol/pubsub#publish-options")
    for k, v in fields.items():
        f.add_field(var="pubsub#" + k, value=v)
    return f


describe = slixrun.describe


def app_conditions(e):
    return {c.tag.split("}", 1)[1] for c in e.iq["error"].xml if c.tag.startswith("{" + NS_PUBSUB_ERRORS + "}")}


async def get_items(xmpp, jid, node, **kw):
    iq = await xmpp["xep_0060"].get_items(jid, node, timeout=STEP, **kw)
    return {item["id"]: item["payload"] for item in iq["pubsub"]["items"]}


async def expect_error(coro, condition, app, what):
    """Awaits coro, which must fail with condition (and the pubsub#errors app)."""
    try:
        await coro
    except IqError as e:
        if e.iq["error"]["condition"] != condition or (app and app not in app_conditions(e)):
            raise RuntimeError(f"{what}: want {condition}/{app}, got {describe(e)}")
        return describe(e)
    raise RuntimeError(f"{what}: want error {condition}/{app}, got a result")


def el(xml):
    return ET.fromstring(xml)


async def make_contacts(a, b):
    await slixrun.make_contacts(a, b, JID_A, JID_B, STEP)


# ---- scenarios ----


async def omemo(a, b, c):
    opts = lambda **kw: form(a, access_model="open", **kw)  # noqa: E731
    pub = a["xep_0060"].publish
    devicelist = f"<list xmlns='{NS_AXOLOTL}'><device id='1234'/></list>"
    bundle = (
        f"<bundle xmlns='{NS_AXOLOTL}'><signedPreKeyPublic signedPreKeyId='1'>BQ==</signedPreKeyPublic>"
        "<signedPreKeySignature>AA==</signedPreKeySignature><identityKey>BQE=</identityKey>"
        "<prekeys><preKeyPublic preKeyId='1'>BQI=</preKeyPublic></prekeys></bundle>"
    )
    devices2 = f"<devices xmlns='{NS_OMEMO2}'><device id='1234' label='slix'/></devices>"
    bundle2 = (
        f"<bundle xmlns='{NS_OMEMO2}'><spk id='1'>BQ==</spk><spks>AA==</spks><ik>BQE=</ik>"
        "<prekeys><pk id='1'>BQI=</pk></prekeys></bundle>"
    )
    await pub(None, f"{NS_AXOLOTL}.devicelist", id="current", payload=el(devicelist), options=opts(), timeout=STEP)
    await pub(None, f"{NS_AXOLOTL}.bundles:1234", id="current", payload=el(bundle), options=opts(), timeout=STEP)
    await pub(None, f"{NS_OMEMO2}:devices", id="current", payload=el(devices2), options=opts(), timeout=STEP)
    # XEP-0384 §5.3.2: the OMEMO 2 bundles node keeps one item per device, max_items=max.
    await pub(None, f"{NS_OMEMO2}:bundles", id="1234", payload=el(bundle2),
              options=opts(max_items="max"), timeout=STEP)

    got = await get_items(c, JID_A, f"{NS_AXOLOTL}.devicelist")
    p = got.get("current")
    if p is None or p.tag != f"{{{NS_AXOLOTL}}}list" or p.find(f"{{{NS_AXOLOTL}}}device").get("id") != "1234":
        raise RuntimeError(f"C read devicelist {got!r}: {[ET.tostring(x) for x in got.values() if x is not None]}")
    got = await get_items(c, JID_A, f"{NS_AXOLOTL}.bundles:1234")
    p = got.get("current")
    if p is None or p.find(f"{{{NS_AXOLOTL}}}identityKey") is None or p.find(f"{{{NS_AXOLOTL}}}identityKey").text != "BQE=":
        raise RuntimeError(f"C read bundle {got!r}")
    got = await get_items(c, JID_A, f"{NS_OMEMO2}:devices")
    p = got.get("current")
    if p is None or p.tag != f"{{{NS_OMEMO2}}}devices" or p.find(f"{{{NS_OMEMO2}}}device").get("label") != "slix":
        raise RuntimeError(f"C read omemo:2 devices {got!r}")
    got = await get_items(c, JID_A, f"{NS_OMEMO2}:bundles", item_ids=["1234"])
    p = got.get("1234")
    if p is None or p.find(f"{{{NS_OMEMO2}}}ik").text != "BQE=":
        raise RuntimeError(f"C read omemo:2 bundle 1234 {got!r}")
    return "C (stranger) read axolotl devicelist+bundle and omemo:2 devices+bundle"


async def notify(a, b, c):
    # A mood nobody asked +notify for goes first: the server keeps the order
    # of what it sends B (RFC 6120 §10.1), so had it been sent to B, it would
    # be there by the time the nick is.
    await a["xep_0060"].publish(None, NS_MOOD, id="current",
                                payload=el(f"<mood xmlns='{NS_MOOD}'><happy/></mood>"), timeout=STEP)
    await a["xep_0060"].publish(None, NS_NICK, id="current",
                                payload=el(f"<nick xmlns='{NS_NICK}'>Alice \u2603</nick>"), timeout=STEP)
    msg, item = await b.wait_event(NS_NICK, "current", frm=JID_A)
    p = item["payload"]
    if p is None or p.text != "Alice \u2603":
        raise RuntimeError(f"B's nick event carries {ET.tostring(p) if p is not None else None!r}")
    if any(n == NS_MOOD for n, _ in b.events):
        raise RuntimeError("B got the mood event without mood+notify in its caps")
    if any(n == NS_NICK for n, _ in c.events):
        raise RuntimeError("C (no +notify, no subscription, not a contact) got the nick event")
    return f"B got the nick event ({msg['type'] or 'normal'} message from {msg['from']}), not the mood one"


def conference(name, nick):
    return el(f"<conference xmlns='{NS_BOOKMARKS}' name='{name}' autojoin='true'><nick>{nick}</nick></conference>")


def bookmark_options(a, access="whitelist"):
    return form(a, persist_items="true", max_items="max", send_last_published_item="never", access_model=access)


ROOMS = {f"room1@conference.{DOMAIN}": "Room One", f"room2@conference.{DOMAIN}": "Room Two"}


async def bookmarks(a, b, c):
    for room, name in ROOMS.items():
        await a["xep_0060"].publish(None, NS_BOOKMARKS, id=room, payload=conference(name, "alice"),
                                    options=bookmark_options(a), timeout=STEP)
    got = await get_items(a, JID_A, NS_BOOKMARKS)
    if set(got) != set(ROOMS):
        raise RuntimeError(f"A read back items {sorted(got)}, want {sorted(ROOMS)} (max_items=max keeps both)")
    for room, name in ROOMS.items():
        p = got[room]
        if (p is None or p.tag != f"{{{NS_BOOKMARKS}}}conference" or p.get("name") != name
                or p.get("autojoin") != "true" or p.findtext(f"{{{NS_BOOKMARKS}}}nick") != "alice"):
            raise RuntimeError(f"A read back {room}: {ET.tostring(p) if p is not None else None!r}")
    eb = await expect_error(get_items(b, JID_A, NS_BOOKMARKS), "not-allowed", "closed-node", "B (contact) reading bookmarks")
    ec = await expect_error(get_items(c, JID_A, NS_BOOKMARKS), "not-allowed", "closed-node", "C (stranger) reading bookmarks")
    return f"A read back 2 bookmarks; B refused ({eb}); C refused ({ec})"


async def precondition(a, b, c):
    e = await expect_error(
        a["xep_0060"].publish(None, NS_BOOKMARKS, id=f"room3@conference.{DOMAIN}",
                              payload=conference("Room Three", "alice"), options=bookmark_options(a, "open"),
                              timeout=STEP),
        "conflict", "precondition-not-met", "publishing with access_model=open to the whitelist node")
    got = await get_items(a, JID_A, NS_BOOKMARKS)
    if set(got) != set(ROOMS):
        raise RuntimeError(f"after the refused publish A has {sorted(got)}")
    await expect_error(get_items(c, JID_A, NS_BOOKMARKS), "not-allowed", "closed-node",
                       "C reading bookmarks after the refused publish")
    return f"refused ({e}); node unchanged"


async def avatar(a, b, c):
    data = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
    aid = hashlib.sha1(data).hexdigest()
    await a["xep_0084"].publish_avatar(data, timeout=STEP)
    # width/height as strings: slixmpp 1.8's Info converts only bytes itself.
    await a["xep_0084"].publish_avatar_metadata(
        {"id": aid, "type": "image/png", "bytes": len(data), "width": "16", "height": "16"}, timeout=STEP)
    # B has urn:xmpp:avatar:metadata+notify (xep_0084 registers it).
    msg, item = await b.wait_event(NS_AVATAR_META, aid, frm=JID_A)
    info = item["payload"].find(f"{{{NS_AVATAR_META}}}info") if item["payload"] is not None else None
    if info is None or info.get("id") != aid or info.get("bytes") != str(len(data)):
        raise RuntimeError(f"B's metadata event: {ET.tostring(item['payload'])!r}")
    iq = await b["xep_0084"].retrieve_avatar(JID_A, aid, timeout=STEP)
    items = list(iq["pubsub"]["items"])
    if len(items) != 1 or items[0]["id"] != aid:
        raise RuntimeError(f"B retrieved items {[i['id'] for i in items]}, want [{aid}]")
    got = base64.b64decode(items[0]["payload"].text or "")
    if got != data:
        raise RuntimeError(f"B retrieved {len(got)} bytes, not the {len(data)} published")
    return f"B got the metadata event and the {len(data)}-byte data item {aid[:8]}…"


async def run():
    a = Client(USER_A)
    b = Client(USER_B, interests=[NS_NICK])
    c = Client(USER_C)
    for x in (a, b, c):
        x.connect((HOST, int(PORT)))
    for x in (a, b, c):
        await asyncio.wait_for(x.started, STEP)
    ssl_obj = a.transport.get_extra_info("ssl_object") if a.transport else None
    if not ssl_obj:
        raise RuntimeError("A's stream is not encrypted")
    print(f"login ok: {a.boundjid} {b.boundjid} {c.boundjid} tls={ssl_obj.version()}")
    await make_contacts(a, b)
    print("A and B are mutual contacts")

    try:
        await slixrun.scenarios((("a omemo", omemo), ("b +notify", notify), ("c bookmarks", bookmarks),
                                 ("d precondition", precondition), ("e avatar", avatar)), (a, b, c), describe)
    finally:
        for x in (a, b, c):
            x.disconnect()


if __name__ == "__main__":
    slixrun.main(run, SECONDS)
