"""Benchmark of the stage-3 network: LoRA vs full fine-tuning, and inference vs the compute bound.

Training (same batch ``(B, 1, 96, frames)``, same loss, same AdamW settings on both sides):

- **lora**: :func:`moodscape.models.lora.add_lora` (r=8, α=16, default targets: every conv
  of ``layer1..layer4``); backbone frozen by ``requires_grad=False``, BatchNorm in eval
  mode; adapters and head train.
- **full**: every parameter trains, BatchNorm in train mode (as ``moodscape train
  --mode full`` does).
- **igrad** (reference, not a target): the plain backbone frozen, BatchNorm in eval mode,
  the *input* requiring grad. Its backward computes every input gradient and no weight
  gradient, so ``full.backward - igrad.backward`` is the cost of the weight-gradient
  convolutions that a frozen backbone skips.

Steps of the three sides are interleaved one by one (so machine load hits all of them)
after warm-up steps; samples/s and the LoRA/full ratio are medians over steps.

Inference: ``eval()`` + ``torch.inference_mode()``, on the plain ResNet with the adapters
merged into the weights (``merged_copy``), for a few batch sizes and memory formats, the
unmerged peft model for comparison, and optionally ``torch.compile`` with inductor's
``freezing`` (conv+BN folding, prepacked oneDNN weights). The compute bound is
``sgemm FLOP/s ÷ FLOPs per sample``: FLOPs from ``FlopCounterMode`` on one forward, the
sgemm rate from 2048×2048 float32 ``torch.mm`` timed right before and after each
inference measurement with the same thread count, so load hits both.

Run: ``PYTHONPATH=src python bench/bench_network.py [--batch 32] [--frames 256]``.
"""

from __future__ import annotations

import os

# Set before torch loads OpenMP. With the default (spinning) wait policy, a parallel region
# on a machine whose cores are busy with other work waits a scheduler time slice for a
# preempted thread: ~300 ms for a fused AdamW step over the 0.3 M LoRA parameters instead
# of ~1 ms. PASSIVE affects both training sides and the sgemm reference alike.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from moodscape.models.backbone import AudioResNet  # noqa: E402
from moodscape.models.lora import add_lora, merged_copy, parameter_counts  # noqa: E402

N_MELS = 96
N_LABELS = 8
SGEMM_N = 2048


# ---------------------------------------------------------------- helpers


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def to_format(tensor_or_module, channels_last: bool):
    if not channels_last:
        return tensor_or_module
    if isinstance(tensor_or_module, torch.Tensor):
        return tensor_or_module.contiguous(memory_format=torch.channels_last)
    return tensor_or_module.to(memory_format=torch.channels_last)


def make_optimizer(parameters: list[torch.nn.Parameter]) -> torch.optim.Optimizer:
    """AdamW, fused kernel where this torch supports it on CPU (same for both sides)."""
    try:
        return torch.optim.AdamW(parameters, lr=1e-3, weight_decay=1e-2, fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.AdamW(parameters, lr=1e-3, weight_decay=1e-2, foreach=True)


def sgemm_rate(a: torch.Tensor, b: torch.Tensor, repeats: int = 2) -> float:
    """FLOP/s of ``repeats`` float32 matrix products ``a @ b``."""
    start = time.perf_counter()
    for _ in range(repeats):
        torch.mm(a, b)
    return repeats * 2 * a.shape[0] * a.shape[1] * b.shape[1] / (time.perf_counter() - start)


def median(values) -> float:
    return statistics.median(values)


# ---------------------------------------------------------------- training


class Side:
    """One training configuration: its model, optimiser, input and phase timings."""

    def __init__(self, name: str, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor):
        self.name, self.model, self.x, self.y = name, model, x, y
        self.trainable = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = make_optimizer(self.trainable) if self.trainable else None
        self.times: list[tuple[float, float, float]] = []  # (forward, backward, optimiser)

    def step(self, record: bool = True) -> None:
        t0 = time.perf_counter()
        if self.optimizer is not None:
            self.optimizer.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(self.model(self.x), self.y)
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        if self.optimizer is not None:
            self.optimizer.step()
        t3 = time.perf_counter()
        if self.x.requires_grad:
            self.x.grad = None
        if record:
            self.times.append((t1 - t0, t2 - t1, t3 - t2))

    def totals(self) -> list[float]:
        return [sum(t) for t in self.times]


def build_training_sides(batch: int, frames: int, channels_last: bool) -> dict[str, Side]:
    generator = torch.Generator().manual_seed(0)
    x = to_format(torch.randn(batch, 1, N_MELS, frames, generator=generator), channels_last)
    y = torch.randint(0, N_LABELS, (batch,), generator=generator)

    torch.manual_seed(0)
    lora = add_lora(AudioResNet(n_outputs=N_LABELS), r=8, alpha=16)  # freezes + BN eval
    torch.manual_seed(0)
    full = AudioResNet(n_outputs=N_LABELS)  # everything trains, BN in train mode
    torch.manual_seed(0)
    igrad = AudioResNet(n_outputs=N_LABELS)
    igrad.requires_grad_(False)
    igrad.freeze_batchnorm()

    sides = {}
    for name, model, inp in (
        ("lora", lora, x),
        ("full", full, x),
        ("igrad", igrad, x.detach().clone().requires_grad_(True)),
    ):
        model.train()
        sides[name] = Side(name, to_format(model, channels_last), inp, y)
    return sides


def check_lora_side(side: Side) -> dict:
    """Prove the LoRA side trains only adapters + head and computes no frozen weight grads."""
    counts = parameter_counts(side.model)
    side.step(record=False)
    frozen = [(n, p) for n, p in side.model.named_parameters() if not p.requires_grad]
    with_grad = [n for n, p in frozen if p.grad is not None]
    trainable_names = [n for n, p in side.model.named_parameters() if p.requires_grad]
    bad = [n for n in trainable_names if "lora_" not in n and "modules_to_save" not in n]
    if with_grad or bad:
        raise SystemExit(f"LoRA side is not what it should be: grads on frozen {with_grad[:3]}, "
                         f"trainable non-adapters {bad[:3]}")
    bn_training = [n for n, m in side.model.named_modules()
                   if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.training]
    if bn_training:
        raise SystemExit(f"LoRA side has BatchNorm in train mode: {bn_training[:3]}")
    return {"trainable": counts["trainable"], "backbone": counts["backbone"],
            "adapters": counts["adapters"], "frozen_tensors_with_grad": 0}


def step_flops(side: Side) -> tuple[float, float]:
    """Forward and backward FLOPs per sample of one training step (FlopCounterMode)."""
    batch = side.x.shape[0]
    with FlopCounterMode(display=False) as forward_counter:
        loss = torch.nn.functional.cross_entropy(side.model(side.x), side.y)
    with FlopCounterMode(display=False) as backward_counter:
        loss.backward()
    if side.optimizer is not None:
        side.optimizer.zero_grad(set_to_none=True)
    side.x.grad = None
    return (forward_counter.get_total_flops() / batch, backward_counter.get_total_flops() / batch)


def bench_training(args) -> dict:
    sides = build_training_sides(args.batch, args.frames, args.channels_last)
    lora_check = check_lora_side(sides["lora"])
    flops = {name: step_flops(side) for name, side in sides.items()}
    for _ in range(args.warmup):
        for side in sides.values():
            side.step(record=False)
    order = list(sides.values())
    for i in range(args.steps):
        for side in order[i % 3:] + order[:i % 3]:  # rotate who goes first
            side.step()
    batch = args.batch
    result = {"lora_check": lora_check, "sides": {}}
    for name, side in sides.items():
        phases = [median(t[k] for t in side.times) for k in range(3)]
        result["sides"][name] = {
            "samples_per_s": batch / median(side.totals()),
            "forward_ms": 1e3 * phases[0],
            "backward_ms": 1e3 * phases[1],
            "optimizer_ms": 1e3 * phases[2],
            "step_ms": 1e3 * median(side.totals()),
            "trainable_params": sum(p.numel() for p in side.trainable),
            "forward_gflop_per_sample": flops[name][0] / 1e9,
            "backward_gflop_per_sample": flops[name][1] / 1e9,
        }
    ratios = [f / l for f, l in zip(sides["full"].totals(), sides["lora"].totals())]
    result["ratio_per_step"] = ratios
    result["ratio"] = median(ratios)
    f, lo = result["sides"]["full"], result["sides"]["lora"]
    result["flop_ratio"] = ((f["forward_gflop_per_sample"] + f["backward_gflop_per_sample"])
                            / (lo["forward_gflop_per_sample"] + lo["backward_gflop_per_sample"]))
    result["weight_grad_ms"] = (median(t[1] for t in sides["full"].times)
                                - median(t[1] for t in sides["igrad"].times)) * 1e3
    return result


# ---------------------------------------------------------------- inference


def bench_inference(args) -> dict:
    torch.manual_seed(0)
    adapted = add_lora(AudioResNet(n_outputs=N_LABELS), r=8, alpha=16)
    with torch.no_grad():  # non-zero adapters, so merging really changes the weights
        for name, parameter in adapted.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 1e-2)
    adapted.eval()
    merged = merged_copy(adapted).eval()

    probe = torch.randn(2, 1, N_MELS, args.frames)
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        merged(probe)
    flops_per_sample = counter.get_total_flops() / probe.shape[0]
    with torch.inference_mode():
        check = (merged(probe) - adapted(probe)).abs().max().item()

    merged_cl = to_format(merged_copy(adapted).eval(), True)
    adapted_cl = to_format(adapted, True)
    configs = [("merged", "contiguous", args.batch, merged, False),
               ("peft (unmerged)", "channels_last", args.batch, adapted_cl, True)]
    configs += [("merged", "channels_last", b, merged_cl, True) for b in args.infer_batches]

    compile_note = None
    if args.compile:
        try:
            import torch._inductor.config as inductor_config

            inductor_config.freezing = True
            compiled = torch.compile(merged_cl)
            x = to_format(torch.randn(args.batch, 1, N_MELS, args.frames), True)
            start = time.perf_counter()
            with torch.inference_mode():
                compiled(x)
            compile_note = f"compiled in {time.perf_counter() - start:.0f} s"
            configs.append(("merged + torch.compile(freezing)", "channels_last", args.batch,
                            compiled, True))
        except Exception as error:  # noqa: BLE001 - report any compiler failure and go on
            compile_note = f"torch.compile unavailable: {type(error).__name__}: {error}"[:300]

    a = torch.randn(SGEMM_N, SGEMM_N)
    b = torch.randn(SGEMM_N, SGEMM_N)
    sgemm_rate(a, b)
    inputs = {}
    for _, fmt, batch, model, cl in configs:
        key = (batch, cl)
        if key not in inputs:
            inputs[key] = to_format(torch.randn(batch, 1, N_MELS, args.frames), cl)
        with torch.inference_mode():
            model(inputs[key])  # warm-up (oneDNN primitive creation)

    rates = {i: [] for i in range(len(configs))}
    efficiencies = {i: [] for i in range(len(configs))}
    sgemms = []
    for _ in range(args.infer_repeats):
        for i, (_, _, batch, model, cl) in enumerate(configs):
            x = inputs[(batch, cl)]
            before = sgemm_rate(a, b)
            with torch.inference_mode():
                start = time.perf_counter()
                for _ in range(args.infer_iters):
                    model(x)
                rate = args.infer_iters * batch / (time.perf_counter() - start)
            after = sgemm_rate(a, b)
            bound = (before + after) / 2 / flops_per_sample
            sgemms += [before, after]
            rates[i].append(rate)
            efficiencies[i].append(rate / bound)
    rows = []
    for i, (what, fmt, batch, _, _) in enumerate(configs):
        rows.append({"model": what, "format": fmt, "batch": batch,
                     "samples_per_s": median(rates[i]),
                     "fraction_of_bound": median(efficiencies[i])})
    sgemm = median(sgemms)
    best = max(rows, key=lambda row: row["fraction_of_bound"])
    return {"flops_per_sample": flops_per_sample, "sgemm_flops_per_s": sgemm,
            "compute_bound_samples_per_s": sgemm / flops_per_sample, "rows": rows,
            "best": best, "merge_max_abs_diff": check, "compile": compile_note}


# ---------------------------------------------------------------- report


def machine_info(threads: int) -> dict:
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "torch": torch.__version__,
            "threads": threads, "python": platform.python_version(),
            "mkldnn": torch.backends.mkldnn.is_available(),
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
            "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
            "date": datetime.date.today().isoformat()}


def markdown(args, machine: dict, training: dict | None, inference: dict | None) -> str:
    lines = [f"Machine: {machine['cpu']}, {machine['cores']} cores, torch {machine['torch']}, "
             f"{machine['threads']} threads, OMP_WAIT_POLICY={machine['omp_wait_policy']}, load average at the end "
             f"{', '.join(f'{v:.1f}' for v in machine['load_average'] or [])}, {machine['date']}.",
             ""]
    if training:
        s = training["sides"]
        lines += [f"Training, batch ({args.batch}, 1, {N_MELS}, {args.frames}), "
                  f"{'channels_last' if args.channels_last else 'contiguous'}, fused AdamW, "
                  f"median of {args.steps} interleaved steps after {args.warmup} warm-up steps:",
                  "",
                  "| side | trainable params | GFLOP/sample fwd + bwd | forward ms | backward ms "
                  "| optimiser ms | step ms | samples/s |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for name in ("lora", "full", "igrad"):
            r = s[name]
            lines.append(f"| {name} | {r['trainable_params']:,} | {r['forward_gflop_per_sample']:.2f}"
                         f" + {r['backward_gflop_per_sample']:.2f} | {r['forward_ms']:.0f} | "
                         f"{r['backward_ms']:.0f} | {r['optimizer_ms']:.0f} | {r['step_ms']:.0f} | "
                         f"{r['samples_per_s']:.2f} |")
        met = "yes" if training["ratio"] >= 1.5 else "no"
        lines += ["",
                  f"LoRA / full samples/s: **{training['ratio']:.2f}×** (median of per-step "
                  f"ratios; target ≥ 1.5: **{met}**); FLOP ratio {training['flop_ratio']:.2f}×; "
                  f"weight-gradient convolutions (full backward − igrad backward) "
                  f"{training['weight_grad_ms']:.0f} ms.", ""]
    if inference:
        inf = inference
        lines += [f"Inference, `eval()` + `inference_mode()`: {inf['flops_per_sample'] / 1e9:.3f} "
                  f"GFLOP/sample (FlopCounterMode), sgemm {inf['sgemm_flops_per_s'] / 1e9:.1f} GFLOP/s "
                  f"({SGEMM_N}² float32 `torch.mm`, median) → compute bound "
                  f"{inf['compute_bound_samples_per_s']:.1f} samples/s. Fraction of the bound = "
                  f"median over repeats of samples/s ÷ the bound from sgemm timed right before and "
                  f"after.", "",
                  "| model | memory format | batch | samples/s | fraction of compute bound |",
                  "|---|---|---:|---:|---:|"]
        for row in inf["rows"]:
            lines.append(f"| {row['model']} | {row['format']} | {row['batch']} | "
                         f"{row['samples_per_s']:.1f} | {row['fraction_of_bound']:.0%} |")
        best = inf["best"]
        met = "yes" if best["fraction_of_bound"] >= 0.75 else "no"
        lines += ["", f"Best: {best['model']}, {best['format']}, batch {best['batch']}: "
                  f"**{best['fraction_of_bound']:.0%}** of the compute bound (target ≥ 75%: "
                  f"**{met}**). Merged vs peft max |Δlogit| {inf['merge_max_abs_diff']:.1e}."
                  + (f" torch.compile: {inf['compile']}." if inf["compile"] else "")]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=32, help="training and inference batch")
    parser.add_argument("--frames", type=int, default=256, help="mel crop length")
    parser.add_argument("--steps", type=int, default=5, help="timed training steps per side")
    parser.add_argument("--warmup", type=int, default=2, help="untimed training steps per side")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads")
    parser.add_argument("--contiguous", dest="channels_last", action="store_false",
                        help="train in NCHW instead of channels_last")
    parser.add_argument("--infer-batches", type=lambda s: [int(v) for v in s.split(",")],
                        default=[16, 32, 64], help="channels_last inference batch sizes")
    parser.add_argument("--infer-iters", type=int, default=2, help="forwards per measurement")
    parser.add_argument("--infer-repeats", type=int, default=4, help="measurements per config")
    parser.add_argument("--no-compile", dest="compile", action="store_false",
                        help="skip the torch.compile inference config")
    parser.add_argument("--skip", choices=["training", "inference"], help="skip one part")
    parser.add_argument("--json", type=Path, help="also write the numbers to this JSON file")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    training = None if args.skip == "training" else bench_training(args)
    inference = None if args.skip == "inference" else bench_inference(args)
    machine = machine_info(torch.get_num_threads())
    print(markdown(args, machine, training, inference))
    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                         "machine": machine, "training": training,
                                         "inference": inference}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
