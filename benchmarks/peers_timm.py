"""Peer figures from timm on PyTorch CPU; run with a Python that has torch and timm (an optional extra).

`python benchmarks/peers_timm.py VARIANT [VARIANT ...] [--only latency|train] [--compile]` prints one JSON object: per
variant, batch-1 latency with 1 and 2 threads, batch-32 latency and training images/s (AdamW, batch 32) with 2
threads; `--compile` trains with the whole step under `torch.compile`, as Keras' `jit_compile=True` does on PyTorch.
"""
import json

import timm
import torch

from benchmarks.measure import peer_parser, timed  # numpy-only module: importable beside torch (PYTHONPATH=repo root)


def latency(model, runs: int) -> dict:
    res = {}
    with torch.inference_mode():
        for threads in (1, 2):
            torch.set_num_threads(threads)
            x = torch.randn(1, 3, 224, 224)
            res[f"batch1_{threads}t"] = timed(lambda: model(x), runs)
        x32 = torch.randn(32, 3, 224, 224)
        res["batch32"] = timed(lambda: model(x32), max(3, runs // 4))
    return res


def train(model, steps: int, precision: str = "float32", compile_step: bool = False) -> dict:
    """Images/s of an AdamW step on a batch of 32, cross-entropy, 2 threads, eager or (`compile_step`) under
    `torch.compile`; `mixed_bfloat16`: the forward pass and loss under `torch.autocast("cpu", torch.bfloat16)`,
    weights and optimizer in float32."""
    torch.set_num_threads(2)
    model.train()
    x32 = torch.randn(32, 3, 224, 224)  # outside inference_mode: autograd needs a normal tensor
    opt = torch.optim.AdamW(model.parameters(), 1e-4)
    y = torch.randint(0, 1000, (32,))

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", torch.bfloat16, enabled=precision == "mixed_bfloat16"):
            loss = torch.nn.functional.cross_entropy(model(x32), y)
        loss.backward()
        opt.step()
    stats = timed(torch.compile(step) if compile_step else step, steps, warmup=2, min_warmup_s=0.5)
    return {"train_batch32": {**stats, "images_per_s": 32 / (stats["median_ms"] / 1e3)}}


def main(argv=None):
    parser = peer_parser(__doc__.splitlines()[0])
    parser.add_argument("--compile", action="store_true", help="train with the step under torch.compile")
    args = parser.parse_args(argv)
    out = {"torch": torch.__version__, "timm": timm.__version__}
    for name in args.names:
        if name not in timm.list_models():
            out[name] = None
            continue
        model = timm.create_model(name, pretrained=False).eval()
        res = {} if args.only == "train" else latency(model, args.runs)
        out[name] = res if args.only == "latency" else {**res, **train(model, args.train_steps, args.precision,
                                                                              args.compile)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
