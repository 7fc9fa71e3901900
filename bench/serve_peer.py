"""The serving benchmark's peer: a FastAPI + uvicorn app doing per request
what Jina's HTTP gateway does: parse the documents (pydantic models, tensors
to numpy as DocArray does), call a no-op executor, serialize the answer with
Jina's header. Started by bench_serve:

    /usr/bin/python3 -m uvicorn serve_peer:app --app-dir bench --port P
"""
from typing import Any, Dict, List, Optional
from uuid import uuid4

import numpy as np
from fastapi import FastAPI
from pydantic import BaseModel

app = FastAPI()


class Tensor(BaseModel):
    dtype: str
    shape: List[int]
    data: List[float]


class Doc(BaseModel):
    id: Optional[str] = None
    text: Optional[str] = None
    tags: Dict[str, Any] = {}
    embedding: Optional[Tensor] = None


class PostRequest(BaseModel):
    data: List[Doc] = []
    exec_endpoint: str = "/"
    parameters: Dict[str, Any] = {}


def noop_executor(docs):
    return docs


def to_array(t: Optional[Tensor]):
    return None if t is None else np.asarray(t.data, dtype=t.dtype).reshape(t.shape)


@app.get("/")
async def health():
    return {}


@app.post("/post")
async def post(req: PostRequest):
    docs = [(d.id or uuid4().hex, d.text, d.tags, to_array(d.embedding)) for d in req.data]
    docs = noop_executor(docs)
    out = []
    for doc_id, text, tags, emb in docs:
        d = {"id": doc_id}
        if text is not None:
            d["text"] = text
        if tags:
            d["tags"] = tags
        if emb is not None:
            d["embedding"] = {"dtype": str(emb.dtype), "shape": list(emb.shape), "data": emb.tolist()}
        out.append(d)
    header = {"requestId": uuid4().hex, "status": {"code": 0, "description": ""}, "execEndpoint": req.exec_endpoint}
    return {"header": header, "parameters": req.parameters, "data": out}
