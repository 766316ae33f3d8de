"""transformers' own Chameleon `generate()` on random weights of a Chameleon shape, timed.

Builds `ChameleonForConditionalGeneration` (the class Anole-hf and Lumina-mGPT's fork derive from)
with seeded random weights (normal 0.02, norms 1) and a vocabulary laid out as the 7B releases'
(8192 image tokens at ids 4..8195, <eoss> 8196, <racm3:break> 8197, <reserved08706> 8710, EOL
8803, size tokens from 8804; the rest stand-in text tokens `▁t<i>`), saves it as an HF folder with a
word-level `text_tokenizer.json` and a caption, so that `lantern sweep` loads the very same
weights, then times `generate()` of one Lumina-mGPT image (the prompt, boi and the two size tokens
given; `h·(w+1)+1` new tokens: rows with their EOLs and <eoss>) with T 1 and top-k 2000, no CFG
(transformers' generate has none; the sweep runs `cfg = 1` too).

Needs torch and transformers (CPU). Usage (experiments/chameleon_speed/run.sh calls it):

    python3 transformers_chameleon_ar.py --shape chameleon-1b.json --save /tmp/cham1b --images 0
    python3 transformers_chameleon_ar.py --shape chameleon-1b.json --load /tmp/cham1b --images 2
"""

import argparse
import json
import time
from pathlib import Path

import torch
from transformers import ChameleonConfig, ChameleonForConditionalGeneration

TEXT_TOKENS = 16
FIRST_TEXT = 20000  # stand-in text tokens, above the size tokens


def vocabulary_map(vocab_size):
    """Name → id, laid out as the released 7B vocabulary (docs/reference/chameleon.md §5, §8)."""
    names = {0: "<s>", 1: "<pad>", 2: "</s>", 3: "<unk>"}
    for c in range(8192):
        names[4 + c] = "IMGIMG" + "".join("ABCDEFGHIJ"[int(d)] for d in str(c)) + "Z"
    names[8196], names[8197] = "<eoss>", "<racm3:break>"
    names[8710], names[8711] = "<reserved08706>", "<image>"
    for i in range(4):
        names[8800 + i] = f"<reserved{8796 + i:05d}>"  # 8803 = <reserved08799>, the EOL
    for n in range(256):
        names[8804 + n] = f"<reserved{8800 + n:05d}>"  # size tokens
    for i in range(vocab_size):
        names.setdefault(i, f"\u2581t{i}")
    return {name: i for i, name in names.items()}


def build(shape, seed):
    cfg = ChameleonConfig(
        vocab_size=shape["vocab_size"],
        hidden_size=shape["hidden_size"],
        intermediate_size=shape["intermediate_size"],
        num_hidden_layers=shape["num_hidden_layers"],
        num_attention_heads=shape["num_attention_heads"],
        num_key_value_heads=shape["num_key_value_heads"],
        max_position_embeddings=shape["max_position_embeddings"],
        rms_norm_eps=shape["rms_norm_eps"],
        rope_theta=shape["rope_theta"],
        vocabulary_map=vocabulary_map(shape["vocab_size"]),
        swin_norm=False,
    )
    torch.manual_seed(seed)
    model = ChameleonForConditionalGeneration(cfg).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "vqmodel" in name:
                continue
            p.copy_(torch.ones_like(p) if "norm" in name and "weight" in name else
                    torch.zeros_like(p) if "norm" in name else 0.02 * torch.randn_like(p))
    return model


def write_text_side(vocab, out):
    """A word-level text_tokenizer.json over the stand-in text tokens and a one-line captions.txt."""
    words = [f"t{i}" for i in range(FIRST_TEXT, FIRST_TEXT + TEXT_TOKENS)]
    tok = {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": [],
        "normalizer": None, "post_processor": None, "decoder": None,
        "pre_tokenizer": {"type": "Metaspace", "replacement": "\u2581",
                          "prepend_scheme": "always", "split": True},
        "model": {"type": "WordLevel", "unk_token": "<unk>",
                  "vocab": {n: i for n, i in vocab.items() if n.startswith("\u2581") or n == "<unk>"}},
    }
    (out / "text_tokenizer.json").write_text(json.dumps(tok))
    (out / "captions.txt").write_text(" ".join(words) + "\n")


def save(model, vocab, out):
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    write_text_side(vocab, out)
    print(f"saved {out}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shape", required=True, help="a Chameleon shape JSON (chameleon-1b.json)")
    ap.add_argument("--save", help="write the weights here (HF folder)")
    ap.add_argument("--load", help="load the weights from this HF folder instead of drawing them")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--images", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--grid", type=int, default=16, help="latent rows = columns (Lumina: even)")
    ap.add_argument("--top-k", type=int, default=2000)
    ap.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32",
                    help="weights and activations of the loaded model (--load)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    shape = json.loads(Path(a.shape).read_text())
    vocab = vocabulary_map(shape["vocab_size"])
    if a.load:
        model = ChameleonForConditionalGeneration.from_pretrained(
            a.load, dtype=getattr(torch, a.dtype)).eval()
    else:
        model = build(shape, a.seed)
    if a.save:
        save(model, vocab, Path(a.save))
    g = a.grid
    text = [vocab[f"\u2581t{i}"] for i in range(FIRST_TEXT, FIRST_TEXT + TEXT_TOKENS)]
    size = vocab[f"<reserved{8800 + g // 2:05d}>"]
    prompt = torch.tensor([[0] + text + [8710, 8197, size, size]])
    new = g * (g + 1) + 1
    times = []
    for i in range(a.images):
        torch.manual_seed(i)
        t = time.perf_counter()
        with torch.no_grad():
            out = model.generate(prompt, max_new_tokens=new, min_new_tokens=new, do_sample=True,
                                 top_k=a.top_k, temperature=1.0, eos_token_id=None, pad_token_id=1)
        times.append(time.perf_counter() - t)
        assert out.shape[1] == prompt.shape[1] + new, out.shape
        print(f"image {i}: {times[-1] * 1e3:.0f} ms ({new} tokens)", flush=True)
    if times:
        times.sort()
        print(f"transformers generate(): median {times[len(times) // 2] * 1e3:.0f} ms/image over "
              f"{len(times)} images, {new} tokens, {a.dtype}, torch {torch.__version__}, "
              f"{a.threads} threads")


if __name__ == "__main__":
    main()
