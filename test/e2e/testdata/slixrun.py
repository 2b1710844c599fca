"""What the slixmpp interop scripts share: running their scenarios and reporting (slixmpp_pep.py,
slixmpp_conversion.py). Imported from the scripts' own directory."""

import asyncio
import logging
import os
import sys
import time

from slixmpp.exceptions import IqError, IqTimeout

NS_PUBSUB_ERRORS = "http://jabber.org/protocol/pubsub#errors"


def describe(e):
    """type/condition/pubsub-app-condition: text of an IqError (or "timeout")."""
    if isinstance(e, IqTimeout):
        return "timeout"
    err = e.iq["error"]
    apps = [c.tag.split("}", 1)[1] for c in err.xml if c.tag.startswith("{" + NS_PUBSUB_ERRORS + "}")]
    return f"{err['type']}/{err['condition']}" + "".join("/" + a for a in apps) + (
        f": {err['text']}" if err["text"] else ""
    )


async def scenarios(steps, args, describe):
    """Runs every (name, coroutine function) of steps with args, even after a failure; raises with every failure."""
    failures = []
    for name, scenario in steps:
        try:
            print(f"{name}: ok: {await scenario(*args)}", flush=True)
        except (IqError, IqTimeout) as e:
            failures.append(f"{name}: {describe(e)}")
            print(f"{name}: FAILED: {describe(e)}", flush=True)
        except Exception as e:  # noqa: BLE001 - every scenario is reported
            failures.append(f"{name}: {e}")
            print(f"{name}: FAILED: {type(e).__name__}: {e}", flush=True)
    if failures:
        raise RuntimeError("; ".join(failures))


async def make_contacts(a, b, jid_a, jid_b, step):
    """A and B subscribe to each other; both auto-approve."""
    await a.update_roster(jid_b, name="Bee", timeout=step)
    a.send_presence_subscription(pto=jid_b)
    b.send_presence_subscription(pto=jid_a)
    deadline = time.monotonic() + step
    while time.monotonic() < deadline:
        if a.client_roster[jid_b]["subscription"] == "both" and b.client_roster[jid_a]["subscription"] == "both":
            return
        await asyncio.sleep(0.05)
    raise RuntimeError(
        f"not mutual contacts: A→B {a.client_roster[jid_b]['subscription']}, "
        f"B→A {b.client_roster[jid_a]['subscription']}"
    )


def main(run, seconds):
    """Runs run() within seconds; prints RESULT: PASS or RESULT: FAIL and exits 0 or 1."""
    logging.basicConfig(level=getattr(logging, os.environ.get("SLIX_LOG", "ERROR")))
    loop = asyncio.get_event_loop()
    code = 0
    try:
        loop.run_until_complete(asyncio.wait_for(run(), seconds))
        print("RESULT: PASS")
    except Exception as e:  # report any failure the same way
        print(f"RESULT: FAIL: {type(e).__name__}: {e}")
        code = 1
    # Skip interpreter teardown: with TLS transports still pending it has crashed (SIGSEGV) in python3.11 after a
    # failure.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
