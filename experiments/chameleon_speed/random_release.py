"""Writes a random-weight Chameleon checkpoint folder of any shape in bf16, laid out as the HF
releases ship it (config.json with a vocabulary_map, sharded model-*.safetensors with
model.safetensors.index.json), drawing one tensor at a time, so a 7B folder (13.5 GB) is written
without a 7B model in memory. For timing and memory checks of the loaders on release-sized files:

    python random_release.py --shape chameleon-7b.json --out /tmp/chameleon-7b
"""
import argparse
import json
from pathlib import Path

import torch
from safetensors.torch import save_file
from transformers import ChameleonConfig

from transformers_chameleon_ar import vocabulary_map, write_text_side

SHARD_BYTES = 4 << 30


def tensors(shape):
    """(key, shape, kind) of every decoder tensor, in file order; kind: w(eight), 1 (ones), 0."""
    d, f = shape["hidden_size"], shape["intermediate_size"]
    h, kv = shape["num_attention_heads"], shape["num_key_value_heads"]
    hd, v = d // h, shape["vocab_size"]
    yield "model.embed_tokens.weight", (v, d), "w"
    for l in range(shape["num_hidden_layers"]):
        p = f"model.layers.{l}."
        for name, s in [("q_proj", (h * hd, d)), ("k_proj", (kv * hd, d)),
                        ("v_proj", (kv * hd, d)), ("o_proj", (d, h * hd))]:
            yield p + f"self_attn.{name}.weight", s, "w"
        for name, heads in [("q_norm", h), ("k_norm", kv)]:
            yield p + f"self_attn.{name}.weight", (heads, hd), "1"
            yield p + f"self_attn.{name}.bias", (heads, hd), "0"
        for name, s in [("gate_proj", (f, d)), ("up_proj", (f, d)), ("down_proj", (d, f))]:
            yield p + f"mlp.{name}.weight", s, "w"
        yield p + "input_layernorm.weight", (d,), "1"
        yield p + "post_attention_layernorm.weight", (d,), "1"
    yield "model.norm.weight", (d,), "1"
    yield "lm_head.weight", (v, d), "w"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shape", required=True, help="a Chameleon shape JSON (chameleon-7b.json)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    shape = json.loads(Path(a.shape).read_text())
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    vocab = vocabulary_map(shape["vocab_size"])
    ChameleonConfig(**{k: v for k, v in shape.items() if k != "model_type"},
                    vocabulary_map=vocab).save_pretrained(out)
    torch.manual_seed(a.seed)
    shard, size, names, weight_map = {}, 0, [], {}

    def flush():
        nonlocal shard, size
        name = f"model-{len(names) + 1:05d}.safetensors"
        save_file(shard, str(out / name), metadata={"format": "pt"})
        names.append(name)
        weight_map.update({k: name for k in shard})
        print(f"wrote {name} ({size / 1e9:.1f} GB)", flush=True)
        shard, size = {}, 0

    for key, s, kind in tensors(shape):
        t = {"w": lambda: 0.02 * torch.randn(s, dtype=torch.bfloat16),
             "1": lambda: torch.ones(s, dtype=torch.bfloat16),
             "0": lambda: torch.zeros(s, dtype=torch.bfloat16)}[kind]()
        if size + t.numel() * 2 > SHARD_BYTES and shard:
            flush()
        shard[key] = t
        size += t.numel() * 2
    flush()
    (out / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    write_text_side(vocab, out)


if __name__ == "__main__":
    main()
