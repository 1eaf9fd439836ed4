"""Peer figures from timm on PyTorch CPU; run with a Python that has torch and timm (an optional extra).

`python benchmarks/peers_timm.py VARIANT [VARIANT ...]` prints one JSON object: per variant, batch-1 latency with 1
and 2 threads, batch-32 latency and training images/s (AdamW, batch 32) with 2 threads.
"""
import json
import sys

import timm
import torch

from benchmarks.measure import timed  # numpy-only module: importable beside torch (PYTHONPATH=repo root)


def main(names, runs=20, train_steps=5):
    out = {"torch": torch.__version__, "timm": timm.__version__}
    for name in names:
        if name not in timm.list_models():
            out[name] = None
            continue
        model = timm.create_model(name, pretrained=False).eval()
        res = {}
        with torch.inference_mode():
            for threads in (1, 2):
                torch.set_num_threads(threads)
                x = torch.randn(1, 3, 224, 224)
                res[f"batch1_{threads}t"] = timed(lambda: model(x), runs)
            x32 = torch.randn(32, 3, 224, 224)
            res["batch32"] = timed(lambda: model(x32), max(3, runs // 4))
        model.train()
        x32 = torch.randn(32, 3, 224, 224)  # outside inference_mode: autograd needs a normal tensor
        opt = torch.optim.AdamW(model.parameters(), 1e-4)
        y = torch.randint(0, 1000, (32,))

        def step():
            opt.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(model(x32), y).backward()
            opt.step()
        stats = timed(step, train_steps, warmup=2, min_warmup_s=0.5)
        res["train_batch32"] = {**stats, "images_per_s": 32 / (stats["median_ms"] / 1e3)}
        out[name] = res
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1:])
