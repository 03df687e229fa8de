"""``inspector outbox``: what waits in an MQTT outbox, and delivering it without scoring or serving.

The outbox (:mod:`inspector.line.outbox`) is where ``serve``, the window and ``score --mqtt`` keep
every decision until the broker acknowledged it. ``show`` reads it without opening it (a running
station may be using it); ``flush`` opens it (refused while another process holds it), connects
to the broker and delivers what waits, in order, each message to the topic it was queued for.
"""

from __future__ import annotations

import json
import os
import sys

HELP = "show what waits in an MQTT outbox, or deliver it to the broker (flush)"

FLUSH_TIMEOUT_S = 30.0


def add_arguments(parser) -> None:
    """Arguments of ``inspector outbox``."""
    sub = parser.add_subparsers(dest="outbox_action", metavar="ACTION", required=True)
    show = sub.add_parser("show", help="how many decisions wait, on which topics (the outbox is only read)")
    flush = sub.add_parser("flush", help="deliver what waits to the broker, in order; exit 0 when nothing is left")
    for command in (show, flush):
        command.add_argument("--outbox", metavar="DIR", help="the outbox folder (default: the database's)")
        command.add_argument("--db", metavar="PATH|URL",
                             help="the results database whose outbox it is (DB.mqtt-outbox beside an SQLite file; "
                                  "default: from settings, else the user data folder's)")
        command.add_argument("--station", metavar="NAME",
                             help="with a PostgreSQL --db: the station whose outbox it is (default: host name)")
    flush.add_argument("--mqtt", metavar="URL", required=True,
                       help="the broker, mqtt[s]://[user@]host[:port][/prefix][?ca=FILE&cert=FILE&key=FILE] "
                            "(password: INSPECTOR_MQTT_PASSWORD); each message goes to the topic it was queued for")
    flush.add_argument("--timeout", type=float, default=FLUSH_TIMEOUT_S, metavar="S",
                       help=f"give up after S seconds (default {FLUSH_TIMEOUT_S:g}); what is left stays")


def outbox_folder(args) -> str:
    """The folder ``--outbox``, ``--db`` and ``--station`` name (the same defaults as serve, gui and score)."""
    if args.outbox:
        return os.path.abspath(args.outbox)
    from inspector.cli.score_line import default_outbox
    from inspector.line.messages import default_station_name, safe_level
    from inspector.storage.results_db import default_db_path
    from inspector.storage.settings import load_settings

    settings, _ = load_settings()
    db = args.db or settings.results_db or str(default_db_path())
    station = safe_level(args.station) if args.station else default_station_name()
    return default_outbox(db, station)


def run(args) -> int:
    """Show or flush; exit 0, or 2 when a flush left decisions waiting."""
    from inspector.line.outbox import read_pending

    folder = outbox_folder(args)
    if args.outbox_action == "show":
        pending = read_pending(folder) if os.path.isdir(folder) else []
        topics: dict[str, int] = {}
        for entry in pending:
            topics[entry.topic] = topics.get(entry.topic, 0) + 1
        summary = {"outbox": folder, "pending": len(pending), "topics": topics,
                   "first_uid": pending[0].uid if pending else None, "last_uid": pending[-1].uid if pending else None}
        print(json.dumps(summary))
        return 0
    if args.timeout < 0:
        raise ValueError("--timeout needs a number of seconds >= 0")
    if not os.path.isdir(folder) or not read_pending(folder):
        print(f"inspector: outbox {folder}: nothing waits", file=sys.stderr)
        return 0
    import importlib.util

    from inspector.line.messages import parse_mqtt_url

    address = parse_mqtt_url(args.mqtt)
    if importlib.util.find_spec("paho") is None or importlib.util.find_spec("paho.mqtt") is None:
        raise ValueError("--mqtt needs the line extra: pip install 'inspector[line]' (paho-mqtt, asyncua)")
    from inspector.line.mqtt_publisher import MqttPublisher

    publisher = MqttPublisher(address, "outbox-flush", folder, status=False)  # OSError while another holds it
    waiting = len(publisher.outbox)
    publisher.start()
    left = publisher.stop(drain_s=args.timeout)  # delivers, in order, until empty or the time is up
    print(f"inspector: outbox {folder}: {waiting - left} of {waiting} decision(s) delivered to "
          f"{address.describe()}" + (f"; {left} still wait" if left else ""), file=sys.stderr)
    return 0 if not left else 2
