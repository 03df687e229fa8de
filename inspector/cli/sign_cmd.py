"""``inspector sign``: sign a model file (Ed25519), make a key pair, or check a signature.

    inspector sign --new-key qa.key              # writes qa.key (private, 0600) and qa.key.pub
    inspector sign part.safetensors --key qa.key # writes part.safetensors.sig
    inspector sign part.safetensors --verify qa.key.pub

Stations then refuse unsigned or wrongly signed models with the settings
``trusted_keys`` and ``require_signed_models``, or ``--trusted-key PUB``.
"""

from __future__ import annotations

HELP = "sign a model file with an Ed25519 key (or make a key pair, or check a signature)"


def add_trusted_key(parser) -> None:
    """The ``--trusted-key PUB`` option of the commands that load models (repeatable).

    Naming a key makes signatures required for that run, on top of the settings'
    ``trusted_keys`` / ``require_signed_models``; read it with :func:`trust_from_args`.
    """
    parser.add_argument("--trusted-key", action="append", default=[], metavar="PUB",
                        help="public key whose model signatures are trusted; the model must then carry a valid "
                             "signature by a trusted key (repeatable; adds to the settings' trusted_keys)")


def trust_from_args(args):
    """The trust policy for a command: settings, environment and ``--trusted-key`` (imports torch)."""
    from inspector.storage.signing import default_trust_policy

    return default_trust_policy(getattr(args, "trusted_key", None) or ())


def add_arguments(parser) -> None:
    """Arguments of ``inspector sign``."""
    parser.add_argument("model", metavar="MODEL", nargs="?", help="model file to sign or check")
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--key", metavar="KEY", help="private key file (PEM) to sign MODEL with")
    action.add_argument("--new-key", metavar="PATH",
                        help="make a key pair: PATH (private, keep it secret) and PATH.pub (give it to stations)")
    action.add_argument("--verify", metavar="PUB", action="append",
                        help="check MODEL's signature against this public key (repeatable)")


def run(args) -> int:
    """Sign, make keys or verify; returns the exit code."""
    from inspector.storage import signing

    if args.new_key:
        if args.model:
            raise ValueError("--new-key makes a key pair and takes no MODEL")
        private, public, key = signing.generate_key_pair(args.new_key)
        print(f"private key:  {private} (keep it secret; it signs models)")
        print(f"public key:   {public} (key id {key}; list it in the stations' trusted_keys)")
        return 0
    if not args.model:
        raise ValueError("give the MODEL file to sign or check")
    if args.key:
        sidecar = signing.sign_model(args.model, args.key)
        key = signing.key_id(signing.load_private_key(args.key).public_key())
        print(f"signed:       {args.model} with key {key}")
        print(f"signature:    {sidecar}")
        return 0
    from pathlib import Path

    policy = signing.trust_policy(args.verify, required=True)
    path = Path(args.model)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: model file not found")
    policy.check(path, path.read_bytes())  # raises ModelFileError (exit 3) when refused
    print(f"valid:        {path} is signed by a trusted key")
    return 0
