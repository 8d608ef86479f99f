"""PyTorch DistributedDataParallel (gloo) against one PyTorch process, for docs/distributed.md:
the `mnist` (784 → 256 → 256 → 10, global batch 64) and `wide` (1024 → 1024 → 1024 → 10, global
batch 256) MLPs with Adam on synthetic data of the same shapes (speed only), median ms per step
after 5 warm-up steps. `python bench/ddp.py [mnist|wide] [ranks] [threads per rank]`."""
import os
import statistics
import sys
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

SHAPES = {"mnist": (784, 256, 64, 200), "wide": (1024, 1024, 256, 40)}


def model(features, hidden):
    return torch.nn.Sequential(
        torch.nn.Linear(features, hidden), torch.nn.ReLU(),
        torch.nn.Linear(hidden, hidden), torch.nn.ReLU(),
        torch.nn.Linear(hidden, 10))


def worker(rank, ranks, name, threads, out):
    torch.set_num_threads(threads)
    features, hidden, batch, steps = SHAPES[name]
    torch.manual_seed(0)
    net = model(features, hidden)
    if ranks > 1:
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        os.environ.setdefault("MASTER_PORT", "29517")
        dist.init_process_group("gloo", rank=rank, world_size=ranks)
        net = torch.nn.parallel.DistributedDataParallel(net)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    local = batch // ranks
    x = torch.randn(local, features)
    y = torch.randint(0, 10, (local,))
    loss_fn = torch.nn.CrossEntropyLoss()
    times = []
    for step in range(steps):
        start = time.perf_counter()
        opt.zero_grad()
        loss_fn(net(x), y).backward()
        opt.step()
        times.append(time.perf_counter() - start)
    if rank == 0:
        out.put(statistics.median(times[5:]) * 1e3)
    if ranks > 1:
        dist.destroy_process_group()


if __name__ == "__main__":
    name = sys.argv[1] if len(sys.argv) > 1 else "mnist"
    ranks = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    threads = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=worker, args=(r, ranks, name, threads, out)) for r in range(ranks)]
    for p in procs:
        p.start()
    ms = out.get()
    for p in procs:
        p.join()
    print(f"{name}: {ranks} process(es) x {threads} thread(s): {ms:.2f} ms/step (median)")
