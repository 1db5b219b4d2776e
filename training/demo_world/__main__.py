"""``python -m training.demo_world build --out resources/demo --seed 0 [--size full|small]``."""

from __future__ import annotations

import argparse
import sys

from training.demo_world.build import SIZES, VLM_KINDS, build


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.demo_world",
                                     description="Build the demo world's decoding bundle from nothing.")
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("build", help="scenes, tiny BLIP-2, virtual subject, stage 1 and 2, bundle")
    p.add_argument("--out", required=True, help="bundle folder to write (replaced if it exists)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", choices=SIZES, default="full", help="full: the shipped demo; small: the test build")
    p.add_argument("--vlm", choices=VLM_KINDS, default="trained",
                   help="trained: train the tiny BLIP-2 models on the scenes; random: untrained (pipeline check)")
    args = parser.parse_args(argv)
    path = build(args.out, seed=args.seed, size=args.size, vlm=args.vlm)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
