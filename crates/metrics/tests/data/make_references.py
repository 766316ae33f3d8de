"""Writes the reference outputs that `crates/metrics/tests/{inception,clip}.rs` compare
against (`tests/resize.rs` too).

The references come from the official network definitions, run with weights that both sides can
construct without downloading anything:

* Inception-v3 (FID variant): `pytorch_fid.inception.InceptionV3` (pytorch-fid 0.3.0, the code
  that defines `pt_inception-2015-12-05`), its weight download replaced by a deterministic
  filler (splitmix64 of an FNV-1a hash of the key and the element index; the Rust test
  regenerates the same numbers). Only key names, shapes and outputs are stored.
* CLIP: an `open_clip.model.CLIP` (open_clip_torch 3.3.0) with the OpenAI ViT layout and
  QuickGELU at a tiny size, random weights rounded to f16, saved as safetensors and as a bare
  `torch.save` state dict; plus token ids from open_clip's `SimpleTokenizer`; and a CLIP with the
  real vocabulary on deterministic weights, scored end to end.
* Pillow's bicubic resize of a float plane (clean-fid's resize before Inception), and its 8-bit
  bilinear and bicubic resize (torchvision's `Resize` on PIL images).
* VGG: torchvision's `VGG` at reduced widths on deterministic weights, fed as LANTERN's
  `eval_prec_recall.py` feeds it (precision/recall features: fc2 before its ReLU).

* HPSv2: its preprocessing (from the hpsv2 wheel) and scoring on a small CLIP with ViT-H-14's
  80-wide vision heads, deterministic weights.

Re-run (needs torch, torchvision, pytorch-fid, open_clip_torch, safetensors, numpy, pillow, and
the unzipped hpsv2 wheel at $HPSV2_SRC for `hps`):
    python3 crates/metrics/tests/data/make_references.py [inception clip hps resize vgg]
"""

import json
import math
import os
import sys
from unittest import mock

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
MASK = (1 << 64) - 1


def fnv1a(key: str) -> int:
    h = 0xCBF29CE484222325
    for b in key.encode():
        h = ((h ^ b) * 0x100000001B3) & MASK
    return h


def uniform(key: str, n: int) -> np.ndarray:
    """n numbers in [0, 1): splitmix64(fnv1a(key) + i) >> 40, divided by 2^24 (exact in f32)."""
    with np.errstate(over="ignore"):
        z = np.uint64(fnv1a(key)) + np.arange(n, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        z = z + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return ((z >> np.uint64(40)).astype(np.float32)) / np.float32(1 << 24)


def filler(key: str, shape) -> np.ndarray:
    """The deterministic weight of one Inception key (same rule in `tests/inception.rs`)."""
    n = int(np.prod(shape)) if len(shape) else 1
    u = uniform(key, n)
    s = lambda v: np.float32(v)  # noqa: E731
    if key.endswith("conv.weight") or key == "fc.weight":
        fan_in = int(np.prod(shape[1:]))
        v = (u * s(2) - s(1)) * s(math.sqrt(6.0 / fan_in))
    elif key.endswith("bn.weight") or key.endswith("running_var"):
        v = u + s(0.5)
    elif key.endswith("running_mean") or key.endswith("bn.bias") or key == "fc.bias":
        v = (u * s(2) - s(1)) * s(0.1)
    else:
        raise ValueError(key)
    return v.reshape(shape)


def pattern(b: int, side: int, width: int = None) -> np.ndarray:
    """Test images in [0, 1], `[b, 3, side, width or side]` (same formula in the Rust tests)."""
    width = width or side
    bb, c, y, x = np.meshgrid(np.arange(b), np.arange(3), np.arange(side), np.arange(width), indexing="ij")
    v = 0.5 + 0.5 * np.sin(0.37 * y + 0.23 * x + 1.3 * c + 2.1 * bb) * np.cos(0.11 * x * (c + 1) - 0.07 * y)
    return v.astype(np.float32)


def inception():
    from pytorch_fid import inception as pf

    shapes = {}

    def fake_download(url, progress=True):
        net = pf._inception_v3(num_classes=1008, aux_logits=False, weights=None)
        sd = {}
        for k, t in net.state_dict().items():
            if k.endswith("num_batches_tracked"):
                sd[k] = t
                continue
            sd[k] = torch.from_numpy(filler(k, tuple(t.shape)))
            shapes[k] = list(t.shape)
        # the FID blocks have the same parameter names and shapes as torchvision's
        return sd

    with mock.patch.object(pf, "load_state_dict_from_url", fake_download):
        net = pf.InceptionV3([0, 1, 2, 3], resize_input=True, normalize_input=True).eval()
        full = pf.fid_inception_v3().eval()
    x = torch.from_numpy(pattern(2, 64))
    with torch.no_grad():
        outs = net(x)
        pool = outs[3].flatten(1)
        logits = pool @ full.fc.weight.T
    # clean-fid's "clean" preprocessing: 8-bit pixels, Pillow bicubic per channel on floats,
    # clip, (x - 128) / 128; then the same network without its own resize.
    from PIL import Image

    signed = pattern(2, 64) * np.float32(2) - np.float32(1)
    u8 = np.clip(np.float32(127.5) * signed + np.float32(128), 0, 255).astype(np.uint8)
    planes = [
        np.asarray(Image.fromarray(u8[b, c].astype(np.float32), mode="F").resize((299, 299), Image.BICUBIC))
        for b in range(2)
        for c in range(3)
    ]
    clean = (np.clip(np.stack(planes).reshape(2, 3, 299, 299), 0, 255) - 128) / 128
    with mock.patch.object(pf, "load_state_dict_from_url", fake_download):
        net_only = pf.InceptionV3([3], resize_input=False, normalize_input=False).eval()
    with torch.no_grad():
        pool_clean = net_only(torch.from_numpy(clean.astype(np.float32)))[0].flatten(1)
    ref = {
        "source": "pytorch_fid 0.3.0 InceptionV3(resize_input, normalize_input), deterministic weights",
        "input": {"batch": 2, "side": 64},
        "keys": shapes,
        "block_channel_means": [o[0].mean(dim=(1, 2)).tolist() for o in outs[:3]],
        "pool3": pool.tolist(),
        "logits_unbiased": logits.tolist(),
        "pool3_clean": pool_clean.tolist(),
    }
    with open(os.path.join(HERE, "inception_reference.json"), "w") as f:
        json.dump(ref, f)
    print("inception: pool3[0][:4]", pool[0, :4].tolist())


def clip_normalise(x):
    """CLIP's per-channel normalisation of [0, 1] pixels."""
    mean = torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(1, 3, 1, 1)
    std = torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(1, 3, 1, 1)
    return (x - mean) / std


PROMPTS = [
    "A photo depicts a red fox in the snow.",
    "  Two   DOGS, playing  frisbee!!  ",
    "it's 3:45pm & they're late; we'll see",
    "café crème at 東京 station — 100% naïve",
    "Tom &amp; Jerry &lt;3",
    "it\u2019s \u201cquoted\u201d \ufb01ne",
    "cafe\u0301 (decomposed), CAPS and 12345",
    "emoji 🙂 and tabs\tand\nnewlines",
    "a " + "very " * 90 + "long prompt",
    "",
]


def clip():
    import open_clip
    from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg
    from safetensors.torch import save_file

    torch.manual_seed(7)
    model = CLIP(
        embed_dim=64,
        vision_cfg=CLIPVisionCfg(layers=2, width=128, patch_size=16, image_size=64),
        text_cfg=CLIPTextCfg(context_length=77, vocab_size=1000, width=128, heads=2, layers=2),
        quick_gelu=True,
    ).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.02)  # zero-initialised LayerNorm biases get values too
            p.copy_(p.half().float())
    sd = {k: v.half().contiguous() for k, v in model.state_dict().items() if k != "attn_mask"}
    save_file(sd, os.path.join(HERE, "clip-tiny.safetensors"))
    torch.save(sd, os.path.join(HERE, "clip-tiny.pt"))

    x = torch.from_numpy(pattern(2, 64))
    gen = torch.Generator().manual_seed(3)
    ids = torch.zeros(3, 77, dtype=torch.long)
    for row, n in enumerate([5, 12, 77]):
        body = torch.randint(1, 997, (n,), generator=gen)
        ids[row, :n] = body
        ids[row, n - 1] = 999  # the end-of-text id is the largest; the tower pools there
    with torch.no_grad():
        img = model.encode_image(clip_normalise(x))
        txt = model.encode_text(ids)
    tok = open_clip.get_tokenizer("ViT-B-32")
    tokens = tok(PROMPTS)
    ref = {
        "source": "open_clip_torch 3.3.0 CLIP(quick_gelu) tiny, f16-rounded random weights",
        "input": {"batch": 2, "side": 64},
        "image_embeds": img.tolist(),
        "text_ids": ids.tolist(),
        "text_embeds": txt.tolist(),
        "prompts": PROMPTS,
        "prompt_tokens": [row[: row.tolist().index(tok.eot_token_id) + 1].tolist() for row in tokens],
    }
    with open(os.path.join(HERE, "clip_reference.json"), "w") as f:
        json.dump(ref, f)
    print("clip: image[0][:4]", img[0, :4].tolist(), "text[0][:4]", txt[0, :4].tolist())


def clip_filler(key: str, shape) -> np.ndarray:
    """Deterministic CLIP weights (same rule in `tests/clip.rs`): LayerNorm gains near 1, other
    vectors small, matrices uniform in ±0.1."""
    n = int(np.prod(shape)) if len(shape) else 1
    u = uniform(key, n) * np.float32(2) - np.float32(1)
    if len(shape) >= 2:
        v = u * np.float32(0.1)
    elif ("ln" in key) and key.endswith("weight"):
        v = u * np.float32(0.1) + np.float32(1)
    else:
        v = u * np.float32(0.05)
    return v.reshape(shape)


def pil_images(x: np.ndarray):
    """`[b, 3, h, w]` pixels in [0, 1] as the PIL images of their saved PNGs (LlamaGen's
    `save_image`: `clamp(127.5·x' + 128)` of x' = 2x − 1, truncated)."""
    from PIL import Image

    signed = x * np.float32(2) - np.float32(1)
    u8 = np.clip(np.float32(127.5) * signed + np.float32(128), 0, 255).astype(np.uint8)
    return [Image.fromarray(np.ascontiguousarray(im.transpose(1, 2, 0)), mode="RGB") for im in u8]


def openai_transform(n_px: int):
    """OpenAI CLIP's `_transform`: Resize(n_px, bicubic), CenterCrop, ToTensor, Normalize."""
    from torchvision import transforms as T

    return T.Compose([
        T.Resize(n_px, interpolation=T.InterpolationMode.BICUBIC),
        T.CenterCrop(n_px),
        T.ToTensor(),
        T.Normalize((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)),
    ])


def hps_transform(image_size: int):
    """HPSv2's own `preprocess_val` (`image_transform(..., resize_longest_max=True)` of its
    open_clip fork), loaded from the hpsv2 wheel (`pip download hpsv2 --no-deps`, unzipped at
    $HPSV2_SRC) without importing the package (which fetches weights)."""
    import importlib.util
    import types

    root = os.path.join(os.environ["HPSV2_SRC"], "hpsv2", "src", "open_clip")
    pkg = types.ModuleType("hps_open_clip")
    pkg.__path__ = [root]
    sys.modules["hps_open_clip"] = pkg
    for name in ["constants", "transform"]:
        spec = importlib.util.spec_from_file_location(f"hps_open_clip.{name}", os.path.join(root, name + ".py"))
        mod = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = mod
        spec.loader.exec_module(mod)
    return sys.modules["hps_open_clip.transform"].image_transform(image_size, is_train=False, resize_longest_max=True)


def fill_clip(model) -> dict:
    """Loads `clip_filler` weights into an open_clip `CLIP`; returns the filled keys' shapes."""
    shapes = {}
    sd = {}
    for k, t in model.state_dict().items():
        if k in ("attn_mask", "logit_scale"):
            sd[k] = t
            continue
        shapes[k] = list(t.shape)
        sd[k] = torch.from_numpy(clip_filler(k, tuple(t.shape)))
    model.load_state_dict(sd)
    return shapes


def clip_score():
    """A CLIP with the real 49,408-token vocabulary and deterministic weights: CLIP scores of
    two 70 × 90 images (saved as PNGs, OpenAI's preprocessing: resize, crop) against
    "A photo depicts " + caption, through open_clip's tokenizer."""
    import open_clip
    from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg

    model = CLIP(
        embed_dim=32,
        vision_cfg=CLIPVisionCfg(layers=1, width=64, patch_size=16, image_size=64),
        text_cfg=CLIPTextCfg(context_length=77, vocab_size=49408, width=64, heads=1, layers=1),
        quick_gelu=True,
    ).eval()
    shapes = fill_clip(model)
    captions = ["a red fox in the snow", "two dogs playing frisbee"]
    tf = openai_transform(64)
    x = torch.stack([tf(im) for im in pil_images(pattern(2, 70, 90))])
    tok = open_clip.get_tokenizer("ViT-B-32")
    with torch.no_grad():
        img = model.encode_image(x)
        txt = model.encode_text(tok(["A photo depicts " + c for c in captions]))
        score = torch.nn.functional.cosine_similarity(img, txt)
    ref = {
        "source": "open_clip_torch 3.3.0 CLIP(quick_gelu), 49,408 tokens, deterministic weights; "
        "OpenAI's _transform on PIL images",
        "input": {"batch": 2, "side": 70, "width": 90},
        "keys": shapes,
        "captions": captions,
        "image_embeds": img.tolist(),
        "text_embeds": txt.tolist(),
        "scores": score.tolist(),
    }
    with open(os.path.join(HERE, "clip_score_reference.json"), "w") as f:
        json.dump(ref, f)
    print("clip score:", score.tolist())


def hps():
    """HPSv2's computation on a small open_clip CLIP with its ViT-H-14 traits (80-wide vision
    heads, exact GELU) and deterministic weights: 90 × 70 images (saved as PNGs) through HPSv2's
    own preprocessing, scored against the bare captions (normalised features, dot product)."""
    import open_clip
    from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg

    model = CLIP(
        embed_dim=32,
        vision_cfg=CLIPVisionCfg(layers=1, width=160, head_width=80, patch_size=16, image_size=64),
        text_cfg=CLIPTextCfg(context_length=77, vocab_size=49408, width=64, heads=1, layers=1),
        quick_gelu=False,
    ).eval()
    shapes = fill_clip(model)
    captions = ["a red fox in the snow", "two dogs playing frisbee"]
    tf = hps_transform(64)
    x = torch.stack([tf(im) for im in pil_images(pattern(2, 90, 70))])
    tok = open_clip.get_tokenizer("ViT-H-14")
    with torch.no_grad():
        img = model.encode_image(x, normalize=True)
        txt = model.encode_text(tok(captions), normalize=True)
        score = (img * txt).sum(dim=1)
    ref = {
        "source": "open_clip_torch 3.3.0 CLIP(head_width=80, gelu), deterministic weights; "
        "hpsv2 1.2.0 preprocess_val on PIL images",
        "input": {"batch": 2, "side": 90, "width": 70},
        "keys": shapes,
        "captions": captions,
        "input_mean": x.mean(dim=(2, 3)).tolist(),
        "scores": score.tolist(),
    }
    with open(os.path.join(HERE, "hps_reference.json"), "w") as f:
        json.dump(ref, f)
    print("hps:", score.tolist())


def resize():
    """Pillow's bicubic resize of a float ('F') plane, as clean-fid applies it before Inception."""
    from PIL import Image

    h, w = 17, 23
    plane = uniform("resize", h * w).reshape(h, w) * np.float32(255)
    img = Image.fromarray(plane, mode="F")
    outs = []
    for ow, oh in [(29, 11), (7, 40), (5, 9), (41, 37)]:
        out = np.asarray(img.resize((ow, oh), resample=Image.BICUBIC))
        outs.append({"h": oh, "w": ow, "values": out.flatten().tolist()})
    ref = {"source": "Pillow " + Image.__version__, "h": h, "w": w, "outputs": outs}
    with open(os.path.join(HERE, "resize_reference.json"), "w") as f:
        json.dump(ref, f)


def resize_u8():
    """Pillow's 8-bit bilinear and bicubic resize of one channel (an `'L'` image; each band of an
    `RGB` image is resampled the same way), as torchvision's `Resize` on a PIL image does it, and
    the float bilinear resize."""
    from PIL import Image

    h, w = 17, 23
    plane = (uniform("resize-u8", h * w).reshape(h, w) * np.float32(256)).astype(np.uint8)
    fplane = uniform("resize", h * w).reshape(h, w) * np.float32(255)
    outs = []
    for name, flt in [("bilinear", Image.BILINEAR), ("bicubic", Image.BICUBIC)]:
        for ow, oh in [(29, 11), (7, 40), (5, 9), (41, 37), (3, 2)]:
            out = np.asarray(Image.fromarray(plane, mode="L").resize((ow, oh), resample=flt))
            outs.append({"filter": name, "h": oh, "w": ow, "values": out.flatten().tolist()})
    f_outs = []
    for ow, oh in [(29, 11), (7, 40)]:
        out = np.asarray(Image.fromarray(fplane, mode="F").resize((ow, oh), resample=Image.BILINEAR))
        f_outs.append({"h": oh, "w": ow, "values": out.flatten().tolist()})
    ref = {"source": "Pillow " + Image.__version__, "h": h, "w": w, "outputs": outs, "float_bilinear": f_outs}
    with open(os.path.join(HERE, "resize_u8_reference.json"), "w") as f:
        json.dump(ref, f)


def vgg_filler(key: str, shape) -> np.ndarray:
    """Deterministic VGG weights (same rule in `tests/vgg.rs`): He-uniform kernels and matrices,
    small biases."""
    n = int(np.prod(shape))
    u = uniform(key, n) * np.float32(2) - np.float32(1)
    if key.endswith("weight"):
        v = u * np.float32(math.sqrt(6.0 / int(np.prod(shape[1:]))))
    else:
        v = u * np.float32(0.1)
    return v.reshape(shape)


def vgg():
    """torchvision's VGG at reduced widths (its `make_layers` plan D, the classifier's layer
    indices kept) on deterministic weights, fed as LANTERN's `eval_prec_recall.py` feeds it:
    8-bit images, `Resize([224, 224])` on PIL images, `ToTensor`, ImageNet `Normalize`,
    `features`, `classifier[:4]` (fc2 before its ReLU). Also the key shapes of the real vgg16."""
    from PIL import Image
    from torch import nn
    from torchvision import transforms
    from torchvision.models import vgg as tv

    full = {k: list(t.shape) for k, t in tv.vgg16(weights=None).state_dict().items()}
    cfg = [8, 8, "M", 16, 16, "M", 24, 24, 24, "M", 32, 32, 32, "M", 32, 32, 32, "M"]
    net = tv.VGG(tv.make_layers(cfg), num_classes=10, init_weights=False)
    net.classifier = nn.Sequential(
        nn.Linear(32 * 7 * 7, 48), nn.ReLU(True), nn.Dropout(),
        nn.Linear(48, 40), nn.ReLU(True), nn.Dropout(),
        nn.Linear(40, 10),
    )
    shapes = {k: list(t.shape) for k, t in net.state_dict().items()}
    net.load_state_dict({k: torch.from_numpy(vgg_filler(k, tuple(s))) for k, s in shapes.items()})
    net.eval()
    signed = pattern(2, 64) * np.float32(2) - np.float32(1)
    u8 = np.clip(np.float32(127.5) * signed + np.float32(128), 0, 255).astype(np.uint8)
    tf = transforms.Compose([
        transforms.Resize([224, 224]),
        transforms.ToTensor(),
        transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225]),
    ])
    x = torch.stack([tf(Image.fromarray(np.ascontiguousarray(u8[b].transpose(1, 2, 0)), mode="RGB")) for b in range(2)])
    with torch.no_grad():
        before_fc = net.features(x).view(-1, 32 * 7 * 7)
        fc2 = net.classifier[:4](before_fc)
        logits = net.classifier(before_fc)
    ref = {
        "source": "torchvision 0.29 VGG(make_layers) at reduced widths, deterministic weights; "
        "eval_prec_recall.py preprocessing",
        "input": {"batch": 2, "side": 64},
        "keys": shapes,
        "vgg16_keys": full,
        "input_mean": x.mean(dim=(2, 3)).tolist(),
        "fc2": fc2.tolist(),
        "logits": logits.tolist(),
    }
    with open(os.path.join(HERE, "vgg_reference.json"), "w") as f:
        json.dump(ref, f)
    print("vgg: fc2[0][:4]", fc2[0, :4].tolist())


if __name__ == "__main__":
    which = sys.argv[1:] or ["inception", "clip", "hps", "resize", "vgg"]
    if "inception" in which:
        inception()
    if "clip" in which:
        clip()
        clip_score()
    if "hps" in which:
        hps()
    if "resize" in which:
        resize()
        resize_u8()
    if "vgg" in which:
        vgg()
