"""Writes the daemon's events to etcd (and optional webhooks) aside from the HA loop.

`record_event(kind, message, **facts)` only puts the event in a queue: the HA cycle never waits
for etcd or a webhook because of an event. A thread writes each event (dcs.ClusterStore.
append_event, which also drops the oldest past the cap). While etcd is unreachable the events
wait in the queue (bounded: the oldest are dropped with a log line) and are written when it
answers again, with the time they happened.

Webhooks: a URL per event kind (or "*" for all) in the node file, `hatui: {webhooks: {kind: url}}`;
each is a JSON POST with a short timeout, sent by the same thread after the etcd write, so a slow
receiver delays later events, never the HA loop.
"""

from __future__ import annotations

import collections
import json
import logging
import threading
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

from ..etcd.store import ClusterStore, DCSError
from ..events import DEFAULT_CAP, Event, make_event

log = logging.getLogger("hatui.events")

QUEUE_LIMIT = 500
WEBHOOK_TIMEOUT = 3.0


class EventRecorder:
    def __init__(self, store: ClusterStore, member: str, cap: int = DEFAULT_CAP,
                 webhooks: Mapping[str, str] | None = None,
                 on_written: Callable[[Event], None] | None = None) -> None:
        self.store = store
        self.member = member
        self.cap = cap
        self.webhooks = dict(webhooks or {})
        self.on_written = on_written
        self._pending: collections.deque[Event] = collections.deque()
        self._cond = threading.Condition()
        self._stop = False
        self._thread: threading.Thread | None = None

    def start(self) -> EventRecorder:
        self._thread = threading.Thread(target=self._run, name="hatui-events", daemon=True)
        self._thread.start()
        return self

    def record_event(self, kind: str, message: str, **facts: Any) -> Event:
        """The one entry point: queue an event about this member; returns it (not yet written)."""
        ev = make_event(kind, self.member, message, **facts)
        log.info("event %s: %s", kind, message)
        with self._cond:
            if len(self._pending) >= QUEUE_LIMIT:
                dropped = self._pending.popleft()
                log.warning("event queue full: dropped the oldest unwritten event (%s at %s)",
                            dropped.kind, dropped.time)
            self._pending.append(ev)
            self._cond.notify()
        return ev

    def flush(self, timeout: float) -> bool:
        """Wait until the queue is written (on shutdown); False if etcd did not take it in time."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._pending, timeout)

    def stop(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=2)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._pending or self._stop)
                if self._stop:
                    return
                ev = self._pending[0]
            try:
                self.store.append_event(ev, self.cap)
            except DCSError:
                # etcd is away: keep the event, try again in a second (the loop logs the loss).
                with self._cond:
                    self._cond.wait(1.0)
                continue
            except Exception:
                log.exception("could not write event %s; dropped", ev.kind)
            with self._cond:
                if self._pending and self._pending[0] is ev:
                    self._pending.popleft()
                self._cond.notify_all()
            if self.on_written:
                self.on_written(ev)
            self._send_webhook(ev)

    def _send_webhook(self, ev: Event) -> None:
        url = self.webhooks.get(ev.kind) or self.webhooks.get("*")
        if not url:
            return
        body = json.dumps({"scope": self.store.scope, **ev.to_json()}, default=str).encode()
        req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=WEBHOOK_TIMEOUT) as resp:
                resp.read()
        except Exception as exc:  # noqa: BLE001 - a webhook receiver's trouble is only logged
            log.warning("webhook for event %s to %s failed: %s", ev.kind, url, exc)
