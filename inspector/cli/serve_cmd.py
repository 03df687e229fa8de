"""``inspector serve``: the station without a window, for a line PC (see :mod:`inspector.workers.line_service`)."""

from __future__ import annotations

import sys

HELP = "run the station without a window: results to the database, MQTT and OPC UA; triggers and recipes"

DRAIN_S = 5.0


def add_arguments(parser) -> None:
    """Arguments of ``inspector serve``."""
    from inspector.cli.common import add_runtime
    from inspector.sources.registry import spec_examples

    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--model", metavar="MODEL", help="model file")
    what.add_argument("--recipe", metavar="NAME", help="a recipe (inspector recipe add): model, threshold, source, maps")
    parser.add_argument("--source", metavar="SPEC", help=f"{spec_examples()} (default: the recipe's)")
    parser.add_argument("--db", metavar="PATH", help="results database (default: from settings, else the user data folder)")
    add_runtime(parser)
    parser.add_argument("--mqtt", metavar="URL",
                        help="publish every decision to mqtt[s]://[user@]host[:port][/prefix][?ca=FILE&cert=FILE&"
                             "key=FILE] (topics PREFIX/STATION/decision, /status retained, /command subscribed; "
                             "mqtts: TLS, the broker's certificate verified against ca or the system's CAs; the "
                             "password from INSPECTOR_MQTT_PASSWORD)")
    parser.add_argument("--station", metavar="NAME", help="the station's topic level (default: the host name)")
    parser.add_argument("--outbox", metavar="DIR",
                        help="where decisions wait for the broker (default: DB.mqtt-outbox beside the database)")
    parser.add_argument("--opcua", metavar="ENDPOINT", nargs="?", const="opc.tcp://127.0.0.1:4840/inspector",
                        help="serve OPC UA at ENDPOINT (default opc.tcp://127.0.0.1:4840/inspector)")
    parser.add_argument("--opcua-allow-remote", action="store_true",
                        help="allow an OPC UA endpoint on a non-loopback address (use it with --opcua-security)")
    parser.add_argument("--opcua-security", choices=("none", "sign", "sign-encrypt"), default="none",
                        help="none: the None policy only (default, for loopback); sign: only Basic256Sha256 "
                             "Sign or SignAndEncrypt; sign-encrypt: only Basic256Sha256 SignAndEncrypt. "
                             "A client without security cannot open a session")
    parser.add_argument("--opcua-cert", metavar="FILE",
                        help="with --opcua-security: the server's application instance certificate (RSA 2048+, "
                             "PEM or DER, its application URI in the subject alternative names)")
    parser.add_argument("--opcua-key", metavar="FILE", help="with --opcua-security: its unencrypted private key")
    parser.add_argument("--opcua-trust", metavar="DIR",
                        help="with --opcua-security: accept only client certificates in DIR (or issued by a CA "
                             "certificate in DIR; CRLs in DIR/crl); default: any client certificate valid now")
    parser.add_argument("--trigger", choices=("free", "opcua", "mqtt", "hotfolder"), default="free",
                        help="free: inspect continuously; opcua / mqtt: one frame per Trigger call or 'trigger' "
                             "command; hotfolder: one per file appearing (a hotfolder:PATH source)")
    parser.add_argument("--maps", choices=("off", "fast", "gradient", "fast+gradient"),
                        help="segmentation mode (default: the recipe's, else from settings)")
    parser.add_argument("--quit-after", type=int, metavar="N",
                        help="decide N frames, record and publish them, then exit 0 (4: some only in the journal)")
    parser.add_argument("--drain", type=float, default=DRAIN_S, metavar="S",
                        help=f"at exit, wait up to S seconds for the broker to acknowledge (default {DRAIN_S:g}); "
                             "the rest waits in the outbox for the next start")


def run(args) -> int:
    """Run the service (Qt is imported here, so other commands never load it)."""
    if args.quit_after is not None and args.quit_after < 1:
        raise ValueError("--quit-after needs a positive number of frames")
    if args.drain < 0:
        raise ValueError("--drain needs a number of seconds >= 0")
    if args.mqtt:
        from inspector.line.messages import parse_mqtt_url

        parse_mqtt_url(args.mqtt)
    if args.opcua:
        from inspector.line.opcua_server import check_endpoint, check_security

        check_endpoint(args.opcua, args.opcua_allow_remote)
        check_security(args.opcua_security, args.opcua_cert, args.opcua_key, args.opcua_trust)
    elif args.opcua_cert or args.opcua_key or args.opcua_trust or args.opcua_security != "none":
        raise ValueError("--opcua-security, --opcua-cert, --opcua-key and --opcua-trust go with --opcua")
    import logging

    from inspector.workers.serve_runner import ServeOptions, run_service

    for name in ("inspector.serve", "inspector.line", "inspector.workers.model_worker"):  # a service says what it does, even without -v
        logging.getLogger(name).setLevel(min(logging.INFO, logging.getLogger().getEffectiveLevel()))

    options = ServeOptions(model=args.model, recipe=args.recipe, source=args.source, db=args.db, mqtt=args.mqtt,
                           opcua=args.opcua, opcua_allow_remote=args.opcua_allow_remote,
                           opcua_security=args.opcua_security, opcua_cert=args.opcua_cert, opcua_key=args.opcua_key,
                           opcua_trust=args.opcua_trust, quit_after=args.quit_after,
                           trigger=args.trigger, station=args.station, outbox=args.outbox, maps=args.maps,
                           drain_s=args.drain, runtime=args.runtime)
    return run_service(options)


def main(argv: list[str] | None = None) -> int:
    """``python -m inspector.cli.serve_cmd ...``: the command on its own (until it is registered in main)."""
    import argparse
    import logging

    from inspector.storage.recipes import RecipeError

    parser = argparse.ArgumentParser(prog="inspector serve", description=HELP)
    parser.add_argument("-v", "--verbose", action="store_true", help="log details to stderr")
    add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        return run(args)
    except (RecipeError, ValueError, OSError) as exc:
        print(f"inspector: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
