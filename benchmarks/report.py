"""The benchmark's Markdown: every figure with its fraction of the matmul peak and ours/theirs ratios."""
from __future__ import annotations

from benchmarks.rounds import markdown as targets_table


def _ms(stats: dict | None) -> str:
    return "–" if not stats else f"{stats['median_ms']:.1f} ({stats['min_ms']:.1f}–{stats['max_ms']:.1f})"


def _ratio(ours: float | None, theirs: float | None) -> str:
    return "–" if not ours or not theirs else f"{ours / theirs:.2f}×"


def _peak(flops: int, stats: dict, peak_gflops: float) -> str:
    return f"{flops / (stats['median_ms'] * 1e6) / peak_gflops:.0%}"


def markdown(r: dict) -> str:
    m, mm = r["machine"], r["matmul"]
    peak = {1: mm["numpy_1t_gflops"], 2: max(mm["numpy_2t_gflops"], mm["tf_gflops"])}
    timm, kecam = r.get("timm") or {}, r.get("kecam") or {}
    isa = " ".join(m.get("isa", [])) or "ISA not read"
    lines = [f"Machine: {m['cpu']} ({isa}), {m['cores']} cores; TF {m['tensorflow']}, Keras {m['keras']}; "
             f"{m['date']}.",
             f"float32 matmul peak (n={mm['n']}): TF {mm['tf_gflops']:.1f} GFLOP/s, NumPy 1 thread "
             f"{mm['numpy_1t_gflops']:.1f}, 2 threads {mm['numpy_2t_gflops']:.1f}. Latencies: median (min–max) ms; "
             "'peak' = model FLOPs / latency as a fraction of the matmul peak at the same thread count."]
    if r.get("int8_ceiling"):
        c = r["int8_ceiling"]
        lines.append(f"int8 limit: one TFLite FC {'×'.join(map(str, c['shape']))} runs "
                     + ", ".join(f"{c['float32'][t]['gops']:.0f} → {c['int8'][t]['gops']:.0f} GOP/s "
                                 f"(int8 {c['speedup'][t]:.2f}× faster) with {t[0]} thread{'s' * (t != '1t')}"
                                 for t in ("1t", "2t")) + " in float32 → int8.")
    lines.append("")
    if r.get("targets"):
        t = r["targets"]
        lines += [targets_table(t["variant"], t.get("latency"), t.get("train")),
                  "All figures (each measured once, one after the other):", ""]
    for key in ("timm", "kecam"):
        if isinstance(r.get(key), dict) and "skipped" in r[key]:
            lines.append(f"- {key} peer skipped: {r[key]['skipped']}")
    lines += ["", "| variant | GFLOPs | mode | size MB | 1 thread ms | peak | 2 threads ms | peak | timm 1t / 2t ms | "
              "ours/timm (1t, 2t) |", "|---|---|---|---|---|---|---|---|---|---|"]
    for name, v in r["variants"].items():
        t = timm.get(name) or {}
        for mode, f in v["tflite"].items():
            peer = mode == "float32" and t
            lines.append(
                f"| {name} | {v['flops'] / 1e9:.2f} | TFLite {mode} | {f['bytes'] / 1e6:.1f} | {_ms(f['1t'])} | "
                f"{_peak(v['flops'], f['1t'], peak[1])} | {_ms(f['2t'])} | {_peak(v['flops'], f['2t'], peak[2])} | "
                + (f"{_ms(t['batch1_1t'])} / {_ms(t['batch1_2t'])} | "
                   f"{_ratio(f['1t']['median_ms'], t['batch1_1t']['median_ms'])}, "
                   f"{_ratio(f['2t']['median_ms'], t['batch1_2t']['median_ms'])} |" if peer else "| |"))
        fp, i8 = v["tflite"].get("float32"), v["tflite"].get("int8")
        if fp and i8:
            lines.append(f"| {name} | | int8 vs float32 | {i8['bytes'] / fp['bytes']:.2f}× size | "
                         f"{fp['1t']['median_ms'] / i8['1t']['median_ms']:.2f}× faster | | "
                         f"{fp['2t']['median_ms'] / i8['2t']['median_ms']:.2f}× faster | | | |")
    lines += ["", "| variant | Keras b1 ms | Keras b32 ms | kecam b1 / b32 ms | timm b32 ms | train img/s (b32) | "
              "XLA | kecam img/s | ours/kecam | timm img/s | ours/timm |", "|---" * 11 + "|"]
    for name, v in r["variants"].items():
        t, k = timm.get(name) or {}, kecam.get(name) or {}
        ours = max(v["train"]["batch32"]["images_per_s"], v["train"]["batch32_xla"]["images_per_s"])
        ki, ti = k.get("train_batch32", {}).get("images_per_s"), t.get("train_batch32", {}).get("images_per_s")
        lines.append(f"| {name} | {_ms(v['keras']['batch1'])} | {_ms(v['keras']['batch32'])} | "
                     f"{_ms(k.get('batch1'))} / {_ms(k.get('batch32'))} | {_ms(t.get('batch32'))} | "
                     f"{v['train']['batch32']['images_per_s']:.1f} | {v['train']['batch32_xla']['images_per_s']:.1f} | "
                     f"{ki and f'{ki:.1f}' or '–'} | {_ratio(ours, ki)} | {ti and f'{ti:.1f}' or '–'} | "
                     f"{_ratio(ours, ti)} |")
    for probe in r.get("memory", []):
        lines.append(f"\nPeak RSS, {probe['what']} of {probe['variant']}: {probe['peak_rss_mib']:.0f} MiB.")
    return "\n".join(lines) + "\n"
