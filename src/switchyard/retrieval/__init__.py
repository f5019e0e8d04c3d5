"""Tool retrieval: find the right tools among thousands for a natural-language request.

Owns the public retrieval API the gateway uses: `ToolIndex` (hybrid BM25 + dense search with background dense
build), `ToolDoc` / `Hit`, the encoders (`MiniLMEncoder` offline on onnxruntime, `OpenAIEncoder` for an
OpenAI-compatible endpoint), vector caches, the `search` mode meta-tool definitions and the benchmark metrics.
Does not own: MCP wiring (catalog / server) or the CLI (`switchyard.cli.bench_retrieval`).
"""

from switchyard.retrieval.encoder import Encoder, EncoderUnavailable, MiniLMEncoder
from switchyard.retrieval.fusion import FusionConfig
from switchyard.retrieval.index import RETRIEVERS, Hit, Retriever, ToolIndex
from switchyard.retrieval.metatools import CALL_TOOL, META_TOOLS, SEARCH_TOOLS, tool_definition, tool_list_tokens
from switchyard.retrieval.openai_encoder import OpenAIEncoder
from switchyard.retrieval.query import decompose
from switchyard.retrieval.text import ToolDoc
from switchyard.retrieval.vector_cache import MemoryVectorCache, SqliteVectorCache, VectorCache, text_hash

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
