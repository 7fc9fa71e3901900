"""The search benchmark's peer: what a Jina flow of CLIPTextEncoder +
SimpleIndexer does per query, as FastAPI + uvicorn + PyTorch in one process
(Jina adds a gateway -> executor hop per executor; this peer has none, in
its favour): parse the query, turn its text into token ids, encode them
with the same `small` CLIP text tower (bench/clip_peer.py, Debian's
python3-torch), cosine distances to every indexed embedding, top-k, and the
matches with their PNG blobs, tags and scores as JSON.

Tokenising is a word-hash stand-in for CLIP's BPE (cheaper than the real
thing: also in the peer's favour). Started by bench_search:

    SEARCH_PEER_INDEX=index.jsonl /usr/bin/python3 -m uvicorn search_peer:app --app-dir bench --port P
"""
import json
import os
import sys
import zlib
from uuid import uuid4

import torch
import torch.nn.functional as F
from fastapi import FastAPI, Request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clip_peer import PRESETS, Clip  # noqa: E402

torch.set_grad_enabled(False)
torch.manual_seed(0)
model = Clip(*PRESETS["small"]).eval()

with open(os.environ["SEARCH_PEER_INDEX"]) as f:
    docs = [json.loads(line) for line in f]
index = F.normalize(torch.tensor([d["embedding"]["data"] for d in docs], dtype=torch.float32), dim=-1)
stored = [{k: d[k] for k in ("id", "blob", "mime_type", "tags") if k in d} for d in docs]

app = FastAPI()


def token_ids(text, context=16):
    ids = [49406] + [1 + zlib.crc32(w.encode()) % 49000 for w in text.lower().split()][: context - 2] + [49407]
    return torch.tensor([ids + [0] * (context - len(ids))])


@app.get("/")
async def health():
    return {}


@app.post("/search")
async def search(req: Request):
    body = await req.json()
    limit = int(body.get("parameters", {}).get("limit", 20))
    out = []
    for d in body.get("data", []):
        q = F.normalize(model.encode_text(token_ids(d["text"])), dim=-1)[0]
        distances, rows = torch.topk(1 - index @ q, limit, largest=False)
        matches = [dict(stored[r], scores={"cosine": {"value": v}}) for v, r in zip(distances.tolist(), rows.tolist())]
        out.append({"id": d.get("id") or uuid4().hex, "text": d["text"], "matches": matches})
    header = {"requestId": uuid4().hex, "status": {"code": 0, "description": ""}, "execEndpoint": "/search"}
    return {"header": header, "parameters": body.get("parameters", {}), "data": out}
