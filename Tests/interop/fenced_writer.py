"""A leader's work for the election tests: run by ``ldlm-elect``, it writes its
``LDLM_FENCING_TOKEN`` to the fake fenced resource every 50 ms, and reports
when SIGTERM stops it.

Usage: fenced_writer.py URL WRITER_ID
"""
import json
import os
import signal
import sys
import time
import urllib.error
import urllib.request

URL, WRITER = sys.argv[1], sys.argv[2]
TOKEN = int(os.environ["LDLM_FENCING_TOKEN"])


def post(event: str) -> None:
    body = json.dumps({"writer": WRITER, "token": TOKEN, "pid": os.getpid(), "event": event}).encode()
    try:
        urllib.request.urlopen(urllib.request.Request(URL, data=body), timeout=2).close()
    except urllib.error.HTTPError:
        pass  # refused: a newer leader wrote with a larger token


def on_sigterm(_signum, _frame):
    post("terminated")
    sys.exit(0)


signal.signal(signal.SIGTERM, on_sigterm)
while True:
    post("write")
    time.sleep(0.05)
