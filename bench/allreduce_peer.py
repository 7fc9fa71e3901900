"""The peer of bench_allreduce: the same allreduce through Python's
torch.distributed (Gloo, Debian's python3-torch over the same LibTorch),
two processes on 127.0.0.1. Prints one line: `peer GB/s X`.

  python3 bench/allreduce_peer.py FLOATS REPEATS
"""
import os
import socket
import sys
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def rank_main(rank, world, port, floats, repeats, out):
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    t = torch.ones(floats)
    dist.all_reduce(t)  # warm-up: connections, buffers
    dist.barrier()
    t0 = time.perf_counter()
    for _ in range(repeats):
        dist.all_reduce(t)
    secs = (time.perf_counter() - t0) / repeats
    if rank == 0:
        out.put(floats * 4 / secs / 1e9)
    dist.destroy_process_group()


def main():
    floats, repeats = int(sys.argv[1]), int(sys.argv[2])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=rank_main, args=(r, 2, port, floats, repeats, out)) for r in range(2)]
    for p in procs:
        p.start()
    rate = out.get(timeout=600)
    for p in procs:
        p.join()
    print(f"peer GB/s {rate:.3f}")


if __name__ == "__main__":
    main()
