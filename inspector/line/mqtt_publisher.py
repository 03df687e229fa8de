"""Publishing decisions over MQTT (paho-mqtt 2.x) with nothing lost. No Qt.

:meth:`MqttPublisher.submit` is called on the inspection thread: it encodes the
message and appends it to the :class:`~inspector.line.outbox.Outbox` (one
``write``, tens of microseconds) and wakes the publisher thread; it never waits
for the network. The publisher thread fsyncs the outbox, hands pending messages
to paho in order (QoS 1, at most :data:`WINDOW` unacknowledged), and removes a
message from the outbox only when the broker's PUBACK for it arrived. paho
resends unacknowledged messages after a reconnect; after a station restart the
outbox hands them again, in order. Delivery is at least once: consumers drop
duplicates by ``uid``.

Topics: ``<prefix>/<station>/decision`` (QoS 1), ``<prefix>/<station>/status``
(retained; ``offline`` as the last will; not for ``status=False``, e.g. ``inspector
score``, which is no station), ``<prefix>/<station>/command`` (subscribed only when
there is an ``on_command``).

Security comes from the :class:`~inspector.line.messages.MqttAddress`: ``mqtts://``
is TLS with the broker's certificate and host name verified (a CA file, else the
system's CAs; optionally a client certificate), and a user name with its password
(never logged).
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import uuid
from typing import Any, Callable

from inspector.line.messages import MqttAddress, encode, status_message
from inspector.line.outbox import Outbox, OutboxEntry

logger = logging.getLogger(__name__)

WINDOW = 20
"""Messages handed to paho and not yet acknowledged, at most."""
KEEPALIVE_S = 5


class MqttPublisher:
    """Publishes decisions and the station status through a durable outbox.

    Args:
        address: The broker and topic prefix.
        station: The station's topic level.
        outbox: The outbox folder.
        on_command: Called on paho's thread with each command (a dict with ``"command"``).
        client_id: MQTT client id (default: ``inspector-<station>-<random>``).
        status: Publish the retained status and the ``offline`` last will (a station); ``False``
            for a batch job that only sends decisions.

    Raises:
        ValueError: TLS files that are not usable PEM certificates or keys.
        OSError: the outbox is in use by another process.
    """

    def __init__(self, address: MqttAddress, station: str, outbox: str, *,
                 on_command: Callable[[dict[str, Any]], None] | None = None, client_id: str | None = None,
                 status: bool = True) -> None:
        import paho.mqtt.client as mqtt

        self.address = address
        self.station = station
        self.decision_topic = address.topic(station, "decision")
        self.status_topic = address.topic(station, "status")
        self.command_topic = address.topic(station, "command")
        self._on_command = on_command
        self._acks: queue.SimpleQueue[int] = queue.SimpleQueue()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._inflight: dict[int, str] = {}  # mid -> uid, only touched on the publisher thread
        self._connected = threading.Event()
        self._status: dict[str, Any] | None = None
        self._status_dirty = False
        self._lock = threading.Lock()
        self.published = 0
        self.acknowledged = 0
        self.connections = 0
        self._drain_s = 0.0
        self._with_status = bool(status)
        self._failures = 0
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                             client_id=client_id or f"inspector-{station}-{uuid.uuid4().hex[:8]}",
                             clean_session=True)
        client.max_inflight_messages_set(WINDOW)
        client.reconnect_delay_set(min_delay=1, max_delay=2)
        if address.username:
            client.username_pw_set(address.username, address.password)
        if address.tls:
            _set_tls(client, address)
        if self._with_status:
            client.will_set(self.status_topic, encode(status_message(station, "offline")), qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        self._client = client
        self.outbox = Outbox(outbox)  # last: a refused TLS file leaves no outbox locked
        self._thread = threading.Thread(target=self._run, name="mqtt publisher", daemon=True)

    # -- life ----------------------------------------------------------------------

    def start(self) -> None:
        """Connect in the background (retried until it works) and start the publisher thread."""
        self._client.connect_async(self.address.host, self.address.port, keepalive=KEEPALIVE_S)
        self._client.loop_start()
        self._thread.start()
        waiting = len(self.outbox)
        if waiting:
            logger.info("mqtt: %d decisions of an earlier run wait in the outbox %s", waiting, self.outbox.folder)

    def stop(self, drain_s: float = 5.0) -> int:
        """Deliver what waits (for at most ``drain_s`` seconds), publish ``stopped``, disconnect.

        Returns:
            How many messages are still in the outbox (delivered at the next start).
        """
        self._drain_s = max(0.0, float(drain_s))
        self._stopping.set()
        self._wake.set()
        if self._thread.ident is not None:  # started
            self._thread.join(timeout=self._drain_s + 5.0)
        if self._connected.is_set() and self._with_status:
            status = dict(self._status or status_message(self.station, "stopped"), state="stopped")
            info = self._client.publish(self.status_topic, encode(status), qos=1, retain=True)
            try:
                info.wait_for_publish(timeout=1.0)
            except (RuntimeError, ValueError):
                pass
        self._client.disconnect()
        self._client.loop_stop()
        left = len(self.outbox)
        self.outbox.close()
        if left:
            logger.warning("mqtt: %d decisions not yet acknowledged by %s wait in the outbox %s",
                           left, self.address.describe(), self.outbox.folder)
        return left

    @property
    def connected(self) -> bool:
        """Whether the broker connection is up."""
        return self._connected.is_set()

    # -- called from other threads ----------------------------------------------------

    def submit(self, message: dict[str, Any]) -> None:
        """Queue one decision message durably (thread-safe, never blocks on the network)."""
        uid = str(message.get("uid") or uuid.uuid4().hex)
        self.outbox.append(OutboxEntry(uid, self.decision_topic, encode(message)))
        self._wake.set()

    def set_status(self, state: str, **fields: Any) -> None:
        """Publish a new retained status (now if connected, else on connecting); an unchanged one is not sent."""
        if not self._with_status:
            return
        with self._lock:
            previous = self._status or {}
            if previous.get("state") == state and all(previous.get(k) == v for k, v in fields.items()):
                return
            self._status = status_message(self.station, state, **fields)
            self._status_dirty = True
        self._wake.set()

    # -- the publisher thread ------------------------------------------------------------

    def _run(self) -> None:
        deadline: float | None = None
        while True:
            self._wake.wait(timeout=0.25)
            self._wake.clear()
            self._take_acks()
            if self._stopping.is_set():
                if deadline is None:
                    deadline = time.monotonic() + self._drain_s
                if not len(self.outbox) or time.monotonic() >= deadline:
                    break
            try:
                self.outbox.sync()
            except OSError as exc:
                logger.error("mqtt outbox %s cannot be synced: %s", self.outbox.folder, exc)
            if self._connected.is_set():
                self._publish_status()
                self._hand()

    def _take_acks(self) -> None:
        while True:
            try:
                mid = self._acks.get_nowait()
            except queue.Empty:
                return
            uid = self._inflight.pop(mid, None)
            if uid is not None:
                self.outbox.ack(uid)
                self.acknowledged += 1

    def _hand(self) -> None:
        """Give paho the next pending messages, in order, up to the window."""
        free = WINDOW - len(self._inflight)
        if free <= 0:
            return
        for entry in self.outbox.pending(start=len(self._inflight), limit=free):
            info = self._client.publish(entry.topic, entry.payload, qos=1)
            self._inflight[info.mid] = entry.uid
            self.published += 1

    def _publish_status(self) -> None:
        with self._lock:
            if not self._status_dirty or self._status is None:
                return
            status, self._status_dirty = self._status, False
        self._client.publish(self.status_topic, encode(status), qos=1, retain=True)

    # -- paho callbacks (paho's network thread) ------------------------------------------------

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self._failures += 1
            if self._failures in (1, 10) or self._failures % 100 == 0:
                logger.warning("mqtt: %s refused the connection: %s (decisions wait in the outbox; retrying)",
                               self.address.describe(), reason_code)
            return
        self.connections += 1
        self._failures = 0
        logger.info("mqtt: connected to %s", self.address.describe())
        if self._on_command is not None:
            client.subscribe(self.command_topic, qos=1)
        with self._lock:
            self._status_dirty = self._status is not None
        self._connected.set()
        self._wake.set()

    def _on_connect_fail(self, client, userdata) -> None:
        """No connection (broker down, TLS handshake refused, ...): said once, then every 100 tries."""
        self._failures += 1
        if self._failures in (1, 10) or self._failures % 100 == 0:
            logger.warning("mqtt: cannot connect to %s (try %d; decisions wait in the outbox; retrying)",
                           self.address.describe(), self._failures)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        if self._connected.is_set() and not self._stopping.is_set():
            logger.warning("mqtt: lost the connection to %s (%s); decisions wait in the outbox",
                           self.address.describe(), reason_code)
        self._connected.clear()

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        # paho holds its message lock here: hand the ack to the publisher thread, touch nothing else.
        self._acks.put(mid)
        self._wake.set()

    def _on_message(self, client, userdata, message) -> None:
        if self._on_command is None:
            return
        text = message.payload.decode("utf-8", "replace").strip()
        try:
            command = json.loads(text) if text.startswith("{") else {"command": text}
        except ValueError:
            logger.warning("mqtt: command %r is not JSON; ignored", text[:80])
            return
        if not isinstance(command, dict) or not isinstance(command.get("command"), str):
            logger.warning("mqtt: command %r has no \"command\"; ignored", text[:80])
            return
        try:
            self._on_command(command)
        except Exception:  # noqa: BLE001 - a bad command never stops publishing
            logger.exception("mqtt: command %r failed", command)


def _set_tls(client: Any, address: MqttAddress) -> None:
    """TLS 1.2+ with the broker's certificate and host name verified; a client certificate if given."""
    import ssl

    try:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=address.ca_file)
    except (ssl.SSLError, OSError) as exc:
        raise ValueError(f"--mqtt: CA file {address.ca_file}: not a PEM certificate bundle ({exc})") from exc
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if address.cert_file:
        try:
            context.load_cert_chain(address.cert_file, address.key_file)
        except (ssl.SSLError, OSError) as exc:
            key = address.key_file or "(in the certificate file)"
            raise ValueError(f"--mqtt: client certificate {address.cert_file} / key {key}: "
                             f"not a usable PEM certificate and key ({exc})") from exc
    client.tls_set_context(context)
