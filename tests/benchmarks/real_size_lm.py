"""The captioner at its real size on this machine's CPU: load time, peak memory, prefill and seconds per
generated token in float32, float16 and int8 (the app's own loading and precision code), their ratio,
and the ratio to the bandwidth floor (the bytes of weights one token reads / the measured bandwidth);
then the app's ROI check -> a full 20-token caption in the fast path. Not part of the test suite.

The model is Blip2ForConditionalGeneration with the configuration of Salesforce/blip2-opt-2.7b (ViT-g
39 layers, Q-Former 12, OPT-2.7B 32 layers, hidden 2560, vocabulary 50272), random seeded float16
weights, saved once in the hub's layout (safetensors shards of 2 GB with model.safetensors.index.json)
under ``--cache`` (default ~/.cache/brainview/real-size), written a tensor at a time: memory stays
near one shard. float32 of all 32 layers would take 10.6 GB, so float32 is measured against the fast
path on the first ``--layers`` layers of the same checkpoint (same width, same vocabulary), and
float16 and int8 on all 32. Each measurement runs in its own process (peak memory is its own).

    .venv/bin/python tests/benchmarks/real_size_lm.py [--layers 8] [--tokens 20]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

ROOT = Path(__file__).resolve().parents[2]
SHARD_BYTES = 2 * 10**9


def blip2_opt_27b_config():
    """The configuration of Salesforce/blip2-opt-2.7b (the image token as its current hub config has it)."""
    from transformers import Blip2Config, Blip2QFormerConfig, Blip2VisionConfig, OPTConfig

    vision = Blip2VisionConfig(hidden_size=1408, intermediate_size=6144, num_hidden_layers=39, num_attention_heads=16,
                               image_size=224, patch_size=14, qkv_bias=True)
    qformer = Blip2QFormerConfig(hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                                 intermediate_size=3072, cross_attention_frequency=2, encoder_hidden_size=1408)
    text = OPTConfig(hidden_size=2560, ffn_dim=10240, num_hidden_layers=32, num_attention_heads=32, vocab_size=50272,
                     max_position_embeddings=2048, word_embed_proj_dim=2560, tie_word_embeddings=True,
                     bos_token_id=2, eos_token_id=50118, pad_token_id=1)
    return Blip2Config(vision_config=vision.to_dict(), qformer_config=qformer.to_dict(), text_config=text.to_dict(),
                       num_query_tokens=32, image_token_index=50265, architectures=["Blip2ForConditionalGeneration"])


def build(folder: Path) -> None:
    """Write the random real-size checkpoint, one tensor at a time, in 2 GB shards with an index."""
    import shutil

    import torch
    from safetensors.torch import save_file
    from transformers import Blip2ForConditionalGeneration

    config = blip2_opt_27b_config()
    with torch.device("meta"):
        model = Blip2ForConditionalGeneration(config)
    folder.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(0)
    shard, size, names, weight_map, total = {}, 0, [], {}, 0

    def flush():
        nonlocal shard, size
        name = f"model-{len(names) + 1:05d}.safetensors"
        save_file(shard, str(folder / name), metadata={"format": "pt"})
        names.append(name)
        weight_map.update({k: name for k in shard})
        shard, size = {}, 0

    for key, meta in model.state_dict().items():  # the hub stores the tied lm_head too
        if "norm" in key.lower() and key.endswith("weight"):
            tensor = torch.ones(meta.shape, dtype=torch.float16)
        elif key.endswith("bias"):
            tensor = torch.zeros(meta.shape, dtype=torch.float16)
        else:
            tensor = (torch.randn(meta.shape, generator=generator) * 0.02).to(torch.float16)
        shard[key] = tensor
        size += tensor.numel() * 2
        total += tensor.numel() * 2
        if size >= SHARD_BYTES:
            flush()
    if shard:
        flush()
    n = len(names)
    for i, name in enumerate(names):  # the hub's names: model-0000i-of-0000n
        final = name.replace(".safetensors", f"-of-{n:05d}.safetensors")
        (folder / name).rename(folder / final)
        weight_map = {k: (final if v == name else v) for k, v in weight_map.items()}
    (folder / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=1))
    config.save_pretrained(folder)
    demo = ROOT / "resources/demo/vlm/captioner"  # a tokenizer: ids it lacks decode to nothing
    for name in ("tokenizer.json", "tokenizer_config.json", "processor_config.json"):
        shutil.copy(demo / name, folder / name)


def truncated(full: Path, layers: int) -> Path:
    """A folder whose config keeps the first ``layers`` OPT layers, naming the same shards (links)."""
    out = full.parent / f"{full.name}-{layers}-layers"
    if out.exists():
        return out
    out.mkdir()
    for path in full.iterdir():
        if path.name != "config.json":
            (out / path.name).symlink_to(path)
    config = json.loads((full / "config.json").read_text())
    config["text_config"]["num_hidden_layers"] = layers
    (out / "config.json").write_text(json.dumps(config))
    return out


def bytes_per_token(lm) -> int:
    """Bytes of weights one generated token reads: every linear layer and the output layer (the input
    embeddings are looked up, a row each)."""
    from torch import nn
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    total = 0
    for module in lm.modules():
        if type(module) is nn.Linear:
            total += module.weight.numel() * module.weight.element_size()
        elif isinstance(module, DynamicLinear):  # int8: a byte a weight
            total += module.in_features * module.out_features
    return total


def child(folder: str, precision: str, tokens: int, threads: int) -> None:
    """One measurement in this process (``threads``: torch's threads, 0 for its default): a JSON line."""
    import numpy as np
    import torch

    if threads:
        torch.set_num_threads(threads)

    from brainview.decoding.blip2 import Blip2Adapter
    from brainview.decoding.cpu_precision import measure_read_bandwidth, measure_token_seconds

    start = time.perf_counter()
    adapter = Blip2Adapter.load(folder, None, device="cpu", parts="caption", cpu_precision=precision)
    load_s = time.perf_counter() - start
    lm = adapter.captioner.language_model
    token_s = measure_token_seconds(lm, tokens=8)
    ids = torch.ones((1, 33), dtype=torch.long)
    with torch.inference_mode():
        start = time.perf_counter()
        lm(input_ids=ids, attention_mask=torch.ones_like(ids))
        prefill_s = time.perf_counter() - start
    bandwidth = measure_read_bandwidth()
    result = {"precision": adapter.precision, "load_s": load_s, "token_s": token_s, "prefill_s": prefill_s,
              "bytes_per_token": bytes_per_token(lm), "bandwidth": bandwidth,
              "layers": lm.config.num_hidden_layers, "threads": torch.get_num_threads()}
    if tokens:  # the ROI check's caption: predicted query tokens -> projection -> prefill -> tokens, as the app does
        query = np.random.default_rng(0).standard_normal((1, 32, 768)).astype(np.float32)
        start = time.perf_counter()
        caption = adapter.caption(query, max_new_tokens=tokens)
        result["caption_s"] = time.perf_counter() - start
        result["caption_words"] = len(caption[0].split())
    result["peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9
    print(json.dumps(result))


def run_child(folder: Path, precision: str, tokens: int = 0, threads: int = 0) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", str(folder), precision, str(tokens), str(threads)],
                         capture_output=True, text=True, check=False)
    if out.returncode:
        sys.exit(f"real_size_lm.py: {precision} on {folder.name} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def gpu(full: Path, out: Path) -> None:
    """The real-size captioner in float16 on CUDA as the app loads it, with the demo's brain model on the
    same GPU: where each part sits, peak GPU memory, seconds per 30-token caption and per ROI decode
    (brain model -> 20-token caption), and the app's screenshot rendered with its models on the GPU."""
    import numpy as np
    import torch

    from brainview.bundle import open_bundle
    from brainview.decoding.blip2 import Blip2Adapter
    from brainview.decoding.decoder import Decoder
    from brainview.paths import demo_bundle_path
    from brainview.qt.app import screenshot

    assert torch.cuda.is_available(), "no CUDA GPU"
    print(torch.cuda.get_device_name(0))
    torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    adapter = Blip2Adapter.load(full, None, device="cuda", parts="caption")
    torch.cuda.synchronize()
    print(f"load {time.perf_counter() - start:.1f} s; parts {adapter.captioner_parts}; captioner "
          f"{ {str(p.device) + ' ' + str(p.dtype) for p in adapter.captioner.parameters()} }")
    query = np.random.default_rng(0).standard_normal((1, 32, 768)).astype(np.float32)
    adapter.caption(query, max_new_tokens=5)  # warm-up
    for tokens, what in ((30, "caption (30 tokens)"), (20, "ROI decode's caption (20 tokens)")):
        torch.cuda.synchronize()
        start = time.perf_counter()
        adapter.caption(query, max_new_tokens=tokens)
        torch.cuda.synchronize()
        print(f"{what}: {time.perf_counter() - start:.3f} s")
    demo = Decoder.load(open_bundle(demo_bundle_path()), device="cuda")
    stage = demo.stages[-1]
    placed = {s: str(lin.device_weight.device) if lin.device_weight is not None else "host"
              for s, lin in demo.model.stages.items()}
    roi = next(iter(demo.bundle.rois))
    demo.captions(demo.synthetic("roi", demo.bundle.roi_voxels(roi), stage))  # warm-up
    start = time.perf_counter()
    demo.captions(demo.synthetic("roi", demo.bundle.roi_voxels(roi), stage))
    print(f"demo: captioner on {demo.adapter.device}, brain model stages on {placed}; ROI {roi} decode "
          f"(brain model -> caption) {time.perf_counter() - start:.3f} s")
    print(f"peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB")
    out.mkdir(parents=True, exist_ok=True)
    screenshot(str(demo_bundle_path()), str(out / "gpu_screenshot.png"), size=(1600, 1000), device="cuda",
               rois=(next(iter(demo.bundle.rois)),))
    print(f"screenshot {out / 'gpu_screenshot.png'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache/brainview/real-size")
    parser.add_argument("--layers", type=int, default=8, help="OPT layers of the float32 comparison (default 8)")
    parser.add_argument("--tokens", type=int, default=20, help="tokens of the ROI check's caption (default 20)")
    parser.add_argument("--gpu", type=Path, metavar="OUT", help="measure on CUDA instead (scripts/gpu_check.sh), "
                                                                 "the screenshot into OUT")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], int(args.child[2]), int(args.child[3]))
        return
    full = args.cache / "blip2-opt-2.7b-random"
    if not (full / "model.safetensors.index.json").is_file():
        start = time.perf_counter()
        build(full)
        print(f"built {full} in {time.perf_counter() - start:.0f} s")
    if args.gpu:
        gpu(full, args.gpu)
        return
    load = os.getloadavg()
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; torch threads {__import__('torch').get_num_threads()}")
    part = truncated(full, args.layers)
    rows = []
    for folder, precision, tokens, threads in ((part, "float32", 0, 0), (part, "float16", 0, 0), (part, "int8", 0, 0),
                                               (part, "int8", 0, 1), (full, "float16", 0, 0),
                                               (full, "int8", args.tokens, 0), (full, "int8", args.tokens, 1)):
        rows.append(run_child(folder, precision, tokens, threads))
        print(json.dumps(rows[-1]), flush=True)
    print(f"{'model':<14}{'precision':<10}{'thr':>4}{'load s':>8}{'peak GB':>9}{'prefill s':>10}{'s/token':>9}"
          f"{'vs f32':>8}{'floor s':>9}{'÷floor':>8}")
    base = {r["layers"]: r["token_s"] for r in rows if r["precision"] == "float32"}
    for r in rows:
        floor = r["bytes_per_token"] / r["bandwidth"]
        ratio = f"{base[r['layers']] / r['token_s']:.1f}×" if r["layers"] in base else "—"
        print(f"{r['layers']:>2} OPT layers  {r['precision']:<10}{r['threads']:>4}{r['load_s']:>8.1f}{r['peak_rss_gb']:>9.2f}"
              f"{r['prefill_s']:>10.3f}{r['token_s']:>9.3f}{ratio:>8}{floor:>9.3f}{r['token_s'] / floor:>8.2f}")
    for last in rows[-2:]:
        print(f"bandwidth {last['bandwidth'] / 1e9:.1f} GB/s; ROI check -> {args.tokens}-token caption at real size "
              f"({last['precision']}, {last['threads']} threads): {last['caption_s']:.2f} s "
              f"({last['caption_words']} words decoded); load + first caption {last['load_s'] + last['caption_s']:.0f} s")
    load = os.getloadavg()
    print(f"load average after {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


if __name__ == "__main__":
    main()
