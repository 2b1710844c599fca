#!/usr/bin/python3
"""Interop check of xmppd's XEP-0045 multi-user chat service with Debian's python3-slixmpp (1.8.x, xep_0045).

Usage: slixmpp_muc.py PHASE HOST PORT DOMAIN CAFILE USER_A USER_B USER_C USER_D PASSWORD [SECONDS]

The four accounts must exist (the Go test creates them) and share PASSWORD. All log in with STARTTLS trusting
CAFILE. The service is conference.DOMAIN; A creates and owns every room.

PHASE "before" (a fresh server):
  a. discovery: disco#items of DOMAIN lists conference.DOMAIN; its disco#info says conference/text with muc.
  b. instant room "inst": A enters (201), accepts the defaults with an empty form; B enters; the room is listed.
  c. reserved room "res": A enters, reads the configuration form, sets name, persistence and non-anonymity;
     the room's disco#info says muc_persistent, muc_nonanonymous, with the muc#roominfo form.
  d. history and subject: A sends three messages and sets the subject; C enters asking for 2 stanzas of history
     and gets the last two (delayed, from the room) and the subject.
  e. nicknames: D meets conflict entering as "alice"; B changes nick to "robert" and A sees 303.
  f. private messages: B (robert) writes to inst/alice; A gets it from inst/robert.
  g. roles and affiliations: B (participant) may not kick C (forbidden) nor ban (forbidden); A kicks C (307);
     A bans C (301 is not seen: C is out) and C's entering is forbidden; in the moderated room "mod" D is a
     visitor whose message is refused (forbidden) until A grants voice.
  h. members-only and password room "club": B meets registration-required; A invites B (B gets the invitation
     from the room, with the password); B without the password is not-authorized, with it enters; C declines
     an invitation and A gets the decline.
  i. anonymity: in the semi-anonymous "inst" B sees no real JID of A; in the non-anonymous "res" B sees A's JID.
  j. destroy: A destroys "inst" with an alternate venue and a reason; B gets both.
  k. for the next phase: A sets the subject of "res" and makes B a member; everybody leaves.
PHASE "after" (the same data directory, after xmppd was killed with SIGKILL and started again):
  l. "res" is listed with its name; B enters and gets the subject; A's member list has B; "inst" is gone.

Every scenario runs even if an earlier one failed. Prints "RESULT: PASS" and exits 0, or "RESULT: FAIL: reason;
reason..." and 1. SECONDS (default 30) bounds the whole run. Run with /usr/bin/python3; SLIX_LOG=DEBUG shows the
XML.
"""

import asyncio
import ssl
import sys
import time

import slixmpp
import slixrun
from slixmpp.exceptions import IqError, IqTimeout, PresenceError
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

PHASE, HOST, PORT, DOMAIN, CAFILE, USER_A, USER_B, USER_C, USER_D, PASSWORD = sys.argv[1:11]
SECONDS = float(sys.argv[11]) if len(sys.argv) > 11 and sys.argv[11] else 30.0
STEP = min(10.0, SECONDS / 2)

JID_A, JID_B, JID_C, JID_D = (f"{u}@{DOMAIN}" for u in (USER_A, USER_B, USER_C, USER_D))
SERVICE = f"conference.{DOMAIN}"
INST, RES, MOD, CLUB = (f"{r}@{SERVICE}" for r in ("inst", "res", "mod", "club"))
NS_MUC = "http://jabber.org/protocol/muc"
NS_USER = NS_MUC + "#user"


def find(st, path):
    """The element at path (muc#user names as u:) in st's XML, or None."""
    return st.xml.find(path.replace("u:", "{" + NS_USER + "}"))


class Client(slixmpp.ClientXMPP):
    def __init__(self, user):
        super().__init__(f"{user}@{DOMAIN}/slix", PASSWORD)
        for p in ("xep_0030", "xep_0004", "xep_0045", "xep_0203"):
            self.register_plugin(p)
        self.ssl_context = ssl.create_default_context(cafile=CAFILE)
        self.started = asyncio.get_event_loop().create_future()
        self.got = []  # every message and presence from the service, in order
        self.add_event_handler("session_start", self.on_start)
        self.add_event_handler("failed_all_auth", self.on_no_auth)
        self.add_event_handler("message", self.keep)
        self.add_event_handler("groupchat_message", self.keep)
        self.add_event_handler("groupchat_subject", self.keep)
        self.add_event_handler("groupchat_invite", self.keep)
        self.add_event_handler("groupchat_decline", self.keep)
        self.add_event_handler("groupchat_presence", self.keep)
        self.add_event_handler("groupchat_message_error", self.keep)
        # slixmpp 1.8.3's own decline handler fails (self.room); see declines ourselves.
        self.remove_handler("MUCDecline")
        self.register_handler(Callback("decline", MatchXPath(f"{{jabber:client}}message/{{{NS_USER}}}x/{{{NS_USER}}}decline"), self.keep))

    def keep(self, st):
        if st["from"].domain == SERVICE and not any(x is st for x in self.got):
            self.got.append(st)

    def on_no_auth(self, event):
        if not self.started.done():
            self.started.set_exception(RuntimeError(f"{self.boundjid.bare}: authentication failed"))

    async def on_start(self, event):
        self.send_presence()
        if not self.started.done():
            self.started.set_result(True)

    async def wait_for(self, what, pred, timeout=STEP):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for st in self.got:
                if pred(st):
                    self.got.remove(st)
                    return st
            await asyncio.sleep(0.05)
        raise RuntimeError(f"{self.boundjid.bare}: no {what} (got {[str(s)[:200] for s in self.got]})")

    async def join(self, room, nick, **kw):
        return await self["xep_0045"].join_muc_wait(room, nick, timeout=STEP, **kw)

    def groupchat(self, room, body):
        self.send_message(mto=room, mbody=body, mtype="groupchat")


def roominfo(info):
    """The muc#roominfo field values of a disco#info result, read from the XML."""
    out = {}
    for x in info.xml.iter("{jabber:x:data}x"):
        for f in x.iter("{jabber:x:data}field"):
            v = f.find("{jabber:x:data}value")
            out[f.get("var")] = v.text if v is not None and v.text else ""
    return out


def codes(pres):
    return set(pres["muc"]["status_codes"])


async def expect_join_error(xmpp, room, nick, condition, **kw):
    try:
        await xmpp.join(room, nick, **kw)
    except PresenceError as e:
        # slixmpp 1.8.3 keeps a room it failed to enter, and then ignores the room's invitations.
        xmpp["xep_0045"].rooms.pop(room, None)
        got = e.presence["error"]["condition"]
        if got != condition:
            raise RuntimeError(f"entering {room} as {nick}: want {condition}, got {got}")
        return got
    raise RuntimeError(f"entering {room} as {nick}: want {condition}, entered")


async def expect_iq_error(coro, condition, what):
    try:
        await coro
    except IqError as e:
        if e.iq["error"]["condition"] != condition:
            raise RuntimeError(f"{what}: want {condition}, got {slixrun.describe(e)}")
        return condition
    raise RuntimeError(f"{what}: want {condition}, got a result")


async def submit(xmpp, room, **fields):
    """Submits the room's configuration form with fields changed (keys without the muc#roomconfig_ prefix)."""
    form = await xmpp["xep_0045"].get_room_config(room, timeout=STEP)
    for k, v in fields.items():
        form.field["muc#roomconfig_" + k]["value"] = v
    await xmpp["xep_0045"].set_room_config(room, form, timeout=STEP)


async def instant(xmpp, room, nick):
    pres, _, _, _ = await xmpp.join(room, nick)
    if 201 not in codes(pres):
        raise RuntimeError(f"{room}: self-presence codes {codes(pres)}, want 201 (a new room)")
    await xmpp["xep_0045"].set_room_config(room, xmpp["xep_0004"].make_form(ftype="submit"), timeout=STEP)


# ---- phase "before" ----


async def discovery(a, b, c, d):
    items = await a["xep_0030"].get_items(jid=DOMAIN, timeout=STEP)
    jids = [i[0] for i in items["disco_items"]["items"]]
    if SERVICE not in jids:
        raise RuntimeError(f"disco#items of {DOMAIN}: {jids}")
    info = await a["xep_0030"].get_info(jid=SERVICE, timeout=STEP)
    ids = [(i[0], i[1]) for i in info["disco_info"]["identities"]]
    if ("conference", "text") not in ids or NS_MUC not in info["disco_info"]["features"]:
        raise RuntimeError(f"service disco#info: {ids} {info['disco_info']['features']}")
    return f"{SERVICE}: {ids}"


async def instant_room(a, b, c, d):
    await instant(a, INST, "alice")
    pres, _, occupants, _ = await b.join(INST, "bob")
    if 110 not in codes(pres) or pres["muc"]["role"] != "participant":
        raise RuntimeError(f"B's self-presence: {pres}")
    if [str(o["from"]) for o in occupants] != [f"{INST}/alice", f"{INST}/bob"]:
        raise RuntimeError(f"B saw occupants {[str(o['from']) for o in occupants]}")
    items = await c["xep_0030"].get_items(jid=SERVICE, timeout=STEP)
    listed = {(str(i[0]), i[2]) for i in items["disco_items"]["items"]}
    if (INST, "inst") not in listed:
        raise RuntimeError(f"service items: {listed}")
    return "created, unlocked, entered, listed"


async def reserved_room(a, b, c, d):
    pres, _, _, _ = await a.join(RES, "alice")
    if 201 not in codes(pres):
        raise RuntimeError(f"res: codes {codes(pres)}")
    await submit(a, RES, roomname="Reserved", roomdesc="kept", persistentroom=True, whois="anyone")
    info = await b["xep_0030"].get_info(jid=RES, timeout=STEP)
    feats = info["disco_info"]["features"]
    for f in ("muc_persistent", "muc_nonanonymous", "muc_public", "muc_open", "muc_unsecured"):
        if f not in feats:
            raise RuntimeError(f"res disco#info lacks {f}: {feats}")
    form = roominfo(info)
    if form.get("muc#roominfo_description") != "kept" or form.get("muc#roominfo_occupants") != "1":
        raise RuntimeError(f"roominfo: {form}")
    return f"configured; features {sorted(f for f in feats if f.startswith('muc_'))}"


async def history_subject(a, b, c, d):
    for i in range(1, 4):
        a.groupchat(INST, f"hello {i}")
        await b.wait_for(f"hello {i}", lambda m, i=i: m["type"] == "groupchat" and m["body"] == f"hello {i}")
    a["xep_0045"].set_subject(INST, "Topic")
    await b.wait_for("the subject", lambda m: m["type"] == "groupchat" and m["subject"] == "Topic")
    _, subject, _, hist = await c.join(INST, "carol", maxstanzas=2)
    bodies = [m["body"] for m in hist]
    if bodies != ["hello 2", "hello 3"]:
        raise RuntimeError(f"history {bodies}")
    if subject["subject"] != "Topic" or str(subject["from"]) != f"{INST}/alice":
        raise RuntimeError(f"subject {subject}")
    return f"history {bodies}, subject {subject['subject']!r}"


async def nicknames(a, b, c, d):
    e = await expect_join_error(d, INST, "alice", "conflict")
    b.send_presence(pto=f"{INST}/robert")
    gone = await a.wait_for("303", lambda p: p["type"] == "unavailable" and 303 in codes(p) and str(p["from"]) == f"{INST}/bob")
    if find(gone, "u:x/u:item").get("nick") != "robert":
        raise RuntimeError(f"303 names {find(gone, 'u:x/u:item').attrib}")
    await a.wait_for("robert", lambda p: p["type"] == "available" and str(p["from"]) == f"{INST}/robert")
    return f"{e}; bob → robert"


async def private(a, b, c, d):
    b.send_message(mto=f"{INST}/alice", mbody="psst", mtype="chat")
    m = await a.wait_for("a private message", lambda m: m["type"] == "chat" and m["body"] == "psst")
    if str(m["from"]) != f"{INST}/robert":
        raise RuntimeError(f"PM from {m['from']}")
    return "robert → alice"


async def moderation(a, b, c, d):
    muc = b["xep_0045"]
    e1 = await expect_iq_error(muc.set_role(INST, "carol", "none", timeout=STEP), "forbidden", "kick by a participant")
    e2 = await expect_iq_error(muc.set_affiliation(INST, "outcast", jid=JID_C, timeout=STEP), "forbidden", "ban by a participant")
    await a["xep_0045"].set_role(INST, "carol", "none", reason="out", timeout=STEP)
    kicked = await c.wait_for("307", lambda p: p["type"] == "unavailable" and 307 in codes(p))
    if 110 not in codes(kicked):
        raise RuntimeError(f"kicked without 110: {codes(kicked)}")
    await a["xep_0045"].set_affiliation(INST, "outcast", jid=JID_C, reason="spam", timeout=STEP)
    e3 = await expect_join_error(c, INST, "carol", "forbidden")
    banned = await a["xep_0045"].get_affiliation_list(INST, "outcast", timeout=STEP)
    if [str(j) for j in banned] != [JID_C]:
        raise RuntimeError(f"ban list {banned}")
    # A moderated room: D enters as a visitor.
    await instant(a, MOD, "alice")
    await submit(a, MOD, moderatedroom=True)
    pres, _, _, _ = await d.join(MOD, "dave")
    if pres["muc"]["role"] != "visitor":
        raise RuntimeError(f"D's role {pres['muc']['role']}")
    d.groupchat(MOD, "may I?")
    err = await d.wait_for("an error", lambda m: m["type"] == "error")
    if err["error"]["condition"] != "forbidden":
        raise RuntimeError(f"visitor's message: {err['error']['condition']}")
    await a["xep_0045"].set_role(MOD, "dave", "participant", timeout=STEP)
    await d.wait_for("voice", lambda p: p["type"] == "available" and str(p["from"]) == f"{MOD}/dave" and p["muc"]["role"] == "participant")
    d.groupchat(MOD, "thanks")
    await a.wait_for("D's message", lambda m: m["type"] == "groupchat" and m["body"] == "thanks")
    return f"{e1}, {e2}; kicked 307; banned, then {e3}; visitor refused, then voiced"


async def members_password(a, b, c, d):
    await instant(a, CLUB, "alice")
    await submit(a, CLUB, membersonly=True, passwordprotectedroom=True, roomsecret="cauldron")
    e1 = await expect_join_error(b, CLUB, "bob", "registration-required")
    a["xep_0045"].invite(CLUB, JID_B, reason="come")
    inv = await b.wait_for("the invitation", lambda m: find(m, "u:x/u:invite") is not None and str(m["from"]) == CLUB)
    if find(inv, "u:x/u:invite/u:reason").text != "come" or find(inv, "u:x/u:password").text != "cauldron":
        raise RuntimeError(f"invitation {inv}")
    e2 = await expect_join_error(b, CLUB, "bob", "not-authorized")
    await b.join(CLUB, "bob", password="cauldron")
    c["xep_0045"].decline(CLUB, f"{JID_A}/slix", reason="busy")
    dec = await a.wait_for("the decline", lambda m: find(m, "u:x/u:decline") is not None)
    if find(dec, "u:x/u:decline").get("from") != JID_C:
        raise RuntimeError(f"decline {dec}")
    return f"{e1}; invited (password passed on); {e2}; entered; C declined"


async def anonymity(a, b, c, d):
    muc = b["xep_0045"]
    semi = muc.get_jid_property(INST, "alice", "jid")
    if semi:
        raise RuntimeError(f"semi-anonymous room showed B alice's JID {semi}")
    await b.join(RES, "bob")
    non = muc.get_jid_property(RES, "alice", "jid")
    if str(non) != f"{JID_A}/slix":
        raise RuntimeError(f"non-anonymous room showed B {non!r}")
    return f"inst: none; res: {non}"


async def destroy(a, b, c, d):
    await a["xep_0045"].destroy(INST, reason="moving", altroom=RES, timeout=STEP)
    p = await b.wait_for("the destruction", lambda p: p["type"] == "unavailable" and str(p["from"]).startswith(INST)
                         and p.xml.find(".//{http://jabber.org/protocol/muc#user}destroy") is not None)
    des = p["muc"]["destroy"]
    if str(des["jid"]) != RES or des["reason"] != "moving":
        raise RuntimeError(f"destroy {des}")
    await expect_iq_error(c["xep_0030"].get_info(jid=INST, timeout=STEP), "item-not-found", "disco#info of a destroyed room")
    return "B told the venue and reason; the room is gone"


async def prepare(a, b, c, d):
    a["xep_0045"].set_subject(RES, "Persisted")
    await b.wait_for("the subject", lambda m: m["type"] == "groupchat" and m["subject"] == "Persisted")
    await a["xep_0045"].set_affiliation(RES, "member", jid=JID_B, timeout=STEP)
    return "res: subject set, B a member"


# ---- phase "after" ----


async def persisted(a, b, c, d):
    items = await c["xep_0030"].get_items(jid=SERVICE, timeout=STEP)
    listed = {(str(i[0]), i[2]) for i in items["disco_items"]["items"]}
    if (RES, "Reserved") not in listed or any(j == INST for j, _ in listed):
        raise RuntimeError(f"after the restart the service lists {listed}")
    _, subject, _, _ = await b.join(RES, "bob")
    if subject["subject"] != "Persisted":
        raise RuntimeError(f"subject after the restart: {subject['subject']!r}")
    await a.join(RES, "alice")
    members = await a["xep_0045"].get_affiliation_list(RES, "member", timeout=STEP)
    if [str(j) for j in members] != [JID_B]:
        raise RuntimeError(f"members after the restart: {members}")
    return f"listed {sorted(listed)}; subject kept; members {[str(j) for j in members]}"


PHASES = {
    "before": (("a discovery", discovery), ("b instant room", instant_room), ("c reserved room", reserved_room),
               ("d history+subject", history_subject), ("e nicknames", nicknames), ("f private", private),
               ("g moderation", moderation), ("h members+password", members_password), ("i anonymity", anonymity),
               ("j destroy", destroy), ("k prepare", prepare)),
    "after": (("l persisted", persisted),),
}


async def run():
    clients = [Client(u) for u in (USER_A, USER_B, USER_C, USER_D)]
    for x in clients:
        x.connect((HOST, int(PORT)))
    for x in clients:
        await asyncio.wait_for(x.started, STEP)
    print("login ok: " + " ".join(str(x.boundjid) for x in clients))
    try:
        await slixrun.scenarios(PHASES[PHASE], clients, slixrun.describe)
    finally:
        for x in clients:
            x.disconnect()


if __name__ == "__main__":
    slixrun.main(run, SECONDS)
