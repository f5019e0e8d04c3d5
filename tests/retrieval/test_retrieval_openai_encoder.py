"""OpenAIEncoder against a tiny OpenAI-compatible /v1/embeddings server on 127.0.0.1."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import numpy as np
import pytest

from switchyard.retrieval import EncoderUnavailable, OpenAIEncoder


class _Handler(BaseHTTPRequestHandler):
    seen: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _Handler.seen.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
        if body["model"] == "broken":
            self.send_response(500)
            self.end_headers()
            return
        # Vector of text i = [len(text), i, 1]; returned in reverse order to check re-ordering by `index`.
        data = [{"index": i, "embedding": [float(len(t)), float(i), 1.0]} for i, t in enumerate(body["input"])]
        payload = json.dumps({"object": "list", "data": data[::-1], "model": body["model"]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:  # silence the default stderr log
        return


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    _Handler.seen.clear()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def test_embeddings_are_batched_ordered_normalised_and_authenticated(
    server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_EMBED_KEY", "sk-test")
    encoder = OpenAIEncoder(server, "tiny-embed", dim=3, api_key_env="TEST_EMBED_KEY", batch_size=2)
    try:
        vectors = encoder.encode(["ab", "abcd", "x"])
    finally:
        encoder.close()
    expected = np.array([[2, 0, 1], [4, 1, 1], [1, 0, 1]], dtype=np.float32)
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    assert np.allclose(vectors, expected, atol=1e-6)
    assert [s["body"]["input"] for s in _Handler.seen] == [["ab", "abcd"], ["x"]]
    assert {s["path"] for s in _Handler.seen} == {"/v1/embeddings"}
    assert {s["auth"] for s in _Handler.seen} == {"Bearer sk-test"}
    # The name keys the vector cache: another endpoint or size is another vector space.
    assert encoder.name == f"openai:{server.rstrip('/')}:tiny-embed:3"
    assert OpenAIEncoder(server, "tiny-embed", dim=4, api_key_env=None).name != encoder.name


def test_server_errors_and_wrong_dimensions_raise_encoder_unavailable(server: str) -> None:
    broken = OpenAIEncoder(server, "broken", dim=3, api_key_env=None)
    wrong_dim = OpenAIEncoder(server, "tiny-embed", dim=8, api_key_env=None)
    try:
        with pytest.raises(EncoderUnavailable, match="request failed"):
            broken.encode(["hello"])
        with pytest.raises(EncoderUnavailable, match="bad embedding"):
            wrong_dim.encode(["hello"])
    finally:
        broken.close()
        wrong_dim.close()
    assert _Handler.seen[0]["auth"] is None
