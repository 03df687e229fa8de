"""MQTT over TLS with a password file and client certificates, against a real Mosquitto TLS listener.

Certificates are made for the test (tests/line/tls_support.py); the broker's password file is
written by ``mosquitto_passwd``. The station verifies the broker's certificate and host name,
takes the password from INSPECTOR_MQTT_PASSWORD, and never writes it to a log or an error.
"""

from __future__ import annotations

import logging
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from inspector.line.messages import PASSWORD_ENV, parse_mqtt_url
from inspector.line.mqtt_publisher import MqttPublisher
from tests.line.line_support import MOSQUITTO, Broker, Subscriber, db_rows, finish, serve, wait_for, write_frames
from tests.line.tls_support import TestCA

PASSWORD = "s3cret-Line-Pa55"
USER = "line-user"


@pytest.fixture
def ca(tmp_path) -> TestCA:
    return TestCA(tmp_path / "pki")


def _secure_broker(folder: Path, ca: TestCA, require_certificate: bool = False) -> Broker:
    if MOSQUITTO is None or shutil.which("mosquitto_passwd") is None:
        pytest.skip("mosquitto and mosquitto_passwd are needed (apt-get install mosquitto)")
    server = ca.issue("broker", "127.0.0.1", server=True)
    folder.mkdir(parents=True, exist_ok=True)
    passwords = folder / "passwords"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(passwords), USER, PASSWORD], check=True, timeout=30)
    listener = (f"cafile {ca.files.cert}\ncertfile {server.cert}\nkeyfile {server.key}\n"
                f"require_certificate {'true' if require_certificate else 'false'}\n")
    broker = Broker(folder, listener=listener, settings=f"allow_anonymous false\npassword_file {passwords}\n")
    broker.start()
    return broker


def _publish(address, folder: Path, count: int, wait_s: float, tag: str = "m") -> tuple[MqttPublisher, int]:
    """Submit ``count`` messages (uids ``TAG-i``) through a real publisher; wait up to ``wait_s`` for the
    PUBACKs; stop (the rest stays in the outbox ``folder``)."""
    publisher = MqttPublisher(address, "cell-tls", str(folder), status=False)
    publisher.start()
    for i in range(count):
        publisher.submit({"uid": f"{tag}-{i}", "n": i})
    deadline = time.monotonic() + wait_s
    while publisher.acknowledged < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return publisher, publisher.stop(drain_s=0.5)


def test_tls_and_password_deliver_and_the_password_is_never_logged(tmp_path, ca, caplog):
    broker = _secure_broker(tmp_path / "broker", ca)
    try:
        subscriber = Subscriber(broker.port, ca=ca.files.cert, username=USER, password=PASSWORD)
        base = f"mqtts://{USER}@127.0.0.1:{broker.port}/line?ca={ca.files.cert}"
        caplog.set_level(logging.DEBUG)
        good = parse_mqtt_url(base, {PASSWORD_ENV: PASSWORD})
        assert good.tls and good.password == PASSWORD and PASSWORD not in repr(good) + good.describe()
        publisher, left = _publish(good, tmp_path / "good", 3, 20)
        assert left == 0 and publisher.acknowledged == 3
        wait_for(lambda: len(subscriber.decisions()) >= 3, 10, what="three messages over TLS")
        assert [m["n"] for m in subscriber.decisions()] == [0, 1, 2]

        # A wrong password: refused, the messages wait in the outbox, and the log names no password.
        wrong = parse_mqtt_url(base, {PASSWORD_ENV: "not-the-password"})
        publisher, left = _publish(wrong, tmp_path / "wrong", 2, 3, tag="first")
        assert left == 2 and publisher.acknowledged == 0
        assert "refused the connection" in caplog.text and "Not authorized" in caplog.text
        # The same outbox later, with the right password: delivered first, in order.
        publisher, left = _publish(good, tmp_path / "wrong", 1, 20, tag="second")
        assert left == 0 and publisher.acknowledged == 3
        wait_for(lambda: len(subscriber.decisions()) >= 6, 10, what="the outbox after the right password")
        assert [m["uid"] for m in subscriber.decisions()[3:]] == ["first-0", "first-1", "second-0"]

        # A password in the URL works too (it shows in process lists: the environment is preferred).
        inline = parse_mqtt_url(f"mqtts://{USER}:{PASSWORD}@127.0.0.1:{broker.port}/line?ca={ca.files.cert}", {})
        publisher, left = _publish(inline, tmp_path / "inline", 1, 20)
        assert left == 0
        assert PASSWORD not in caplog.text and "not-the-password" not in caplog.text
        subscriber.close()
    finally:
        broker.stop(signal.SIGKILL)


def test_a_broker_certificate_from_another_ca_is_refused(tmp_path, ca, caplog):
    broker = _secure_broker(tmp_path / "broker", ca)
    try:
        stranger = TestCA(tmp_path / "other-pki", name="Someone else's CA")
        address = parse_mqtt_url(f"mqtts://{USER}@127.0.0.1:{broker.port}/line?ca={stranger.files.cert}",
                                 {PASSWORD_ENV: PASSWORD})
        caplog.set_level(logging.WARNING, logger="inspector.line")
        publisher, left = _publish(address, tmp_path / "box", 2, 3)
        assert left == 2 and publisher.connections == 0
        assert "cannot connect to mqtts://line-user@127.0.0.1" in caplog.text
        # Plain MQTT to the TLS port gets nowhere either.
        plain = parse_mqtt_url(f"mqtt://{USER}@127.0.0.1:{broker.port}/line", {PASSWORD_ENV: PASSWORD})
        publisher, left = _publish(plain, tmp_path / "plain", 1, 2)
        assert left == 1 and publisher.connections == 0
    finally:
        broker.stop(signal.SIGKILL)


def test_client_certificate_required_by_the_broker(tmp_path, ca):
    broker = _secure_broker(tmp_path / "broker", ca, require_certificate=True)
    try:
        client = ca.issue("station", "cell-tls", server=False)
        base = f"mqtts://{USER}@127.0.0.1:{broker.port}/line?ca={ca.files.cert}"
        without = parse_mqtt_url(base, {PASSWORD_ENV: PASSWORD})
        publisher, left = _publish(without, tmp_path / "without", 1, 3)
        assert left == 1 and publisher.connections == 0
        with_cert = parse_mqtt_url(f"{base}&cert={client.cert}&key={client.key}", {PASSWORD_ENV: PASSWORD})
        publisher, left = _publish(with_cert, tmp_path / "without", 1, 20)
        assert left == 0 and publisher.acknowledged == 2 and publisher.connections == 1
        # A key that is not the certificate's: an error at once, not a silent retry loop.
        other = ca.issue("other", "someone", server=False)
        mismatched = parse_mqtt_url(f"{base}&cert={client.cert}&key={other.key}", {PASSWORD_ENV: PASSWORD})
        with pytest.raises(ValueError, match="not a usable PEM certificate and key"):
            MqttPublisher(mismatched, "cell-tls", str(tmp_path / "mismatched"), status=False)
    finally:
        broker.stop(signal.SIGKILL)


def test_serve_over_tls_with_the_password_from_the_environment(tmp_path, ca, line_model, serve_env):
    broker = _secure_broker(tmp_path / "broker", ca)
    try:
        subscriber = Subscriber(broker.port, ca=ca.files.cert, username=USER, password=PASSWORD)
        write_frames(tmp_path / "frames", 3, seed=11)
        db = tmp_path / "results.db"
        env = dict(serve_env, **{PASSWORD_ENV: PASSWORD})
        url = f"mqtts://{USER}@127.0.0.1:{broker.port}/line?ca={ca.files.cert}"
        code, err = finish(serve(["--model", str(line_model), "--source", f"folder:{tmp_path / 'frames'}",
                                  "--db", str(db), "--mqtt", url, "--station", "cell-tls", "--quit-after", "3"],
                                 env))
        assert code == 0, err[-3000:]
        assert "3 acknowledged, 0 left in the outbox" in err and PASSWORD not in err
        assert f"connected to mqtts://{USER}@127.0.0.1:{broker.port}/line" in err
        wait_for(lambda: len(subscriber.decisions()) >= 3, 10, what="the decisions over TLS")
        assert [m["uid"] for m in subscriber.decisions()] == [row["uid"] for row in db_rows(db)]
        subscriber.close()
    finally:
        broker.stop(signal.SIGKILL)


def test_url_errors_are_caught_before_anything_runs(tmp_path, serve_env):
    ca_file = tmp_path / "ca.pem"
    ca_file.write_text("not a certificate")
    for url, expected in ((f"mqtt://127.0.0.1/line?ca={ca_file}", "use mqtts://"),
                          ("mqtts://127.0.0.1/line?ca=/no/such/ca.pem", "cannot be read"),
                          ("mqtts://127.0.0.1/line?tls=1", "unknown parameter 'tls'"),
                          (f"mqtts://u:{PASSWORD}@127.0.0.1/a/+/b", "may not contain")):
        code, err = finish(serve(["--model", "no-model.safetensors", "--source", "folder:x", "--mqtt", url],
                                 serve_env), timeout=60)
        assert code == 2 and expected in err and PASSWORD not in err, err
    with pytest.raises(ValueError, match="not a PEM certificate bundle"):
        MqttPublisher(parse_mqtt_url(f"mqtts://127.0.0.1/line?ca={ca_file}"), "s", str(tmp_path / "box"))


def test_the_mqtt_url_setting_takes_tls_urls_and_the_window_checks_the_files(tmp_path, monkeypatch):
    import argparse
    import json

    from inspector.cli.gui_cmd import _window_publisher
    from inspector.storage.settings import load_settings

    monkeypatch.setenv("INSPECTOR_CONFIG_DIR", str(tmp_path / "config"))
    (tmp_path / "config").mkdir()
    url = "mqtts://cell-1@127.0.0.1:8883/line?ca=/no/such/ca.pem"
    (tmp_path / "config" / "settings.json").write_text(json.dumps({"version": 2, "mqtt_url": url}))
    settings, warnings = load_settings()
    assert settings.mqtt_url == url and not warnings
    args = argparse.Namespace(mqtt=None, station=None, db=str(tmp_path / "r.db"))
    with pytest.raises(ValueError, match="the ca file /no/such/ca.pem cannot be read"):
        _window_publisher(args)  # before the window opens: exit 2 with the file named
    (tmp_path / "config" / "settings.json").write_text(json.dumps({"version": 2, "mqtt_url": "mqtt://h?ca=x"}))
    settings, warnings = load_settings()
    assert settings.mqtt_url is None and "TLS files only with mqtts://" in warnings[0]
