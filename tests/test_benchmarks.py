"""The benchmark's arithmetic and plumbing: per-round ratios, target verdicts, the light TFLite timer.

Speed itself is never asserted here (speed goals live in `python -m benchmarks.run`); these tests check that the
figures the benchmark reports are computed from the right measurements.
"""
from __future__ import annotations

import json
import sys

import pytest

from benchmarks import rounds, tflite_time
from export.convert import to_tflite
from tests.backends import tensorflow_only
from tests.helpers import tiny_model

pytestmark = tensorflow_only("The TensorFlow/TFLite benchmark")


def fake_latency_runs(monkeypatch, f32_ms, int8_ms, timm_ms, peak):
    """Patch the subprocess calls of `latency_rounds`; round i answers with the i-th figures."""
    import benchmarks.procs as procs

    calls = {"ours": 0, "timm": 0, "order": []}

    def run_json(argv, env=None, timeout=3600):
        if "--only" in argv and "tflite" in argv:
            return {"flops": 8e9,
                    "files": {"float32": {"path": "f32", "bytes": 400}, "int8": {"path": "i8", "bytes": 100}}}
        i = calls["ours"]
        calls["ours"] += 1
        calls["order"].append("ours")
        return {"numpy_peak_gflops": {"1t": peak[i], "2t": 2 * peak[i]},
                "f32": {t: {"median_ms": f32_ms[i] / k} for t, k in (("1t", 1), ("2t", 2))},
                "i8": {t: {"median_ms": int8_ms[i] / k} for t, k in (("1t", 1), ("2t", 2))}}

    def peers(script, python, args, env=None, timeout=3600):
        i = calls["timm"]
        calls["timm"] += 1
        calls["order"].append("timm")
        return {"m": {f"batch1_{t}": {"median_ms": timm_ms[i] / k} for t, k in (("1t", 1), ("2t", 2))}}

    monkeypatch.setattr(procs, "run_json", run_json)
    monkeypatch.setattr(procs, "peers", peers)
    return calls


def test_latency_targets_are_formed_within_each_round(monkeypatch):
    # round 1: machine fast (ours 80 / timm 100 = 0.8); round 2: machine slow for both (ours 120 / timm 150 = 0.8);
    # round 3: ours 90 / timm 100. Cross-round medians would give 90/100; per-round ratios give median 0.8.
    calls = fake_latency_runs(monkeypatch, [80, 120, 90], [20, 40, 30], [100, 150, 100], [100, 50, 100])
    out = rounds.latency_rounds("m", 3, 5, "python")
    t = out["targets"]
    assert t["f32_vs_timm_1t"]["median"] == pytest.approx(0.8)
    assert t["f32_vs_timm_1t"]["max"] == pytest.approx(0.9)
    assert t["int8_speedup_1t"]["rounds"] == pytest.approx([4.0, 3.0, 3.0])
    # fraction of peak: 8 GFLOP in 80 ms = 100 GFLOP/s of a 100 GFLOP/s peak; round 2: 66.7 of 50
    assert t["f32_peak_1t"]["rounds"] == pytest.approx([1.0, 8 / 0.12 / 50, 8 / 0.09 / 100])
    assert t["int8_size"]["value"] == 0.25
    assert calls["order"] == ["ours", "timm", "timm", "ours", "ours", "timm"]


def test_missing_peer_is_reported_not_met_or_invented(monkeypatch):
    fake_latency_runs(monkeypatch, [80], [20], [100], [100])
    import benchmarks.procs as procs
    monkeypatch.setattr(procs, "peers", lambda *a, **k: {"skipped": "no torch"})
    out = rounds.latency_rounds("m", 1, 5, "python")
    assert "f32_vs_timm_1t" not in out["targets"]
    table = rounds.markdown("m", out, None)
    assert "| TFLite float32 batch-1 latency / timm, 1 thread | not measured" in table
    assert "| int8 speed-up over float32 TFLite, 1 thread | 4.00 (4.00–4.00) | >= 2.5 | yes |" in table
    assert "| int8 file size / float32 file size | 0.25 | <= 0.27 | yes |" in table


def test_target_verdicts():
    latency = {"targets": {"f32_vs_timm_1t": {"median": 0.81, "min": 0.7, "max": 0.9},
                           "f32_peak_2t": {"median": 0.75, "min": 0.7, "max": 0.8}}}
    train = {"targets": {"train_vs_timm": {"median": 1.0, "min": 0.9, "max": 1.1}}, "per_round": [{}, {}]}
    table = rounds.markdown("m", latency, train)
    assert "| TFLite float32 batch-1 latency / timm, 1 thread | 0.81 (0.70–0.90) | <= 0.8 | no |" in table
    assert "| TFLite float32 fraction of the NumPy matmul peak, 2 threads | 0.75 (0.70–0.80) | >= 0.75 | yes |" in table
    assert "| training images/s / timm, float32 | 1.00 (0.90–1.10) | >= 1.0 | yes |" in table


def test_tflite_timer_times_every_file_and_thread_count(tmp_path, capsys):
    path = tmp_path / "tiny.tflite"
    path.write_bytes(to_tflite(tiny_model("mixer_s16_224"), "float32"))
    tflite_time.main([str(path), "--runs", "2"])
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(out["numpy_peak_gflops"]) == {"1t", "2t"} and min(out["numpy_peak_gflops"].values()) > 0
    assert set(out[str(path)]) == {"1t", "2t"}
    assert all(out[str(path)][t]["runs"] == 2 and out[str(path)][t]["median_ms"] > 0 for t in ("1t", "2t"))


def test_tflite_timer_process_never_loads_tensorflow():
    import subprocess
    import sys
    code = "import sys, benchmarks.tflite_time\nassert 'tensorflow' not in sys.modules, 'TensorFlow was imported'\n"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


def test_bf16_training_only_where_the_cpu_has_native_bf16():
    assert rounds.default_precisions(["avx2", "fma"]) == ("float32",)
    assert rounds.default_precisions(["avx2", "avx512f", "amx_bf16"]) == ("float32", "mixed_bfloat16")
    train = {"precisions": ["float32"], "per_round": [{}],
             "targets": {"train_vs_timm": {"median": 0.9, "min": 0.9, "max": 0.9}}}
    table = rounds.markdown("m", None, train)
    assert "| training images/s / timm, both mixed bfloat16 (torch.autocast) | not measured" in table
    assert "mixed_bfloat16 training not measured: this CPU has none of avx512_bf16, amx_bf16." in table


def test_training_rounds_take_our_faster_graph_and_ratio_within_the_round(monkeypatch):
    import benchmarks.procs as procs

    ours = iter([(4.0, 5.0), (6.0, 3.0)])  # (plain, XLA) images/s per round
    peer = {"kecam": iter([4.0, 5.0]), "timm": iter([5.0, 8.0])}

    def run_json(argv, env=None, timeout=3600):
        assert "--no-xla" not in argv
        plain, xla = next(ours)
        return {"train": {"batch32": {"images_per_s": plain}, "batch32_xla": {"images_per_s": xla}}}

    def peers(script, python, args, env=None, timeout=3600):
        who = "kecam" if "kecam" in script else "timm"
        return {"m": {"train_batch32": {"images_per_s": next(peer[who])}}}

    monkeypatch.setattr(procs, "run_json", run_json)
    monkeypatch.setattr(procs, "peers", peers)
    out = rounds.train_rounds("m", 2, 3, "python", precisions=("float32",))
    assert [r["float32"]["ours"] for r in out["per_round"]] == [5.0, 6.0]
    assert out["targets"]["train_vs_kecam"]["rounds"] == pytest.approx([1.25, 1.2])
    assert out["targets"]["train_vs_timm"]["rounds"] == pytest.approx([1.0, 0.75])
    assert "the faster of the plain graph and XLA" in rounds.markdown("m", None, out)


def test_int8_ceiling_is_measured_and_reported():
    from benchmarks.ours import int8_gemm_ceiling
    from benchmarks.report import markdown

    c = int8_gemm_ceiling(rows=16, dim=32, hidden=64, runs=2)
    assert c["shape"] == [16, 32, 64]
    assert all(c[m][t]["gops"] > 0 and c["speedup"][t] > 0 for m in ("float32", "int8") for t in ("1t", "2t"))
    r = {"machine": {"cpu": "cpu", "isa": ["avx2"], "cores": 2, "tensorflow": "x", "keras": "y", "date": "d"},
         "matmul": {"n": 8, "tf_gflops": 1.0, "numpy_1t_gflops": 1.0, "numpy_2t_gflops": 2.0},
         "int8_ceiling": c, "variants": {}}
    line = next(line for line in markdown(r).splitlines() if line.startswith("int8 limit"))
    assert f"(int8 {c['speedup']['1t']:.2f}× faster) with 1 thread" in line and "with 2 threads" in line


def test_backend_rounds_run_each_backend_in_its_own_process_and_ratio_within_the_round(monkeypatch):
    import benchmarks.procs as procs
    from benchmarks import train_backends

    figures = {"tensorflow": iter([2.0, 3.0]), "torch": iter([4.0, 3.0]), "timm": iter([5.0, 4.0]),
               "timm_compile": iter([8.0, 6.0])}
    order = []

    def run_json(argv, env=None, timeout=3600):
        backend = env["KERAS_BACKEND"]
        order.append(backend)
        assert argv[argv.index("--worker") + 1] == "m" and argv[argv.index("--precisions") + 1] == "float32"
        assert ("--jit" in argv) == (backend == "torch")
        assert argv[0] == ("torch-python" if backend == "torch" else sys.executable)  # the same torch as timm's
        return {"images_per_s": next(figures[backend])}

    def peers(script, python, args, env=None, timeout=3600):
        name = "timm_compile" if "--compile" in args else "timm"
        assert python == "torch-python"
        order.append(name)
        return {"m": {"train_batch32": {"images_per_s": next(figures[name])}}}

    monkeypatch.setattr(procs, "run_json", run_json)
    monkeypatch.setattr(procs, "peers", peers)
    runners = ["tensorflow", "torch_compile", "timm", "timm_compile"]
    out = train_backends.rounds("m", runners, ["float32"], 2, 5, 2, "torch-python")
    assert order == ["tensorflow", "torch", "timm", "timm_compile", "timm_compile", "timm", "torch", "tensorflow"]
    entry = out["summary"]["float32"]
    assert entry["torch_compile"]["vs_timm"]["rounds"] == pytest.approx([0.8, 0.75])
    assert entry["torch_compile"]["vs_timm_compile"]["rounds"] == pytest.approx([0.5, 0.5])
    assert "timm_compile" not in entry["tensorflow"] and "vs_timm" not in entry["timm_compile"]
    assert entry["fastest"] == "torch_compile" and entry["target"] == {"bound": 1.0, "value": pytest.approx(0.775),
                                                                        "met": False}
    table = train_backends.markdown({**out, "machine": {"cpu": "c", "isa": [], "cores": 2, "date": "d"},
                                     "args": {"variant": "m", "rounds": 2, "steps": 5, "warmup": 2,
                                              "runners": runners}})
    assert "| torch_compile | float32 | 3.5 (3.0–4.0) | 0.78 (0.75–0.80) | 0.50 (0.50–0.50) |" in table
    assert "| timm | float32 | 4.5 (4.0–5.0) |  |  |" in table
    assert "fastest Keras backend torch_compile, 0.78× timm (target >= 1.0: not met)" in table


def test_fit_throughput_times_the_steps_after_warm_up(monkeypatch):
    import keras_mlp
    from benchmarks import train_backends

    model = tiny_model("mixer_s16_224")
    monkeypatch.setattr(keras_mlp, "create_model", lambda name: model)
    out = train_backends.fit_throughput("mixer_s16_224", "float32", steps=3, warmup=1, jit_compile=False, batch=4)
    assert out["backend"] == "tensorflow" and out["steps"] == 3 and out["warmup_s"] > 0
    assert out["min_ms"] <= out["median_ms"] <= out["max_ms"]
    assert out["images_per_s"] == pytest.approx(4 / (out["median_ms"] / 1e3))


def test_qat_compare_produces_every_row():
    """The one-command QAT comparison runs end to end (one short seed): every engine's file is made and scored."""
    from benchmarks import qat_compare

    rows = qat_compare.run(0, epochs=2, qat_epochs=1, qat_lr=1e-4, weight_bits=(4,))
    assert [r[0] for r in rows] == ["float32", "PTQ int8", "tfmot QAT int8", "Keras-3 QAT int8", "PTQ W4A8",
                                    "Keras-3 QAT W4A8"]
    top1 = {setting: acc for setting, _, acc, _ in rows}
    assert top1["float32"] > 0.3, top1  # 10 classes: chance is 0.1
    assert top1["PTQ int8"] >= top1["float32"] - 0.1, top1  # int8 rounding alone (measured: within 1 point)
    assert all(0.0 <= acc <= 1.0 for acc in top1.values()) and all(seconds > 0 for *_, seconds in rows), rows
    table = qat_compare.markdown({0: rows}, [0])
    assert f"| PTQ int8 | int8 file (256 calibration images) | {100 * top1['PTQ int8']:.2f} |" in table
