"""``python -m training.demo_world build --out resources/demo --seed 0 [--size full|small]``;
``python -m training.demo_world study`` builds the demo study (the demo bundle plus virtual subjects 2-4);
``python -m training.demo_world flatmap --bundle resources/demo`` adds the flatmap to a built bundle;
``python -m training.demo_world captions`` writes three other models' captions beside it (resources/demo_captions);
``python -m training.demo_world repeats --bundle resources/demo`` adds the single trials to a built bundle."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from training.demo_world.build import SIZES, VLM_KINDS, add_flatmap, add_repeats, build


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
    p = commands.add_parser("study", help="the demo study: the demo bundle as subj01 plus virtual subjects 2..N")
    p.add_argument("--demo", default=str(Path(__file__).resolve().parents[2] / "resources" / "demo"),
                   help="the demo bundle the extra subjects are derived from (default: the embedded one)")
    p.add_argument("--out", default=None, help="study folder (default: the cache folder the app uses)")
    p.add_argument("--subjects", type=int, default=4)
    p.add_argument("--seed", type=int, default=None, help="study seed (default: the demo bundle's)")
    p.add_argument("--no-eval", action="store_true", help="skip each subject's evaluation (faster)")
    p = commands.add_parser("flatmap", help="add fsaverage5's flatmap to an existing bundle's cortex/mesh.npz")
    p.add_argument("--bundle", required=True)
    p = commands.add_parser("captions", help="two other models' captions of the demo's test trials (known ranking)")
    p.add_argument("--demo", default=str(Path(__file__).resolve().parents[2] / "resources" / "demo"))
    p.add_argument("--out", default=str(Path(__file__).resolve().parents[2] / "resources" / "demo_captions"))
    p = commands.add_parser("repeats", help="add the test split's single trials to an existing demo bundle "
                                            "(their mean stays test/fmri.npy)")
    p.add_argument("--bundle", required=True)
    args = parser.parse_args(argv)
    if args.command == "captions":
        from training.demo_world.other_models import write_other_models

        print("\n".join(str(p) for p in write_other_models(args.demo, args.out)))
        return 0
    if args.command == "study":
        from training.demo_world.study import main as study_main

        return study_main(args)
    if args.command == "flatmap":
        print(add_flatmap(args.bundle))
        return 0
    if args.command == "repeats":
        print(add_repeats(args.bundle))
        return 0
    path = build(args.out, seed=args.seed, size=args.size, vlm=args.vlm)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
