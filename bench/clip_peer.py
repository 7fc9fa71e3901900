#!/usr/bin/python3
"""The Python side of bench_clip: the same CLIP training step in PyTorch
(Debian's python3-torch, the same LibTorch 1.13), and PIL + torchvision
preprocessing of the same JPEG files.

  clip_peer.py step PRESET BATCH STEPS      -> prints seconds per step
  clip_peer.py prep DIR SIZE                -> prints images per second
  clip_peer.py make-images DIR N W H        -> writes N JPEG files
  clip_peer.py infer PRESET BATCH REPS TOKENS
      -> images/s and texts/s, eager (no_grad) then TorchScript
         (trace + freeze + optimize_for_inference), one line each
"""
import glob
import math
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

PRESETS = {  # vision width, layers, patch, image; text width, layers; projection; heads v, t
    "openai/clip-vit-base-patch32": (768, 12, 32, 224, 512, 12, 512, 12, 8),
    "small": (128, 4, 8, 32, 128, 4, 128, 2, 2),
}


class Attention(nn.Module):
    def __init__(self, w, heads):
        super().__init__()
        self.heads, self.hd = heads, w // heads
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = (nn.Linear(w, w) for _ in range(4))

    def forward(self, x, mask=None):
        b, l, w = x.shape
        split = lambda t: t.view(b, l, self.heads, self.hd).transpose(1, 2)
        q = split(self.q_proj(x) * self.hd ** -0.5)
        k, v = split(self.k_proj(x)), split(self.v_proj(x))
        s = q @ k.transpose(-2, -1)
        if mask is not None:
            s = s + mask
        return self.out_proj((s.softmax(-1) @ v).transpose(1, 2).reshape(b, l, w))


class Layer(nn.Module):
    def __init__(self, w, heads):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(w), nn.LayerNorm(w)
        self.attn = Attention(w, heads)
        self.fc1, self.fc2 = nn.Linear(w, 4 * w), nn.Linear(4 * w, w)

    def forward(self, x, mask=None):
        x = x + self.attn(self.ln1(x), mask)
        h = self.fc1(self.ln2(x))
        return x + self.fc2(h * torch.sigmoid(1.702 * h))


class Clip(nn.Module):
    def __init__(self, vw, vl, patch, image, tw, tl, proj, vh, th):
        super().__init__()
        grid = image // patch
        self.patch = nn.Conv2d(3, vw, patch, patch, bias=False)
        self.cls = nn.Parameter(torch.randn(vw) * 0.02)
        self.vpos = nn.Parameter(torch.randn(grid * grid + 1, vw) * 0.01)
        self.ln_pre, self.ln_post = nn.LayerNorm(vw), nn.LayerNorm(vw)
        self.vlayers = nn.ModuleList(Layer(vw, vh) for _ in range(vl))
        self.tok = nn.Embedding(49408, tw)
        self.tpos = nn.Parameter(torch.randn(77, tw) * 0.01)
        self.tlayers = nn.ModuleList(Layer(tw, th) for _ in range(tl))
        self.ln_final = nn.LayerNorm(tw)
        self.vproj, self.tproj = nn.Linear(vw, proj, bias=False), nn.Linear(tw, proj, bias=False)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def encode_image(self, px):
        x = self.patch(px).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], 1, -1), x], 1) + self.vpos
        x = self.ln_pre(x)
        for layer in self.vlayers:
            x = layer(x)
        return self.vproj(self.ln_post(x[:, 0]))

    def encode_text(self, ids):
        x = self.tok(ids) + self.tpos[: ids.shape[1]]
        l = ids.shape[1]
        mask = torch.full((l, l), float("-inf")).triu(1)
        for layer in self.tlayers:
            x = layer(x, mask)
        x = self.ln_final(x)
        return self.tproj(x[torch.arange(x.shape[0]), ids.argmax(-1)])


def step(preset, batch, steps, tokens=77):
    torch.manual_seed(0)
    cfg = PRESETS[preset]
    model = Clip(*cfg)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}], lr=1e-5)
    px = torch.randn(batch, 3, cfg[3], cfg[3])
    ids = torch.randint(1, 49000, (batch, 77))
    ids[:, tokens - 1] = 49407  # end of text; like OpenAI's code, every position of the 77 is computed
    labels = torch.arange(batch)

    def one():
        img, txt = F.normalize(model.encode_image(px), dim=-1), F.normalize(model.encode_text(ids), dim=-1)
        logits = model.logit_scale.exp() * img @ txt.t()
        loss = (F.cross_entropy(logits, labels) + F.cross_entropy(logits.t(), labels)) / 2
        opt.zero_grad()
        loss.backward()
        opt.step()

    for _ in range(2):  # warm-up, as the C++ side: the heap reaches its working size
        one()
    t0 = time.perf_counter()
    for _ in range(steps):
        one()
    print((time.perf_counter() - t0) / steps)


def infer(preset, batch, reps, tokens):
    """Encoding for an index or a query, as a PyTorch user would serve it."""
    torch.manual_seed(0)
    cfg = PRESETS[preset]
    model = Clip(*cfg).eval()
    px = torch.randn(batch, 3, cfg[3], cfg[3])
    ids = torch.randint(1, 49000, (batch, tokens))
    ids[:, tokens - 1] = 49407  # short texts: the user feeds only their tokens

    class Tower(nn.Module):
        def __init__(self, fn):
            super().__init__()
            self.model, self.fn = model, fn

        def forward(self, x):
            return getattr(self.model, self.fn)(x)

    def rate(fn, x):
        # As bench_clip's rate: a quarter of a second's warm-up, then the
        # best of three rounds of reps / 3 calls.
        warm = time.perf_counter()
        i = 0
        while i < 2 or time.perf_counter() - warm < 0.25:
            fn(x)
            i += 1
        calls = max(1, reps // 3)
        best = 0.0
        for _ in range(3):
            t0 = time.perf_counter()
            for _ in range(calls):
                fn(x)
            best = max(best, calls * batch / (time.perf_counter() - t0))
        return best

    with torch.no_grad():
        print(rate(model.encode_image, px), rate(model.encode_text, ids))
        jit = []
        for fn, x in (("encode_image", px), ("encode_text", ids)):
            traced = torch.jit.trace(Tower(fn).eval(), (x,), check_trace=False)
            jit.append(torch.jit.optimize_for_inference(torch.jit.freeze(traced)))
        print(rate(jit[0], px), rate(jit[1], ids))


def prep(folder, size):
    from PIL import Image
    from torchvision import transforms as T

    tf = T.Compose([T.Resize(size, interpolation=T.InterpolationMode.BICUBIC), T.CenterCrop(size),
                    lambda im: im.convert("RGB"), T.ToTensor(),
                    T.Normalize((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711))])
    files = sorted(glob.glob(os.path.join(folder, "*.jpg")))
    t0 = time.perf_counter()
    for f in files:
        tf(Image.open(f))
    print(len(files) / (time.perf_counter() - t0))


def make_images(folder, n, w, h):
    from PIL import Image
    os.makedirs(folder, exist_ok=True)
    g = torch.Generator().manual_seed(0)
    for i in range(n):
        base = torch.rand(3, 8, 8, generator=g)
        img = F.interpolate(base[None], size=(h, w), mode="bilinear", align_corners=False)[0]
        arr = (img.permute(1, 2, 0) * 255).byte().numpy()
        Image.fromarray(arr).save(os.path.join(folder, f"{i:04d}.jpg"), quality=90)


if __name__ == "__main__":
    torch.set_num_threads(1)  # the same intra-op setting as the C++ side
    cmd = sys.argv[1]
    if cmd == "step":
        step(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]) if len(sys.argv) > 5 else 77)
    elif cmd == "infer":
        torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "1")))  # the C++ side's, passed on
        infer(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
    elif cmd == "prep":
        prep(sys.argv[2], int(sys.argv[3]))
    elif cmd == "make-images":
        make_images(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
