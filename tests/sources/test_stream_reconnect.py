"""A real network stream (MJPEG over HTTP on loopback) that closes and comes back.

The server is a few lines of sockets in a thread serving cv2-encoded JPEG frames as
``multipart/x-mixed-replace``; the source is the real :class:`StreamSource` with
OpenCV's own capture. Skipped if this OpenCV cannot read HTTP streams.
"""

from __future__ import annotations

import socket
import threading
import time

import cv2
import numpy as np
import pytest

from inspector.sources.base import SourceState
from inspector.sources.camera import StreamSource


class MjpegServer:
    """Serves a moving gray test pattern at ~30 frames/s to every client until :meth:`close`."""

    def __init__(self, port: int = 0) -> None:
        self._socket = socket.socket()
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", port))
        self._socket.listen(4)
        self._socket.settimeout(0.1)
        self.port = self._socket.getsockname()[1]
        self._stop = threading.Event()
        self._clients: list[socket.socket] = []
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._socket.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self._clients.append(client)
            thread = threading.Thread(target=self._serve, args=(client,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, client: socket.socket) -> None:
        try:
            client.recv(4096)
            client.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=frame\r\n\r\n")
            index = 0
            while not self._stop.is_set():
                image = np.full((48, 64, 3), 120, np.uint8)
                image[:, : index % 64] = 20
                data = cv2.imencode(".jpg", image)[1].tobytes()
                client.sendall(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(data)
                               + data + b"\r\n")
                index += 1
                time.sleep(0.03)
        except OSError:
            pass
        finally:
            client.close()

    def close(self) -> None:
        """Stop serving and drop every client (the stream "goes away")."""
        self._stop.set()
        self._socket.close()
        for client in self._clients:
            try:
                client.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for thread in self._threads:
            thread.join(timeout=2)


def _frames(source: StreamSource, count: int, within: float) -> list:
    frames, deadline = [], time.monotonic() + within
    while len(frames) < count and time.monotonic() < deadline:
        frame = source.read(timeout=0.2)
        if frame is not None:
            frames.append(frame)
    return frames


def test_stream_server_that_closes_and_returns_is_reconnected():
    if "FFMPEG:                      YES" not in cv2.getBuildInformation():
        pytest.skip("this OpenCV has no FFmpeg for HTTP streams")
    server = MjpegServer()
    port = server.port
    source = StreamSource(f"http://127.0.0.1:{port}/video.mjpg", backoff_initial=0.2, backoff_max=0.4)
    states: list[SourceState] = []
    source.add_state_listener(lambda state, message: states.append(state))
    again = None
    try:
        source.open()
        first = _frames(source, 5, within=10)
        assert len(first) == 5 and first[0].image.shape == (48, 64, 3)
        server.close()
        deadline = time.monotonic() + 5
        while SourceState.LOST not in states and time.monotonic() < deadline:
            source.read(timeout=0.1)
        assert source.state in (SourceState.LOST, SourceState.RECONNECTING)
        time.sleep(1.0)  # down long enough for reconnect attempts to fail
        assert states.count(SourceState.RECONNECTING) >= 2, "retried while the server was away"
        assert source.state != SourceState.RUNNING
        again = MjpegServer(port)
        resumed = _frames(source, 3, within=10)
        assert len(resumed) == 3, f"no frames after the server came back (states: {states})"
        assert source.state == SourceState.RUNNING
        assert resumed[0].frame_id > first[-1].frame_id
        assert states[-1] == SourceState.RUNNING
    finally:
        source.release()
        server.close()
        if again is not None:
            again.close()
