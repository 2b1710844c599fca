#!/usr/bin/python3
"""Interop check of xmppd's standalone XEP-0060 service with Debian's python3-slixmpp (1.8.x, plugin xep_0060).

Usage: slixmpp_pubsub.py PHASE HOST PORT DOMAIN CAFILE USER_A USER_B USER_C PASSWORD [SECONDS]

The three accounts must exist (the Go test creates them) and share PASSWORD. All log in with STARTTLS trusting
CAFILE and send available presence. The service is pubsub.DOMAIN. A owns every node.

PHASE "before" (a fresh server):
  a. discovery: disco#items of DOMAIN lists pubsub.DOMAIN; its disco#info says pubsub/service with the pubsub
     features.
  b. create + configure: A creates "news" with a configuration form (title, max_items=10), reads the
     configuration back and changes the title; a second create of "news" is a conflict.
  c. publish + notify: B subscribes (bare JID); A publishes; B gets the item event from the service with the
     payload; C (not subscribed) gets nothing.
  d. retract: A retracts the item; B gets the retract event.
  e. items: A publishes three items; B asks for max_items=2 and gets the two newest, and one by id.
  f. affiliations: A creates "secret" with access_model=whitelist; C is refused items and subscription with
     not-allowed/closed-node; A makes C a member; C reads the item and subscribes; C's own affiliations list
     "secret" as member; A's node affiliations list C.
  g. delete: B subscribes to "doomed"; A deletes it; B gets the delete event; items of "doomed" are
     item-not-found.
  h. for the next phase: A creates "persist" and publishes "p1"; B subscribes.
PHASE "after" (the same data directory, after xmppd was killed with SIGKILL and started again):
  i. B reads "p1" from "persist"; B's subscriptions list "persist"; disco#items of the service lists news,
     secret and persist and not doomed; A publishes "p2" and B gets the event (the subscription survived);
     C, a member of "secret", still reads it.

Every scenario runs even if an earlier one failed. Prints "RESULT: PASS" and exits 0, or "RESULT: FAIL: reason;
reason..." and 1. SECONDS (default 30) bounds the whole run. Run with /usr/bin/python3 (the pyenv python on PATH
cannot see Debian's packages); SLIX_LOG=DEBUG shows the XML.
"""

import asyncio
import ssl
import sys
import time

import slixmpp
import slixrun
from slixmpp.exceptions import IqError, IqTimeout
from slixmpp.xmlstream import ET

PHASE, HOST, PORT, DOMAIN, CAFILE, USER_A, USER_B, USER_C, PASSWORD = sys.argv[1:10]
SECONDS = float(sys.argv[10]) if len(sys.argv) > 10 and sys.argv[10] else 30.0
STEP = min(10.0, SECONDS / 2)  # one IQ or one awaited event

JID_A, JID_B, JID_C = (f"{u}@{DOMAIN}" for u in (USER_A, USER_B, USER_C))
SERVICE = f"pubsub.{DOMAIN}"
NS_PUBSUB = "http://jabber.org/protocol/pubsub"
NS_PUBSUB_ERRORS = NS_PUBSUB + "#errors"
NS_ENTRY = "urn:xmppd:test:entry"


class Client(slixmpp.ClientXMPP):
    def __init__(self, user):
        super().__init__(f"{user}@{DOMAIN}/slix", PASSWORD)
        for p in ("xep_0030", "xep_0004", "xep_0060"):
            self.register_plugin(p)
        self.ssl_context = ssl.create_default_context(cafile=CAFILE)
        self.started = asyncio.get_event_loop().create_future()
        self.events = []  # (kind, node, message): kind is publish, retract or delete
        self.add_event_handler("session_start", self.on_start)
        self.add_event_handler("failed_all_auth", self.on_no_auth)
        self.add_event_handler("pubsub_publish", lambda m: self.events.append(("publish", m["pubsub_event"]["items"]["node"], m)))
        self.add_event_handler("pubsub_retract", lambda m: self.events.append(("retract", m["pubsub_event"]["items"]["node"], m)))
        self.add_event_handler("pubsub_delete", lambda m: self.events.append(("delete", m["pubsub_event"]["delete"]["node"], m)))

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

    async def wait_event(self, kind, node, item_id=None, timeout=STEP):
        """The first event of kind for node (with item_id for publish/retract), from the service."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for k, n, msg in self.events:
                if k != kind or n != node or msg["from"].full != SERVICE:
                    continue
                if kind == "delete":
                    return msg, None
                for item in msg["pubsub_event"]["items"]:
                    if item_id is None or item["id"] == item_id:
                        return msg, item
            await asyncio.sleep(0.05)
        got = [(k, n, m["from"].full) for k, n, m in self.events]
        raise RuntimeError(f"{self.boundjid.bare} got no {kind} event for {node} {item_id or ''} (events: {got})")


def config_form(xmpp, **fields):
    """A node_config form (XEP-0060 §8.2); keys use _ for #."""
    f = xmpp["xep_0004"].make_form(ftype="submit")
    f.add_field(var="FORM_TYPE", ftype="hidden", value=NS_PUBSUB + "#node_config")
    for k, v in fields.items():
        f.add_field(var="pubsub#" + k, value=v)
    return f


describe = slixrun.describe


async def expect_error(coro, condition, app, what):
    """Awaits coro, which must fail with condition (and the pubsub#errors app)."""
    try:
        await coro
    except IqError as e:
        apps = {c.tag.split("}", 1)[1] for c in e.iq["error"].xml if c.tag.startswith("{" + NS_PUBSUB_ERRORS + "}")}
        if e.iq["error"]["condition"] != condition or (app and app not in apps):
            raise RuntimeError(f"{what}: want {condition}/{app}, got {describe(e)}")
        return describe(e)
    raise RuntimeError(f"{what}: want error {condition}/{app}, got a result")


def entry(text):
    e = ET.Element(f"{{{NS_ENTRY}}}entry")
    e.text = text
    return e


async def items_of(xmpp, node, **kw):
    iq = await xmpp["xep_0060"].get_items(SERVICE, node, timeout=STEP, **kw)
    return [(i["id"], i["payload"].text if i["payload"] is not None else None) for i in iq["pubsub"]["items"]]


async def publish(xmpp, node, item_id, text):
    await xmpp["xep_0060"].publish(SERVICE, node, id=item_id, payload=entry(text), timeout=STEP)


# ---- phase "before" ----


async def discovery(a, b, c):
    items = await a["xep_0030"].get_items(jid=DOMAIN, timeout=STEP)
    jids = [i[0] for i in items["disco_items"]["items"]]
    if SERVICE not in jids:
        raise RuntimeError(f"disco#items of {DOMAIN} lists {jids}, not {SERVICE}")
    info = await a["xep_0030"].get_info(jid=SERVICE, timeout=STEP)
    ids = [(i[0], i[1]) for i in info["disco_info"]["identities"]]
    feats = info["disco_info"]["features"]
    if ("pubsub", "service") not in ids or NS_PUBSUB not in feats or NS_PUBSUB + "#publish" not in feats:
        raise RuntimeError(f"disco#info of {SERVICE}: identities {ids}, features {feats}")
    return f"{SERVICE} listed; identity pubsub/service, {len(feats)} features"


async def create_configure(a, b, c):
    ps = a["xep_0060"]
    await ps.create_node(SERVICE, "news", config=config_form(a, title="News", max_items="10"), timeout=STEP)
    iq = await ps.get_node_config(SERVICE, "news", timeout=STEP)
    form = iq["pubsub_owner"]["configure"]["form"]
    if form.get_values().get("pubsub#title") != "News":
        raise RuntimeError(f"configuration read back: {form.get_values()}")
    await ps.set_node_config(SERVICE, "news", config_form(a, title="World news"), timeout=STEP)
    iq = await ps.get_node_config(SERVICE, "news", timeout=STEP)
    title = iq["pubsub_owner"]["configure"]["form"].get_values().get("pubsub#title")
    if title != "World news":
        raise RuntimeError(f"title after configure: {title!r}")
    e = await expect_error(ps.create_node(SERVICE, "news", timeout=STEP), "conflict", None, "creating news twice")
    return f"created, configured (title {title!r}); second create refused ({e})"


async def publish_notify(a, b, c):
    await b["xep_0060"].subscribe(SERVICE, "news", timeout=STEP)
    await publish(a, "news", "n1", "first story")
    msg, item = await b.wait_event("publish", "news", "n1")
    if item["payload"] is None or item["payload"].text != "first story":
        raise RuntimeError(f"B's event carries {ET.tostring(item['payload']) if item['payload'] is not None else None!r}")
    await asyncio.sleep(0.3)  # anything wrongly sent to C would be there by now
    if any(n == "news" for _, n, _m in c.events):
        raise RuntimeError("C, not subscribed, got an event of news")
    return f"B got n1 ({msg['type'] or 'normal'} message to {msg['to']})"


async def retract(a, b, c):
    await a["xep_0060"].retract(SERVICE, "news", "n1", timeout=STEP)
    await b.wait_event("retract", "news", "n1")
    left = await items_of(b, "news")
    if left:
        raise RuntimeError(f"items after the retraction: {left}")
    return "B got the retraction; the node is empty"


async def items(a, b, c):
    for i in (1, 2, 3):
        await publish(a, "news", f"s{i}", f"story {i}")
    newest = await items_of(b, "news", max_items=2)
    if sorted(i for i, _ in newest) != ["s2", "s3"]:
        raise RuntimeError(f"max_items=2 gave {newest}")
    got = await items_of(b, "news", item_ids=["s1"])
    if got != [("s1", "story 1")]:
        raise RuntimeError(f"item s1 by id: {got}")
    return f"max_items=2 gave {[i for i, _ in newest]}; s1 by id"


async def affiliations(a, b, c):
    ps = a["xep_0060"]
    await ps.create_node(SERVICE, "secret", config=config_form(a, access_model="whitelist"), timeout=STEP)
    await publish(a, "secret", "k1", "the key")
    e1 = await expect_error(items_of(c, "secret"), "not-allowed", "closed-node", "C reading the whitelist node")
    e2 = await expect_error(c["xep_0060"].subscribe(SERVICE, "secret", timeout=STEP), "not-allowed", "closed-node",
                            "C subscribing to the whitelist node")
    await ps.modify_affiliations(SERVICE, "secret", affiliations=[(JID_C, "member")], timeout=STEP)
    got = await items_of(c, "secret")
    if got != [("k1", "the key")]:
        raise RuntimeError(f"C, a member, read {got}")
    await c["xep_0060"].subscribe(SERVICE, "secret", timeout=STEP)
    iq = await c["xep_0060"].get_affiliations(SERVICE, timeout=STEP)
    mine = [(x["node"], x["affiliation"]) for x in iq["pubsub"]["affiliations"]]
    if ("secret", "member") not in mine:
        raise RuntimeError(f"C's affiliations: {mine}")
    iq = await ps.get_node_affiliations(SERVICE, "secret", timeout=STEP)
    theirs = [(str(x["jid"]), x["affiliation"]) for x in iq["pubsub_owner"]["affiliations"]]
    if (JID_C, "member") not in theirs or (JID_A, "owner") not in theirs:
        raise RuntimeError(f"the node's affiliations: {theirs}")
    return f"C refused ({e1}; {e2}), then a member: read and subscribed"


async def delete(a, b, c):
    ps = a["xep_0060"]
    await ps.create_node(SERVICE, "doomed", timeout=STEP)
    await b["xep_0060"].subscribe(SERVICE, "doomed", timeout=STEP)
    await ps.delete_node(SERVICE, "doomed", timeout=STEP)
    await b.wait_event("delete", "doomed")
    e = await expect_error(items_of(b, "doomed"), "item-not-found", None, "items of the deleted node")
    return f"B got the delete event; then {e}"


async def prepare(a, b, c):
    await a["xep_0060"].create_node(SERVICE, "persist", timeout=STEP)
    await publish(a, "persist", "p1", "before the crash")
    await b["xep_0060"].subscribe(SERVICE, "persist", timeout=STEP)
    return "persist has p1; B subscribed"


# ---- phase "after" ----


async def persisted(a, b, c):
    got = await items_of(b, "persist")
    if got != [("p1", "before the crash")]:
        raise RuntimeError(f"persist after the restart: {got}")
    iq = await b["xep_0060"].get_subscriptions(SERVICE, timeout=STEP)
    subs = [(x["node"], x["subscription"]) for x in iq["pubsub"]["subscriptions"]]
    if ("persist", "subscribed") not in subs or ("news", "subscribed") not in subs:
        raise RuntimeError(f"B's subscriptions after the restart: {subs}")
    disco = await b["xep_0030"].get_items(jid=SERVICE, timeout=STEP)
    nodes = sorted(i[1] for i in disco["disco_items"]["items"])
    if nodes != ["news", "persist", "secret"]:
        raise RuntimeError(f"nodes after the restart: {nodes}")
    await publish(a, "persist", "p2", "after the crash")
    await b.wait_event("publish", "persist", "p2")
    got = await items_of(c, "secret")
    if got != [("k1", "the key")]:
        raise RuntimeError(f"C (member) read secret after the restart: {got}")
    return f"p1 kept, subscriptions {subs}, nodes {nodes}; B notified of p2; C still a member"


PHASES = {
    "before": (("a discovery", discovery), ("b create+configure", create_configure), ("c publish+notify", publish_notify),
               ("d retract", retract), ("e items", items), ("f affiliations", affiliations), ("g delete", delete),
               ("h prepare", prepare)),
    "after": (("i persisted", persisted),),
}


async def run():
    a, b, c = Client(USER_A), Client(USER_B), Client(USER_C)
    for x in (a, b, c):
        x.connect((HOST, int(PORT)))
    for x in (a, b, c):
        await asyncio.wait_for(x.started, STEP)
    print(f"login ok: {a.boundjid} {b.boundjid} {c.boundjid}")
    try:
        await slixrun.scenarios(PHASES[PHASE], (a, b, c), describe)
    finally:
        for x in (a, b, c):
            x.disconnect()


if __name__ == "__main__":
    slixrun.main(run, SECONDS)
