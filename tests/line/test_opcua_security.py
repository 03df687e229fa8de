"""OPC UA security: with --opcua-security the station offers only Basic256Sha256 (Sign / SignAndEncrypt) with its
certificate; real asyncua clients with the policy connect, read and trigger; a client without security, with a
weaker mode, or with a certificate outside the trust folder is refused. Certificates are made for the test."""

from __future__ import annotations

import asyncio
import signal
import time

import pytest

from inspector.line.opcua_server import OpcUaServer, check_security
from tests.line.line_support import db_rows, finish, free_port, serve, write_frames
from tests.line.tls_support import TestCA, self_signed_application

CLIENT_URI = "urn:inspector:test-client"


@pytest.fixture
def pki(tmp_path):
    """Server and client application certificates; the client's in the server's trust folder, a stranger's not."""
    server = self_signed_application(tmp_path / "server", "station", "urn:inspector:test-station")
    trusted = self_signed_application(tmp_path / "trusted", "client", CLIENT_URI)
    stranger = self_signed_application(tmp_path / "elsewhere", "stranger", CLIENT_URI)
    return {"server": server, "client": trusted, "stranger": stranger, "trust": tmp_path / "trusted"}


def _answer(server_box: list):
    """An on_request that answers a Trigger at once, as the station does after one decision."""
    def on_request(command: dict) -> str:
        if command["command"] == "trigger":
            server_box[0].publish_result({"LastVerdict": "OK", "LastScore": 0.25}, ("OK", 0.25))
        return ""
    return on_request


def _start(security) -> tuple[OpcUaServer, str]:
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}/inspector"
    box: list = []
    server = OpcUaServer(endpoint, _answer(box), security=security)
    box.append(server)
    server.start()
    return server, endpoint


async def _session(endpoint: str, identity=None, mode: str = "SignAndEncrypt", server_cert=None) -> dict:
    """Connect (secured when ``identity`` is given), list the endpoints, trigger once, read the verdict."""
    from asyncua import Client, ua
    from asyncua.crypto.security_policies import SecurityPolicyBasic256Sha256

    client = Client(endpoint, timeout=5)
    client.application_uri = CLIENT_URI
    if identity is not None:
        await client.set_security(SecurityPolicyBasic256Sha256, certificate=str(identity.cert),
                                  private_key=str(identity.key), server_certificate=str(server_cert),
                                  mode=getattr(ua.MessageSecurityMode, mode))
    await client.connect()
    try:
        index = await client.get_namespace_index("urn:inspector")
        station = client.get_node(f"ns={index};s=Inspector")
        answer = await station.call_method(f"{index}:Trigger")
        verdict = await client.get_node(f"ns={index};s=Inspector.LastVerdict").read_value()
        return {"answer": answer, "verdict": verdict}
    finally:
        await client.disconnect()


async def _endpoints(endpoint: str) -> list[tuple[str, str]]:
    from asyncua import Client

    client = Client(endpoint, timeout=5)
    found = await client.connect_and_get_server_endpoints()
    return sorted((e.SecurityPolicyUri.rsplit("#", 1)[-1], e.SecurityMode.name) for e in found)


def _refused(coroutine) -> str:
    """The error a refused connection raises (the test fails if it connects)."""
    try:
        asyncio.run(coroutine)
    except Exception as exc:  # noqa: BLE001 - asyncua raises several kinds; any refusal will do
        return f"{type(exc).__name__}: {exc}"
    raise AssertionError("the connection was accepted")


def test_sign_and_encrypt_required_trusted_client_only(pki):
    security = check_security("sign-encrypt", str(pki["server"].cert), str(pki["server"].key), str(pki["trust"]))
    assert security.application_uri == "urn:inspector:test-station"
    server, endpoint = _start(security)
    try:
        assert asyncio.run(_endpoints(endpoint)) == [("Basic256Sha256", "SignAndEncrypt")]
        seen = asyncio.run(_session(endpoint, pki["client"], server_cert=pki["server"].cert))
        assert seen == {"answer": ["OK", 0.25], "verdict": "OK"}
        print("unsecured:", _refused(_session(endpoint)))
        print("sign only:", _refused(_session(endpoint, pki["client"], "Sign", pki["server"].cert)))
        untrusted = _refused(_session(endpoint, pki["stranger"], server_cert=pki["server"].cert))
        assert "BadCertificateUntrusted" in untrusted or "Untrusted" in untrusted, untrusted
    finally:
        server.stop()


def test_a_client_that_skips_its_own_endpoint_check_gets_no_unsecured_session(pki, monkeypatch):
    """asyncua servers accept a None channel for discovery even when NoSecurity is not offered; a client that
    ignores the endpoint list must still get no session there."""
    from asyncua import Client, ua

    server, endpoint = _start(check_security("sign-encrypt", str(pki["server"].cert), str(pki["server"].key)))
    real = Client.find_endpoint

    def any_endpoint(endpoints, mode, uri):
        try:
            return real(endpoints, mode, uri)
        except ua.UaError:  # what a careless or hostile client does: pretend None is offered
            forged = ua.EndpointDescription(EndpointUrl=endpoint, SecurityMode=mode, SecurityPolicyUri=uri,
                                            Server=ua.ApplicationDescription())
            forged.UserIdentityTokens = list(endpoints[0].UserIdentityTokens)
            return forged

    monkeypatch.setattr(Client, "find_endpoint", staticmethod(any_endpoint))
    try:
        refused = _refused(_session(endpoint))
        assert "BadUserAccessDenied" in refused or "UserAccessDenied" in refused, refused
    finally:
        server.stop()


def test_sign_mode_accepts_sign_and_encrypt_and_any_valid_client_without_a_trust_folder(pki):
    server, endpoint = _start(check_security("sign", str(pki["server"].cert), str(pki["server"].key)))
    try:
        assert asyncio.run(_endpoints(endpoint)) == [("Basic256Sha256", "Sign"),
                                                     ("Basic256Sha256", "SignAndEncrypt")]
        for mode in ("Sign", "SignAndEncrypt"):
            seen = asyncio.run(_session(endpoint, pki["stranger"], mode, pki["server"].cert))
            assert seen["verdict"] == "OK"
        _refused(_session(endpoint))  # still no unsecured sessions
    finally:
        server.stop()


def test_default_stays_unsecured_on_loopback(pki):
    server, endpoint = _start(None)
    try:
        assert asyncio.run(_endpoints(endpoint)) == [("None", "None_")]
        assert asyncio.run(_session(endpoint))["verdict"] == "OK"
    finally:
        server.stop()


def test_security_options_are_checked(pki, tmp_path):
    cert, key = str(pki["server"].cert), str(pki["server"].key)
    with pytest.raises(ValueError, match="needs the server's certificate and key"):
        check_security("sign", cert, None)
    with pytest.raises(ValueError, match="go with --opcua-security"):
        check_security("none", cert, key)
    with pytest.raises(ValueError, match="is not the key of the certificate"):
        check_security("sign", cert, str(pki["client"].key))
    ec = TestCA(tmp_path / "ec").issue("ec", "ec", server=True)  # EC: not for Basic256Sha256
    with pytest.raises(ValueError, match="needs an RSA key"):
        check_security("sign", str(ec.cert), str(ec.key))
    rsa_without_uri = TestCA(tmp_path / "rsa").issue("plain", "plain", server=True, rsa_key=True)
    with pytest.raises(ValueError, match="application URI"):
        check_security("sign", str(rsa_without_uri.cert), str(rsa_without_uri.key))
    with pytest.raises(ValueError, match="not a folder"):
        check_security("sign", cert, key, str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="not a readable X.509"):
        check_security("sign", key, key)
    assert check_security("none", None, None) is None


def test_serve_with_sign_and_encrypt(tmp_path, line_model, serve_env, pki):
    write_frames(tmp_path / "frames", 4, seed=41)
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}/inspector"
    db = tmp_path / "results.db"
    process = serve(["--model", str(line_model), "--source", f"folder:{tmp_path / 'frames'}", "--db", str(db),
                     "--opcua", endpoint, "--trigger", "opcua", "--opcua-security", "sign-encrypt",
                     "--opcua-cert", str(pki["server"].cert), "--opcua-key", str(pki["server"].key),
                     "--opcua-trust", str(pki["trust"])], serve_env)
    try:
        deadline, seen = time.monotonic() + 120, None
        while seen is None:
            assert process.poll() is None and time.monotonic() < deadline, "no secured OPC UA server"
            try:
                seen = asyncio.run(_session(endpoint, pki["client"], server_cert=pki["server"].cert))
            except Exception:  # noqa: BLE001 - not listening yet, or the model is still loading
                time.sleep(0.5)
        _refused(_session(endpoint))
    finally:
        process.send_signal(signal.SIGTERM)
        code, err = finish(process)
    assert code == 0, err[-3000:]
    assert "security: Basic256Sha256 sign-encrypt" in err
    rows = db_rows(db)
    assert len(rows) == 1 and seen["answer"][0] == rows[0]["verdict"] == seen["verdict"]
    code, err = finish(serve(["--model", str(line_model), "--source", "folder:x", "--opcua", endpoint,
                              "--opcua-security", "sign"], serve_env), timeout=60)
    assert code == 2 and "--opcua-cert FILE --opcua-key FILE" in err
    code, err = finish(serve(["--model", str(line_model), "--source", "folder:x", "--opcua-cert",
                              str(pki["server"].cert)], serve_env), timeout=60)
    assert code == 2 and "go with --opcua" in err
