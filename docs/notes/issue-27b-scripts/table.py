"""Per subject: the issue's table from `brainview eval STUDY --stage 2 --fmri-repeats 1|2|all --json`, retrieval
from the --no-captions runs (nc*.json), caption metrics from the captioned runs (r*.json) where they finished."""
import json
import os

D = "/tmp/h27b_eval"
DIRS = ("image_given_brain", "brain_given_image", "text_given_brain", "brain_given_text")
METRICS = ("meteor", "rouge1", "rougeL", "sentence")


def load(name):
    path = f"{D}/{name}.json"
    return json.load(open(path)) if os.path.getsize(path) else None


ret = {r: load(f"nc{r}") for r in ("1", "2", "all")}
cap = {r: load(f"r{r}") if os.path.exists(f"{D}/r{r}.json") else None for r in ("1", "2", "all")}
NOT = "not measured"


def source(r, name, s):
    run = ret[r] if name in DIRS else cap[r]
    return None if run is None else run["subjects"][s]


def cell(block, name):
    if block is None:
        return NOT
    if name in DIRS:
        r = block["retrieval"].get(name)
        return "—" if r is None else f"{r['top1']:.3f} [{r['ci95'][0]:.3f}, {r['ci95'][1]:.3f}]"
    v = block["captioning"].get(name)
    ci = block.get("caption_intervals", {}).get(name)
    return "—" if v is None else f"{v:.3f}" + (f" [{ci['ci95'][0]:.3f}, {ci['ci95'][1]:.3f}]" if ci else "")


def chance(s, name):
    if name in DIRS:
        return f"{1 / ret['all']['subjects'][s]['retrieval'][name]['pool']:.3f}"
    ci = cap["all"]["subjects"][s]["caption_intervals"].get(name) if cap["all"] else None
    return f"{ci['chance']:.3f} [{ci.get('chance_ci95', [0, 0])[0]:.3f}, {ci.get('chance_ci95', [0, 0])[1]:.3f}]" \
        if ci and "chance_ci95" in ci else (f"{ci['chance']:.3f}" if ci else NOT)


def diff(block, name, window):
    if block is None:
        return NOT
    d = (block["each_window"] if window else block)["versus_all"].get(name)
    return "—" if d is None else f"{d['difference']:+.3f} [{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}]"


def each(block):
    return None if block is None else block["each_window"]


for s in ret["all"]["subjects"]:
    print(f"\n#### {s}\n")
    print("| figure | chance | 1 repeat (first) | 1 repeat (each in turn) | 2 repeats (first two) | 2 repeats (each pair) | all (mean) |")
    print("|---|---|---|---|---|---|---|")
    for n in DIRS + METRICS:
        one, two, alls = (source(r, n, s) for r in ("1", "2", "all"))
        print(f"| {n} | {chance(s, n)} | {cell(one, n)} | {cell(each(one), n)} | {cell(two, n)} | "
              f"{cell(each(two), n)} | {cell(alls, n)} |")
    print("\nPaired, trial by trial, less the mean of all repeats (retrieval: top-1 among all 300 trials):\n")
    print("| figure | all (mean, per trial) | 1 (first) | 1 (each in turn) | 2 (first two) | 2 (each pair) |")
    print("|---|---|---|---|---|---|")
    for n in DIRS + METRICS:
        one, two = source("1", n, s), source("2", n, s)
        m = None if one is None else one["versus_all"].get(n, {}).get("mean_of_all")
        print(f"| {n} | {'—' if m is None else f'{m:.3f}'} | {diff(one, n, False)} | {diff(one, n, True)} | "
              f"{diff(two, n, False)} | {diff(two, n, True)} |")
