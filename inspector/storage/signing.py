"""Signed model files: Ed25519 signatures in a sidecar ``MODEL.sig``, and the policy that checks them.

A model file's checksum (``content_sha256``) catches damage, not intent: anyone
can edit a model and recompute it. A signature can only be made with the private
key, so a station that trusts only the quality team's public key refuses a model
that anyone else relabelled, recalibrated or rebuilt.

The signature lives in a sidecar next to the model (``part.safetensors.sig``, a
small JSON document) rather than inside the model file: it then covers the
model file's exact bytes (SHA-256 of the whole file, and its size), signing never
rewrites the model (its hash, recorded with every decision, stays the same), and a
read-only or released model can be signed by someone other than its author. A
model copied without its sidecar is unsigned, and refused where signatures are
required. Saving a model over a signed one removes the stale sidecar.

Signed message: ``b"inspector-model-signature-v1\\n" + sha256_hex + b"\\n" + size``.
Keys are PEM files: the private key PKCS#8 (written with mode 0600), the public
key SubjectPublicKeyInfo; a key's id is the first 16 hex digits of the SHA-256 of
its raw 32 public bytes.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from inspector.storage.model_file import ModelFileError, signature_path

SIGNATURE_FORMAT = "inspector-model-signature"
SIGNATURE_VERSION = 1
ALGORITHM = "ed25519"
TRUSTED_KEYS_ENV = "INSPECTOR_TRUSTED_KEYS"
"""Extra trusted public key files (``os.pathsep``-separated); naming any makes signatures required."""
REQUIRE_ENV = "INSPECTOR_REQUIRE_SIGNED_MODELS"
"""``1`` requires signed models whatever the settings say (it can only tighten the policy)."""


class SigningError(ValueError):
    """A key or signature file that cannot be made or read (a usage error, exit code 2)."""


def _message(file_sha256: str, size: int) -> bytes:
    return b"inspector-model-signature-v1\n" + file_sha256.encode() + b"\n" + str(size).encode()


def key_id(public_key) -> str:
    """The id of an Ed25519 public key: 16 hex digits of the SHA-256 of its raw bytes."""
    from cryptography.hazmat.primitives import serialization

    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def generate_key_pair(private_path: str | os.PathLike) -> tuple[Path, Path, str]:
    """Make a new Ed25519 key pair: ``PATH`` (private, mode 0600) and ``PATH.pub`` (public).

    Returns:
        The private key file, the public key file and the key id.

    Raises:
        SigningError: if either file exists already (keys are never overwritten) or cannot be written.
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    private_path = Path(private_path)
    public_path = private_path.with_name(private_path.name + ".pub")
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    public_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    for target in (private_path, public_path):
        if target.exists():
            raise SigningError(f"{target} exists; Inspector never overwrites a key file")
    _write_new(private_path, private_pem, 0o600)
    _write_new(public_path, public_pem, 0o644)
    return private_path, public_path, key_id(key.public_key())


def _write_new(path: Path, data: bytes, mode: int) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
    except OSError as exc:
        raise SigningError(f"cannot write {path}: {exc.strerror or exc}") from exc


def load_private_key(path: str | os.PathLike):
    """Read an Ed25519 private key (PEM, PKCS#8, unencrypted).

    Raises:
        SigningError: missing, unreadable, or not an Ed25519 private key.
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except OSError as exc:
        raise SigningError(f"{path}: cannot read the key ({exc.strerror or exc})") from exc
    except (ValueError, TypeError) as exc:
        raise SigningError(f"{path}: not an unencrypted PEM private key ({exc})") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningError(f"{path}: not an Ed25519 key (make one with `inspector sign --new-key PATH`)")
    return key


def load_public_key(path: str | os.PathLike):
    """Read an Ed25519 public key (PEM).

    Raises:
        SigningError: missing, unreadable, or not an Ed25519 public key.
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        key = serialization.load_pem_public_key(Path(path).read_bytes())
    except OSError as exc:
        raise SigningError(f"{path}: cannot read the public key ({exc.strerror or exc})") from exc
    except (ValueError, TypeError) as exc:
        raise SigningError(f"{path}: not a PEM public key ({exc})") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise SigningError(f"{path}: not an Ed25519 public key")
    return key


def sign_model(model_path: str | os.PathLike, private_key_path: str | os.PathLike) -> Path:
    """Sign a model file's exact bytes; writes and returns ``MODEL.sig``.

    The model is verified first (a damaged file is never signed).

    Raises:
        ModelFileError: the model file is not a sound Inspector model.
        SigningError: the key cannot be read or the sidecar cannot be written.
    """
    from inspector.storage.model_file import load_model_file

    model_path = Path(model_path)
    key = load_private_key(private_key_path)
    data = model_path.read_bytes() if model_path.is_file() else b""
    load_model_file(model_path)
    if model_path.read_bytes() != data:
        raise SigningError(f"{model_path} changed while it was being signed; try again")
    digest = hashlib.sha256(data).hexdigest()
    document = {
        "format": SIGNATURE_FORMAT,
        "version": SIGNATURE_VERSION,
        "algorithm": ALGORITHM,
        "key_id": key_id(key.public_key()),
        "file_sha256": digest,
        "file_size": len(data),
        "signature": base64.b64encode(key.sign(_message(digest, len(data)))).decode(),
        "signed": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "model_name": model_path.name,
    }
    target = signature_path(model_path)
    # Named like the model file's temporaries, so that a killed signing leaves nothing the next save keeps.
    temp = target.with_name(f".{target.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    try:
        temp.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        os.replace(temp, target)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise SigningError(f"cannot write {target}: {exc.strerror or exc}") from exc
    return target


@dataclass(frozen=True)
class TrustPolicy:
    """Which model signatures a station or command accepts.

    * no trusted keys and not required: signatures are not looked at;
    * trusted keys, not required: an unsigned model loads, a signed one must verify;
    * required: every model needs a valid signature by a trusted key.

    Attributes:
        keys: Trusted public keys by key id.
        required: Refuse unsigned models.
        sources: Where the keys came from (for messages).
    """

    keys: dict = field(default_factory=dict)
    required: bool = False
    sources: tuple[str, ...] = ()

    @property
    def active(self) -> bool:
        """True when models are checked at all."""
        return self.required or bool(self.keys)

    def check(self, path: str | os.PathLike, data: bytes) -> None:
        """Verify the signature of the model file ``path`` whose bytes are ``data``.

        Raises:
            ModelFileError: unsigned (where required), signed by an untrusted key,
                signed for other bytes, or a signature that does not verify.
        """
        if not self.active:
            return
        sidecar = signature_path(path)
        if not sidecar.is_file():
            if self.required:
                raise ModelFileError(
                    f"{path}: unsigned model refused: signed models are required and {sidecar.name} is "
                    "missing; sign it with `inspector sign MODEL --key KEY`")
            return
        document = self._read(path, sidecar)
        digest = hashlib.sha256(data).hexdigest()
        if document["file_sha256"] != digest or document["file_size"] != len(data):
            raise ModelFileError(f"{path}: refused: the model file changed after it was signed "
                                 f"({sidecar.name} signs other bytes); have the new file signed")
        key = self.keys.get(document["key_id"])
        if key is None:
            trusted = ", ".join(sorted(self.keys)) or "none configured"
            raise ModelFileError(f"{path}: refused: signed with key {document['key_id']}, which is not "
                                 f"trusted here (trusted keys: {trusted})")
        from cryptography.exceptions import InvalidSignature

        try:
            key.verify(base64.b64decode(document["signature"], validate=True), _message(digest, len(data)))
        except (InvalidSignature, ValueError):
            raise ModelFileError(f"{path}: refused: the signature in {sidecar.name} is not valid "
                                 "(forged or damaged)") from None

    @staticmethod
    def _read(path, sidecar: Path) -> dict:
        try:
            document = json.loads(sidecar.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ModelFileError(f"{path}: refused: cannot read its signature {sidecar.name} ({exc})") from exc
        expected = {"key_id": str, "file_sha256": str, "file_size": int, "signature": str}
        if (not isinstance(document, dict) or document.get("format") != SIGNATURE_FORMAT
                or any(not isinstance(document.get(k), t) for k, t in expected.items())):
            raise ModelFileError(f"{path}: refused: {sidecar.name} is not an Inspector model signature")
        if document.get("version") != SIGNATURE_VERSION or document.get("algorithm") != ALGORITHM:
            raise ModelFileError(f"{path}: refused: {sidecar.name} is signature format "
                                 f"{document.get('version')} ({document.get('algorithm')}); this Inspector "
                                 f"reads version {SIGNATURE_VERSION} ({ALGORITHM})")
        return document


def trust_policy(key_files: Iterable[str | os.PathLike], required: bool = False) -> TrustPolicy:
    """A :class:`TrustPolicy` from public key files.

    Raises:
        ModelFileError: a trusted key file cannot be read (no model could be verified
            against it, so loading fails closed, exit code 3).
    """
    keys, sources = {}, []
    for key_file in key_files:
        try:
            key = load_public_key(key_file)
        except SigningError as exc:
            raise ModelFileError(f"trusted key {exc}; no model can be verified against it") from exc
        keys[key_id(key)] = key
        sources.append(str(key_file))
    return TrustPolicy(keys=keys, required=required, sources=tuple(sources))


def default_trust_policy(extra_keys: Iterable[str | os.PathLike] = ()) -> TrustPolicy:
    """The policy from the settings file, the environment and ``extra_keys`` (e.g. ``--trusted-key``).

    Settings ``trusted_keys`` (relative paths are taken from the settings folder) and
    ``require_signed_models``; :data:`TRUSTED_KEYS_ENV` and ``extra_keys`` add keys and
    make signatures required; :data:`REQUIRE_ENV` ``=1`` requires them.
    """
    from inspector.storage.settings import default_settings_path, load_settings

    settings_path = default_settings_path()
    settings, _ = load_settings(settings_path)
    keys = [settings_path.parent / p for p in settings.trusted_keys]
    named = [p for p in os.environ.get(TRUSTED_KEYS_ENV, "").split(os.pathsep) if p] + [str(p) for p in extra_keys]
    required = settings.require_signed_models or bool(named) or os.environ.get(REQUIRE_ENV) == "1"
    return trust_policy([*keys, *named], required=required)
