"""The station as an OPC UA server (asyncua), on its own thread with its own asyncio loop. No Qt.

Nodes, under ``Objects/Inspector`` in namespace ``urn:inspector`` (node ids
``ns=<idx>;s=Inspector.<Name>``): variables ``LastVerdict`` (String: OK, NG),
``LastScore`` (Double, normalized: NG above 1.0), ``LastRawScore``, ``Threshold``
(Double), ``FrameId`` (Int64), ``CountOK``, ``CountNG`` (UInt64), ``ModelHash``,
``Recipe``, ``SourceState``, ``RunState`` (String), ``Drifting`` (Boolean: the
window's drift test on the recent scores); methods ``Trigger() ->
(Verdict, Score)`` (inspects one frame, answers when its verdict is readable),
``Start()``, ``Stop()``, ``SwitchRecipe(Name) -> Result``.

The server binds to a loopback address unless ``allow_remote`` is given. By
default it offers only the ``None`` security policy (fine on loopback). With an
:class:`OpcUaSecurity` (``serve --opcua-security sign|sign-encrypt --opcua-cert
FILE --opcua-key FILE [--opcua-trust DIR]``) it offers only Basic256Sha256
(``sign``: Sign and SignAndEncrypt; ``sign-encrypt``: SignAndEncrypt only) with
that application instance certificate: a client without security cannot open a
session. The client's certificate must be in its validity period and name its
application URI; with a trust folder it must also be in it (or be issued by a CA
certificate in it) and not revoked by a CRL in its ``crl`` sub-folder. Requests go to
``on_request(command)``, which the service turns into queued Qt signals; values
come in through the thread-safe :meth:`OpcUaServer.publish_result` and
:meth:`OpcUaServer.set_values`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit

logger = logging.getLogger(__name__)

NAMESPACE = "urn:inspector"
DEFAULT_ENDPOINT = "opc.tcp://127.0.0.1:4840/inspector"
TRIGGER_TIMEOUT_S = 10.0
VARIABLES = {  # name -> (initial value, variant type name)
    "LastVerdict": ("", "String"), "LastScore": (0.0, "Double"), "LastRawScore": (0.0, "Double"),
    "Threshold": (0.0, "Double"), "FrameId": (-1, "Int64"), "CountOK": (0, "UInt64"),
    "CountNG": (0, "UInt64"), "ModelHash": ("", "String"), "Recipe": ("", "String"),
    "SourceState": ("", "String"), "RunState": ("", "String"), "Drifting": (False, "Boolean"),
}


SECURITY_MODES = ("none", "sign", "sign-encrypt")
"""``--opcua-security``: none (default), Basic256Sha256 Sign (or better), Basic256Sha256 SignAndEncrypt only."""


@dataclass(frozen=True)
class OpcUaSecurity:
    """What a secured OPC UA server needs (checked by :func:`check_security`).

    Attributes:
        mode: ``sign`` or ``sign-encrypt``.
        cert_file, key_file: The server's application instance certificate (RSA, PEM or DER) and its
            private key (unencrypted PEM or DER).
        trust_dir: A folder of trusted client (or CA) certificates and CRLs; ``None``: any client
            certificate that is valid now and names its application URI.
        application_uri: The URI in the certificate's subject alternative names (the server's URI).
    """

    mode: str
    cert_file: str
    key_file: str
    trust_dir: str | None = None
    application_uri: str = "urn:inspector:station"

    def policies(self) -> list[Any]:
        """The asyncua security policy types offered (no ``NoSecurity``)."""
        from asyncua import ua

        types = [ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt]
        if self.mode == "sign":
            types.append(ua.SecurityPolicyType.Basic256Sha256_Sign)
        return types


def check_security(mode: str | None, cert_file: str | None, key_file: str | None,
                   trust_dir: str | None = None) -> OpcUaSecurity | None:
    """The :class:`OpcUaSecurity` of the ``--opcua-security`` options, checked now (``None``: no security).

    Raises:
        ValueError: an unknown mode; certificate files without a mode or a mode without them;
            a file that is not a certificate, a key that is not RSA or not the certificate's;
            a trust folder that does not exist.
    """
    mode = mode or "none"
    if mode not in SECURITY_MODES:
        raise ValueError(f"--opcua-security {mode!r}: one of {', '.join(SECURITY_MODES)}")
    if mode == "none":
        if cert_file or key_file or trust_dir:
            raise ValueError("--opcua-cert, --opcua-key and --opcua-trust go with --opcua-security sign|sign-encrypt")
        return None
    if not cert_file or not key_file:
        raise ValueError(f"--opcua-security {mode} needs the server's certificate and key: --opcua-cert FILE "
                         "--opcua-key FILE (RSA 2048+, PEM or DER)")
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    cert_file, key_file = os.path.abspath(cert_file), os.path.abspath(key_file)
    try:
        data = Path(cert_file).read_bytes()
        cert = x509.load_pem_x509_certificate(data) if _is_pem(data) else x509.load_der_x509_certificate(data)
    except (OSError, ValueError) as exc:
        raise ValueError(f"--opcua-cert {cert_file}: not a readable X.509 certificate ({exc})") from exc
    try:
        data = Path(key_file).read_bytes()
        key = (serialization.load_pem_private_key(data, None) if _is_pem(data)
               else serialization.load_der_private_key(data, None))
    except (OSError, ValueError, TypeError) as exc:
        raise ValueError(f"--opcua-key {key_file}: not a readable unencrypted private key ({exc})") from exc
    if not isinstance(key, rsa.RSAPrivateKey) or key.key_size < 2048:
        raise ValueError(f"--opcua-key {key_file}: Basic256Sha256 needs an RSA key of 2048 bits or more")
    if cert.public_key().public_numbers() != key.public_key().public_numbers():
        raise ValueError(f"--opcua-key {key_file} is not the key of the certificate {cert_file}")
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        uris = san.get_values_for_type(x509.UniformResourceIdentifier)
    except x509.ExtensionNotFound:
        uris = []
    if not uris:
        raise ValueError(f"--opcua-cert {cert_file}: an OPC UA application certificate names its application URI "
                         "in the subject alternative names (URI:urn:...)")
    if trust_dir is not None:
        trust_dir = os.path.abspath(trust_dir)
        if not os.path.isdir(trust_dir):
            raise ValueError(f"--opcua-trust {trust_dir}: not a folder of trusted certificates")
    return OpcUaSecurity(mode, cert_file, key_file, trust_dir, str(uris[0]))


class _SecuredSessionsOnly:
    """asyncua user manager: a session is activated only over a secured channel (one with a client certificate).

    asyncua keeps accepting ``None`` secure channels for discovery (GetEndpoints) even when
    ``NoSecurity`` is not offered, and would then activate a session on them too; this closes
    that door: only Basic256Sha256 channels, whose certificate passed the validator, get a session.
    """

    def get_user(self, iserver: Any, username: str | None = None, password: str | None = None,
                 certificate: Any = None) -> Any:
        from asyncua.crypto.permission_rules import User, UserRole

        if not certificate:
            logger.warning("OPC UA: a session without security was refused (this station requires Basic256Sha256)")
            return None
        return User(role=UserRole.User)


def _is_pem(data: bytes) -> bool:
    return data.lstrip().startswith(b"-----BEGIN")


def check_endpoint(endpoint: str, allow_remote: bool = False) -> str:
    """``endpoint`` if it is an ``opc.tcp://host:port[/path]`` URL this station may bind.

    Raises:
        ValueError: another scheme, no port, or a non-loopback host without ``allow_remote``.
    """
    parts = urlsplit(endpoint)
    if parts.scheme != "opc.tcp" or not parts.hostname:
        raise ValueError(f"--opcua {endpoint!r}: expected opc.tcp://host:port/path")
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"--opcua {endpoint!r}: {exc}") from exc
    if port is None:
        raise ValueError(f"--opcua {endpoint!r}: give the port (4840 is the usual one)")
    if not allow_remote and not _is_loopback(parts.hostname):
        raise ValueError(f"--opcua {endpoint!r}: binds to {parts.hostname}, not a loopback address; "
                         "add --opcua-allow-remote to serve other machines (and --opcua-security sign-encrypt "
                         "with a certificate, or keep it on the line's own network)")
    return endpoint


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class OpcUaServer:
    """The OPC UA face of the station (see the module docstring).

    Args:
        endpoint: ``opc.tcp://host:port/path`` (checked by :func:`check_endpoint` first).
        on_request: Called on the server's thread with ``{"command": "trigger" | "start" | "stop" |
            "recipe", "name": ...}``; must be quick and thread-safe. For ``recipe`` it returns an
            error text or ``""``.
        security: Basic256Sha256 only, with this certificate (``None``: the ``None`` policy only).
    """

    def __init__(self, endpoint: str, on_request: Callable[[dict[str, Any]], Any],
                 security: OpcUaSecurity | None = None) -> None:
        self.endpoint = endpoint
        self.security = security
        self._on_request = on_request
        self._loop: asyncio.AbstractEventLoop | None = None
        self._nodes: dict[str, Any] = {}
        self._types: dict[str, Any] = {}
        self._triggers: list[asyncio.Future] = []
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._stopped: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._thread_main, name="opc ua server", daemon=True)
        self.namespace_index: int | None = None

    # -- life ----------------------------------------------------------------------

    def start(self, timeout_s: float = 30.0) -> None:
        """Start the server thread and wait until it listens.

        Raises:
            OSError: if it cannot bind or start within ``timeout_s``.
        """
        self._thread.start()
        if not self._ready.wait(timeout_s):
            raise OSError(f"OPC UA server {self.endpoint} did not start within {timeout_s:g} s")
        if self._failure is not None:
            raise OSError(f"OPC UA server {self.endpoint} cannot start: {self._failure}") from self._failure

    def stop(self) -> None:
        """Stop serving and end the thread."""
        loop, stopped = self._loop, self._stopped
        if loop is not None and stopped is not None and loop.is_running():
            loop.call_soon_threadsafe(stopped.set)
        self._thread.join(timeout=10.0)

    # -- values (thread-safe) --------------------------------------------------------

    def set_values(self, **values: Any) -> None:
        """Write variables by name (from any thread)."""
        self._submit(self._write(values, resolve=None))

    def publish_result(self, values: dict[str, Any], answer: tuple[str, float]) -> None:
        """Write a decision's variables, then answer the oldest waiting ``Trigger`` with ``answer``."""
        self._submit(self._write(values, resolve=answer))

    def _submit(self, coroutine) -> None:
        loop = self._loop
        if loop is None or not loop.is_running():
            coroutine.close()
            return
        asyncio.run_coroutine_threadsafe(coroutine, loop)

    async def _write(self, values: dict[str, Any], resolve: tuple[str, float] | None) -> None:
        from asyncua import ua

        for name, value in values.items():
            node = self._nodes.get(name)
            if node is not None:
                await node.write_value(ua.Variant(value, self._types[name]))
        if resolve is not None:
            while self._triggers:
                future = self._triggers.pop(0)
                if not future.done():
                    future.set_result(resolve)
                    break

    # -- the server thread ------------------------------------------------------------

    def _thread_main(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # noqa: BLE001 - reported to start(), or logged after it
            if not self._ready.is_set():
                self._failure = exc
                self._ready.set()
            else:
                logger.exception("OPC UA server failed")

    async def _serve(self) -> None:
        from asyncua import Server

        self._loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        server = Server(user_manager=_SecuredSessionsOnly() if self.security is not None else None)
        await server.init()
        server.set_endpoint(self.endpoint)
        server.set_server_name("Inspector station")
        if self.security is not None:
            await self._secure(server, self.security)
        index = await server.register_namespace(NAMESPACE)
        self.namespace_index = index
        await self._build(server, index)
        async with server:
            self._ready.set()
            logger.info("OPC UA server listening on %s (%s)", self.endpoint,
                        "security: none" if self.security is None else
                        f"security: Basic256Sha256 {self.security.mode}, certificate {self.security.cert_file}, "
                        f"{'clients trusted from ' + self.security.trust_dir if self.security.trust_dir else 'any valid client certificate'}")
            await self._stopped.wait()

    @staticmethod
    async def _secure(server: Any, security: OpcUaSecurity) -> None:
        """Only Basic256Sha256 with the station's certificate; client certificates validated."""
        from asyncua.crypto.truststore import TrustStore
        from asyncua.crypto.validator import CertificateValidator, CertificateValidatorOptions

        cert, key = Path(security.cert_file).read_bytes(), Path(security.key_file).read_bytes()
        await server.load_certificate(cert, "pem" if _is_pem(cert) else "der")
        await server.load_private_key(key, None, "pem" if _is_pem(key) else "der")
        await server.set_application_uri(security.application_uri)
        server.set_security_policy(security.policies())
        options = (CertificateValidatorOptions.TIME_RANGE | CertificateValidatorOptions.URI
                   | CertificateValidatorOptions.PEER_CLIENT)
        store = None
        if security.trust_dir is not None:
            crl = Path(security.trust_dir) / "crl"  # revocation lists, if any, in a sub-folder
            store = TrustStore([Path(security.trust_dir)], [crl] if crl.is_dir() else [])
            await store.load()
            options |= CertificateValidatorOptions.TRUSTED | CertificateValidatorOptions.REVOKED
        server.set_certificate_validator(CertificateValidator(options, store))

    async def _build(self, server: Any, index: int) -> None:
        from asyncua import ua
        from asyncua.common.methods import uamethod

        station = await server.nodes.objects.add_object(ua.NodeId("Inspector", index), ua.QualifiedName("Inspector", index))
        for name, (initial, type_name) in VARIABLES.items():
            variant = getattr(ua.VariantType, type_name)
            node = await station.add_variable(ua.NodeId(f"Inspector.{name}", index), ua.QualifiedName(name, index),
                                              ua.Variant(initial, variant))
            self._nodes[name], self._types[name] = node, variant

        def argument(name: str, type_id: int, text: str) -> Any:
            arg = ua.Argument()
            arg.Name, arg.DataType, arg.ValueRank = name, ua.NodeId(type_id), -1
            arg.Description = ua.LocalizedText(text)
            return arg

        @uamethod
        async def trigger(_parent):
            return await self._trigger()

        @uamethod
        def start(_parent):
            self._on_request({"command": "start"})

        @uamethod
        def stop(_parent):
            self._on_request({"command": "stop"})

        @uamethod
        def switch_recipe(_parent, name):
            return str(self._on_request({"command": "recipe", "name": str(name)}) or "")

        string_id, double_id = ua.ObjectIds.String, ua.ObjectIds.Double
        await station.add_method(ua.NodeId("Inspector.Trigger", index), ua.QualifiedName("Trigger", index), trigger,
                                 [], [argument("Verdict", string_id, "OK or NG"),
                                      argument("Score", double_id, "normalized score, NG above 1.0")])
        await station.add_method(ua.NodeId("Inspector.Start", index), ua.QualifiedName("Start", index), start, [], [])
        await station.add_method(ua.NodeId("Inspector.Stop", index), ua.QualifiedName("Stop", index), stop, [], [])
        await station.add_method(ua.NodeId("Inspector.SwitchRecipe", index), ua.QualifiedName("SwitchRecipe", index),
                                 switch_recipe, [argument("Name", string_id, "recipe name")],
                                 [argument("Result", string_id, "empty when switching, else why not")])

    async def _trigger(self) -> tuple[str, float]:
        from asyncua import ua

        future = asyncio.get_running_loop().create_future()
        self._triggers.append(future)
        refused = self._on_request({"command": "trigger"})
        if refused:
            self._triggers.remove(future)
            raise ua.UaStatusCodeError(ua.StatusCodes.BadInvalidState)
        try:
            return await asyncio.wait_for(future, TRIGGER_TIMEOUT_S)
        except asyncio.TimeoutError:
            if future in self._triggers:
                self._triggers.remove(future)
            raise ua.UaStatusCodeError(ua.StatusCodes.BadTimeout) from None
