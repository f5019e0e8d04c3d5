"""`OpenAIEncoder`: embeddings from any OpenAI-compatible `/v1/embeddings` endpoint (optional, configured).

Owns: batching texts into embedding requests over httpx2, reading the API key from a named environment
variable (never from config text), ordering the returned vectors by their `index`, normalising them, and
turning transport or protocol failures into `EncoderUnavailable`.

Does not own: retries or rate limiting beyond one request per batch (a failing build is retried by the index
on the next catalog change), or the local default encoder (`encoder.py`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import httpx2
import numpy as np
from numpy.typing import NDArray

from switchyard.retrieval.encoder import EncoderUnavailable, l2_normalise

__all__ = ["OpenAIEncoder"]


class OpenAIEncoder:
    """Embeds texts with an OpenAI-compatible server (OpenAI, Azure OpenAI proxies, vLLM, Ollama, llama.cpp...)."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        dim: int,
        api_key_env: str | None = "OPENAI_API_KEY",
        batch_size: int = 128,
        timeout: float = 30.0,
        transport: httpx2.BaseTransport | None = None,
    ) -> None:
        """Configure the endpoint; nothing is sent until `encode`.

        Args:
            base_url: the API root, e.g. `https://api.openai.com/v1` (`/embeddings` is appended).
            model: the embedding model name sent in each request.
            dim: the vector size the model returns (checked on every response).
            api_key_env: name of the environment variable holding the bearer token (None: no auth header).
            batch_size: texts per request.
            timeout: seconds per request.
            transport: an httpx2 transport (tests use a mock; default: the network).
        """
        # Names the vector space, which keys the vector cache: the endpoint and size as well as the model.
        self.name = f"openai:{base_url.rstrip('/')}:{model}:{dim}"
        self.dim = dim
        self._model = model
        self._batch_size = batch_size
        headers: dict[str, str] = {}
        if api_key_env:
            key = os.environ.get(api_key_env)
            if key:
                headers["Authorization"] = f"Bearer {key}"
        self._client = httpx2.Client(
            base_url=base_url.rstrip("/") + "/", headers=headers, timeout=timeout, transport=transport
        )

    def encode(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """Embed `texts` in batches; rows are L2-normalised and in input order.

        Raises:
            EncoderUnavailable: the endpoint failed or answered something that is not an embeddings response.
        """
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(texts), self._batch_size):
            batch = [t if t else " " for t in texts[start : start + self._batch_size]]  # empty input is rejected
            for index, vector in self._request(batch):
                if not 0 <= index < len(batch) or len(vector) != self.dim:
                    raise EncoderUnavailable(f"{self.name}: bad embedding (index {index}, {len(vector)} dims)")
                out[start + index] = vector
        return l2_normalise(out)

    def _request(self, batch: list[str]) -> list[tuple[int, list[float]]]:
        try:
            response = self._client.post("embeddings", json={"model": self._model, "input": batch})
            response.raise_for_status()
            payload: Any = response.json()
        except (httpx2.HTTPError, ValueError) as exc:
            raise EncoderUnavailable(f"{self.name}: embeddings request failed: {exc}") from exc
        try:
            return [(int(item["index"]), [float(x) for x in item["embedding"]]) for item in payload["data"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise EncoderUnavailable(f"{self.name}: unexpected embeddings response") from exc

    def close(self) -> None:
        """Close the HTTP client."""
        self._client.close()
