"""Would sentence-transformers' ONNX backend with int8 dynamic quantization make builds faster, at the same quality?

Exported locally, offline, from the bundled all-MiniLM-L6-v2 weights (a copy of the model folder, so the installed
package is never written to): `SentenceTransformer(copy, backend="onnx")` exports the ONNX graph, and
`export_dynamic_quantized_onnx_model(model, "avx2", copy)` the int8 one (this machine has AVX2, not AVX-512).
Then, side by side in one run:

- encode throughput of the same texts (every text a build of synthetic articles embeds) with torch, ONNX fp32
  and ONNX int8, interleaved twice;
- how close the int8 vectors are to torch's (cosine per text);
- the answers' checking scores with each backend, index and questions embedded by that backend:
  `tests/data/news_qa.jsonl --split check` and SQuAD 2.0 (`--no-squad` skips it).

Needs `optimum[onnxruntime]`, which is not a project dependency (see bench/results/onnx-backend.md for why):

    pip install "optimum[onnxruntime]"   # into a separate environment, as the results describe
    python bench/onnx_backend.py [--articles 40] [--no-squad] [--out bench/results/onnx-backend.md]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from synthetic import write_articles

from bot.article_vectors import cut_article
from bot.build import build_index
from bot.chunking import ChunkingSettings
from bot.corpus import load_article, scan
from bot.embedding import DEFAULT_MODEL, Vectors, bundled_model_dir, resolve_model
from bot.engine import Engine
from bot.evaluate import evaluate, load_questions, load_squad, write_corpus
from bot.store import open_index

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "bench/results/onnx-backend.md"
QUANTIZED_FILE = "onnx/model_qint8_avx2.onnx"


class BackendEmbedder:
    """The bundled model on one sentence-transformers backend, as an `Embedder` (fingerprint names the backend:
    vectors of one backend are not another's)."""

    def __init__(self, model: Any, backend: str) -> None:
        self._model = model
        self.name = DEFAULT_MODEL
        self.fingerprint = f"{resolve_model(DEFAULT_MODEL)[1]}:{backend}"
        self.dimension = 384

    def embed(self, texts: list[str]) -> Vectors:
        vectors = self._model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
        return np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(texts), self.dimension)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--articles", type=int, default=40)
    parser.add_argument("--no-squad", action="store_true")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    return parser.parse_args(argv)


def load_backends(tmp: Path) -> dict[str, BackendEmbedder]:
    from sentence_transformers import SentenceTransformer, export_dynamic_quantized_onnx_model

    copy = tmp / "model"
    shutil.copytree(bundled_model_dir(), copy)
    torch_model = SentenceTransformer(str(copy), device="cpu", local_files_only=True)
    onnx_model = SentenceTransformer(str(copy), device="cpu", backend="onnx", local_files_only=True)
    onnx_model.save_pretrained(str(copy))  # keeps the exported onnx/model.onnx beside the weights
    export_dynamic_quantized_onnx_model(onnx_model, "avx2", str(copy))
    int8_model = SentenceTransformer(
        str(copy), device="cpu", backend="onnx", local_files_only=True, model_kwargs={"file_name": QUANTIZED_FILE}
    )
    return {
        "torch fp32 (in use)": BackendEmbedder(torch_model, "torch"),
        "ONNX fp32": BackendEmbedder(onnx_model, "onnx"),
        "ONNX int8 (avx2, dynamic)": BackendEmbedder(int8_model, "onnx-int8"),
    }


def build_texts(tmp: Path, articles: int) -> list[str]:
    write_articles(tmp / "synthetic", articles)
    texts: list[str] = []
    for file in scan(tmp / "synthetic"):
        cut = cut_article(load_article(file), ChunkingSettings())
        if cut is not None:
            texts += cut[1]
    return texts


def throughput(backends: dict[str, BackendEmbedder], texts: list[str]) -> dict[str, list[float]]:
    seconds: dict[str, list[float]] = {name: [] for name in backends}
    for embedder in backends.values():
        embedder.embed(texts[:64])  # warm-up
    for _ in range(2):
        for name, embedder in backends.items():
            started = time.perf_counter()
            embedder.embed(texts)
            seconds[name].append(time.perf_counter() - started)
    return seconds


def quality(backends: dict[str, BackendEmbedder], tmp: Path, squad: bool) -> dict[str, dict[str, int]]:
    news = [q for q in load_questions(ROOT / "tests/data/news_qa.jsonl") if q.get("split") == "check"]
    scores: dict[str, dict[str, int]] = {}
    for number, (name, embedder) in enumerate(backends.items()):
        index_dir = tmp / f"news-index-{number}"
        build_index(ROOT / "corpus", index_dir, embedder, ChunkingSettings())
        engine = Engine(index_dir, embedder, open_index(index_dir, embedder))
        scores[name] = {"news": evaluate(engine, news).right}
        if squad:
            articles, questions = load_squad(ROOT / "tests/data/squad2/squad2-normans-complexity.json")
            write_corpus(articles, tmp / "squad-corpus")
            squad_index = tmp / f"squad-index-{number}"
            build_index(tmp / "squad-corpus", squad_index, embedder, ChunkingSettings())
            engine = Engine(squad_index, embedder, open_index(squad_index, embedder))
            scores[name]["squad"] = evaluate(engine, questions).right
    return scores


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="kazbot-onnx-") as tmp_name:
        tmp = Path(tmp_name)
        backends = load_backends(tmp)
        texts = build_texts(tmp, args.articles)
        seconds = throughput(backends, texts)
        reference = next(iter(backends.values())).embed(texts)
        cosines = {name: np.sum(reference * embedder.embed(texts), axis=1) for name, embedder in backends.items()}
        scores = quality(backends, tmp, not args.no_squad)
    torch_seconds = min(next(iter(seconds.values())))
    lines = [
        "# ONNX backend with int8 dynamic quantization (`bench/onnx_backend.py`)",
        "",
        f"{len(texts)} texts from {args.articles} synthetic articles; best of two interleaved runs. Machine: "
        f"{platform.machine()}, {os.cpu_count()} cores (AVX2, no AVX-512), Python {platform.python_version()}; "
        f"load average {os.getloadavg()[0]:.1f} at the end.",
        "",
        "| backend | encode s (runs) | texts/s | × torch | cosine to torch: mean / min | news check right | "
        "SQuAD right |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, runs in seconds.items():
        best = min(runs)
        squad = f"{scores[name]['squad']}/626" if "squad" in scores[name] else "—"
        lines.append(
            f"| {name} | {', '.join(f'{s:.1f}' for s in runs)} | {len(texts) / best:.0f} | "
            f"{torch_seconds / best:.2f} | {float(cosines[name].mean()):.4f} / {float(cosines[name].min()):.4f} | "
            f"{scores[name]['news']}/103 | {squad} |"
        )
    report = "\n".join(lines) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report, encoding="utf-8")
    print(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
