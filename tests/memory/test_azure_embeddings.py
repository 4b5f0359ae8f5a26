"""The Azure OpenAI embeddings provider against a local fake server on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest
from aiohttp import web

from aoai_realtime.memory import AzureOpenAIEmbedder, EmbeddingError

pytestmark = pytest.mark.integration
KEY = "0123456789abcdef0123456789abcdef"


class FakeAzure:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.script: list[tuple[int, dict[str, str]]] = []  # (status, headers) answers before the real one
        self.dim = 4

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append({"path": request.path_qs, "headers": dict(request.headers), "body": body})
        if self.script:
            status, headers = self.script.pop(0)
            return web.json_response(
                {"error": {"message": f"status {status} key={KEY}"}}, status=status, headers=headers
            )
        data = [
            {"index": i, "embedding": [float(len(t)), 1.0, 0.0, float(i)][: self.dim]}
            for i, t in enumerate(body["input"])
        ]
        return web.json_response({"data": list(reversed(data))})  # out of order on purpose


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeAzure, str]]:
    state = FakeAzure()
    app = web.Application()
    app.router.add_post("/openai/deployments/emb/embeddings", state.handle)
    app.router.add_post("/openai/v1/embeddings", state.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield state, f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def test_deployment_route_with_api_key_batches_and_orders(fake: tuple[FakeAzure, str]) -> None:
    state, url = fake
    emb = AzureOpenAIEmbedder(endpoint=url, deployment="emb", dim=4, api_key=KEY, max_batch=2)
    out = await emb.embed(["a", "bbb", "cc"])
    await emb.close()
    assert [r["body"]["input"] for r in state.requests] == [["a", "bbb"], ["cc"]]
    assert state.requests[0]["path"] == "/openai/deployments/emb/embeddings?api-version=2024-10-21"
    assert state.requests[0]["headers"]["api-key"] == KEY
    expected = np.array([[1, 1, 0, 0], [3, 1, 0, 1], [2, 1, 0, 0]], dtype=np.float32)
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    assert np.allclose(out, expected)


async def test_v1_route_with_token_provider(fake: tuple[FakeAzure, str]) -> None:
    state, url = fake

    async def token() -> str:
        return "tok-123"

    emb = AzureOpenAIEmbedder(endpoint=url + "/", deployment="emb", dim=4, token_provider=token, api_version=None)
    await emb.embed(["x"])
    await emb.close()
    req = state.requests[0]
    assert req["path"] == "/openai/v1/embeddings" and req["body"]["model"] == "emb"
    assert req["headers"]["Authorization"] == "Bearer tok-123"


async def test_throttling_is_retried(fake: tuple[FakeAzure, str]) -> None:
    state, url = fake
    state.script = [(429, {"Retry-After": "0"}), (503, {"Retry-After": "0"})]
    emb = AzureOpenAIEmbedder(endpoint=url, deployment="emb", dim=4, api_key=KEY)
    out = await emb.embed(["x"])
    await emb.close()
    assert len(state.requests) == 3 and out.shape == (1, 4)


async def test_auth_failure_is_not_retried_and_hides_the_key(fake: tuple[FakeAzure, str]) -> None:
    state, url = fake
    state.script = [(401, {})]
    emb = AzureOpenAIEmbedder(endpoint=url, deployment="emb", dim=4, api_key=KEY)
    with pytest.raises(EmbeddingError, match="401") as info:
        await emb.embed(["x"])
    await emb.close()
    assert len(state.requests) == 1 and KEY not in str(info.value)


async def test_bad_request_text_is_redacted(fake: tuple[FakeAzure, str]) -> None:
    state, url = fake
    state.script = [(400, {})]
    emb = AzureOpenAIEmbedder(endpoint=url, deployment="emb", dim=4, api_key=KEY)
    with pytest.raises(EmbeddingError, match="400") as info:
        await emb.embed(["x"])
    await emb.close()
    assert KEY not in str(info.value)


async def test_wrong_dimension_is_reported(fake: tuple[FakeAzure, str]) -> None:
    _, url = fake
    emb = AzureOpenAIEmbedder(endpoint=url, deployment="emb", dim=8, api_key=KEY)
    with pytest.raises(EmbeddingError, match="dim"):
        await emb.embed(["x"])
    await emb.close()


def test_settings_are_checked() -> None:
    with pytest.raises(EmbeddingError):
        AzureOpenAIEmbedder(endpoint="https://x", deployment="d", dim=4)
    with pytest.raises(EmbeddingError):
        AzureOpenAIEmbedder(endpoint="x.azure.com", deployment="d", dim=4, api_key=KEY)
