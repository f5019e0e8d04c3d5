"""Tool retrieval: find the right tools among thousands for a natural-language request.

Owns the public retrieval API the gateway uses: `ToolIndex` (hybrid BM25 + dense search with background dense
build), `ToolDoc` / `Hit`, the encoders (`MiniLMEncoder` offline on onnxruntime or OpenVINO, `OpenAIEncoder` for an
OpenAI-compatible endpoint), vector caches, the `search` mode meta-tool definitions and the benchmark metrics.
Does not own: MCP wiring (catalog / server) or the CLI (`switchyard.cli.bench_retrieval`).
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from switchyard.retrieval.encoder import Encoder, EncoderUnavailable, MiniLMEncoder
    from switchyard.retrieval.fusion import FusionConfig
    from switchyard.retrieval.index import RETRIEVERS, Hit, Retriever, ToolIndex
    from switchyard.retrieval.metatools import CALL_TOOL, META_TOOLS, SEARCH_TOOLS, tool_definition, tool_list_tokens
    from switchyard.retrieval.openai_encoder import OpenAIEncoder
    from switchyard.retrieval.query import decompose
    from switchyard.retrieval.text import ToolDoc
    from switchyard.retrieval.vector_cache import MemoryVectorCache, SqliteVectorCache, VectorCache, text_hash

# Imported on first use (PEP 562): numpy, bm25s and onnxruntime stay unloaded for a gateway that never searches.
_LAZY: dict[str, str] = {
    "Encoder": "encoder",
    "EncoderUnavailable": "encoder",
    "MiniLMEncoder": "encoder",
    "FusionConfig": "fusion",
    "RETRIEVERS": "index",
    "Hit": "index",
    "Retriever": "index",
    "ToolIndex": "index",
    "CALL_TOOL": "metatools",
    "META_TOOLS": "metatools",
    "SEARCH_TOOLS": "metatools",
    "tool_definition": "metatools",
    "tool_list_tokens": "metatools",
    "OpenAIEncoder": "openai_encoder",
    "decompose": "query",
    "ToolDoc": "text",
    "MemoryVectorCache": "vector_cache",
    "SqliteVectorCache": "vector_cache",
    "VectorCache": "vector_cache",
    "text_hash": "vector_cache",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'switchyard.retrieval' has no attribute {name!r}")
    import importlib  # noqa: PLC0415

    return getattr(importlib.import_module(f"switchyard.retrieval.{module}"), name)


__all__ = [
    "CALL_TOOL",
    "META_TOOLS",
    "RETRIEVERS",
    "SEARCH_TOOLS",
    "Encoder",
    "EncoderUnavailable",
    "FusionConfig",
    "Hit",
    "MemoryVectorCache",
    "MiniLMEncoder",
    "OpenAIEncoder",
    "Retriever",
    "SqliteVectorCache",
    "ToolDoc",
    "ToolIndex",
    "VectorCache",
    "decompose",
    "text_hash",
    "tool_definition",
    "tool_list_tokens",
]
