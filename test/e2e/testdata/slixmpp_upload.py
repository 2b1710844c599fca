#!/usr/bin/python3
"""Interop check of xmppd's XEP-0363 HTTP file upload with Debian's python3-slixmpp (1.8.x, plugin xep_0363,
which uploads with aiohttp).

Usage: slixmpp_upload.py HOST PORT DOMAIN CAFILE USER_A USER_B USER_C PASSWORD [SECONDS]

The accounts must exist (the Go test creates them) and share PASSWORD; A logs in with STARTTLS trusting CAFILE.

  a. upload: A finds upload.DOMAIN in DOMAIN's disco#items, with identity store/file and max-file-size in its
     XEP-0128 form (done here with xep_0030, as the plugin's find_upload_service would: in slixmpp 1.8.3 that
     passes coroutines to asyncio.wait, which Python 3.11 refuses), then uploads 200 KiB as photo.jpg with
     upload_file (slot request, PUT with the slot's headers); the GET URL serves the same bytes as image/jpeg,
     and a Range request the asked part.
  b. too large: the plugin knows the limit from the form (FileTooBig without asking); a slot request beyond it
     gets modify/not-acceptable with <file-too-large><max-file-size/></file-too-large>.

Prints "RESULT: PASS" and exits 0, or "RESULT: FAIL: reason; reason..." and 1. SECONDS (default 30) bounds the
whole run. Run with /usr/bin/python3; SLIX_LOG=DEBUG shows the XML.
"""

import asyncio
import io
import os
import ssl
import sys

import aiohttp
import slixmpp
import slixrun
from slixmpp.exceptions import IqError
from slixmpp.plugins.xep_0363.http_upload import FileTooBig

HOST, PORT, DOMAIN, CAFILE, USER_A, USER_B, USER_C, PASSWORD = sys.argv[1:9]
SECONDS = float(sys.argv[9]) if len(sys.argv) > 9 and sys.argv[9] else 30.0
STEP = min(10.0, SECONDS / 2)
NS_UPLOAD = "urn:xmpp:http:upload:0"


class Client(slixmpp.ClientXMPP):
    def __init__(self, user):
        super().__init__(f"{user}@{DOMAIN}/slix", PASSWORD)
        for p in ("xep_0030", "xep_0004", "xep_0128", "xep_0363"):
            self.register_plugin(p)
        self.ssl_context = ssl.create_default_context(cafile=CAFILE)
        self.started = asyncio.get_event_loop().create_future()
        self.add_event_handler("session_start", self.on_start)

    async def on_start(self, _):
        self.send_presence()
        if not self.started.done():
            self.started.set_result(True)


async def discover(a):
    items = await a["xep_0030"].get_items(jid=DOMAIN, timeout=STEP)
    jids = [i[0] for i in items["disco_items"]["items"]]
    if f"upload.{DOMAIN}" not in jids:
        raise RuntimeError(f"disco#items of {DOMAIN}: {jids}")
    info = await a["xep_0030"].get_info(jid=f"upload.{DOMAIN}", timeout=STEP)
    di = info["disco_info"]
    if ("store", "file") not in [(c, t) for c, t, _, _ in di["identities"]] or NS_UPLOAD not in di["features"]:
        raise RuntimeError(f"disco#info of upload.{DOMAIN}: {di}")
    for form in di.iterables:
        values = form["values"]
        if values["FORM_TYPE"] == [NS_UPLOAD]:
            a["xep_0363"].max_file_size = int(values["max-file-size"])
    a["xep_0363"].upload_service = info["from"]
    if a["xep_0363"].max_file_size == float("+inf"):
        raise RuntimeError("no max-file-size in the form")


async def upload(a):
    await discover(a)
    data = os.urandom(200 * 1024)
    url = await a["xep_0363"].upload_file("photo.jpg", input_file=io.BytesIO(data), domain=DOMAIN, timeout=STEP)
    if a["xep_0363"].upload_service != f"upload.{DOMAIN}":
        raise RuntimeError(f"found the service at {a['xep_0363'].upload_service}")
    async with aiohttp.ClientSession() as http:
        async with http.get(url) as r:
            body = await r.read()
            if r.status != 200 or body != data or r.headers.get("Content-Type") != "image/jpeg":
                raise RuntimeError(f"GET {url}: {r.status} {r.headers.get('Content-Type')} {len(body)} bytes")
        async with http.get(url, headers={"Range": "bytes=100-199"}) as r:
            part = await r.read()
            if r.status != 206 or part != data[100:200]:
                raise RuntimeError(f"Range GET: {r.status}, {len(part)} bytes")
    return url


async def too_large(a):
    limit = a["xep_0363"].max_file_size
    try:
        await a["xep_0363"].upload_file("big.bin", size=limit + 1, input_file=io.BytesIO(b""), domain=DOMAIN, timeout=STEP)
        raise RuntimeError("upload_file accepted a file over max-file-size")
    except FileTooBig:
        pass
    try:
        await a["xep_0363"].request_slot(f"upload.{DOMAIN}", "big.bin", limit + 1, "application/octet-stream", timeout=STEP)
        raise RuntimeError("a slot beyond max-file-size")
    except IqError as e:
        err = e.iq["error"]
        ftl = err.xml.find(f"{{{NS_UPLOAD}}}file-too-large")
        mfs = ftl.find(f"{{{NS_UPLOAD}}}max-file-size") if ftl is not None else None
        if err["type"] != "modify" or err["condition"] != "not-acceptable" or mfs is None or int(mfs.text) != limit:
            raise RuntimeError(f"slot beyond the limit: {err['type']}/{err['condition']} {ET_str(err.xml)}")
    return f"max-file-size {limit}"


def ET_str(x):
    from slixmpp.xmlstream import tostring
    return tostring(x)


async def run():
    a = Client(USER_A)
    a.connect((HOST, int(PORT)))
    await asyncio.wait_for(a.started, STEP)
    try:
        await slixrun.scenarios((("a upload", upload), ("b too large", too_large)), (a,), slixrun.describe)
    finally:
        a.disconnect()


if __name__ == "__main__":
    slixrun.main(run, SECONDS)
