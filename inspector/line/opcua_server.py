"""The station as an OPC UA server (asyncua), on its own thread with its own asyncio loop. No Qt.

Nodes, under ``Objects/Inspector`` in namespace ``urn:inspector`` (node ids
``ns=<idx>;s=Inspector.<Name>``): variables ``LastVerdict`` (String: OK, NG),
``LastScore`` (Double, normalized: NG above 1.0), ``LastRawScore``, ``Threshold``
(Double), ``FrameId`` (Int64), ``CountOK``, ``CountNG`` (UInt64), ``ModelHash``,
``Recipe``, ``SourceState``, ``RunState`` (String), ``Drifting`` (Boolean: the
window's drift test on the recent scores); methods ``Trigger() ->
(Verdict, Score)`` (inspects one frame, answers when its verdict is readable),
``Start()``, ``Stop()``, ``SwitchRecipe(Name) -> Result``.

The server binds to a loopback address unless ``allow_remote`` is given, and
offers no security policy (``None``): on a line network put it behind the
plant's firewall or VPN. Requests go to ``on_request(command)``, which the
service turns into queued Qt signals; values come in through the thread-safe
:meth:`OpcUaServer.publish_result` and :meth:`OpcUaServer.set_values`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import threading
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
                         "add --opcua-allow-remote to serve other machines (no OPC UA security is offered)")
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
    """

    def __init__(self, endpoint: str, on_request: Callable[[dict[str, Any]], Any]) -> None:
        self.endpoint = endpoint
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
        server = Server()
        await server.init()
        server.set_endpoint(self.endpoint)
        server.set_server_name("Inspector station")
        index = await server.register_namespace(NAMESPACE)
        self.namespace_index = index
        await self._build(server, index)
        async with server:
            self._ready.set()
            logger.info("OPC UA server listening on %s", self.endpoint)
            await self._stopped.wait()

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
