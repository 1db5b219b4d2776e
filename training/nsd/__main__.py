"""``python -m training.nsd STEP ...``: the NSD pipeline, one resumable step at a time (README.md)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from brainview.errors import UserError

STEPS = ("prepare", "extract", "fit", "contrast", "evaluate", "roi", "export", "study")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m training.nsd", description=__doc__)
    steps = parser.add_subparsers(dest="step", required=True, metavar="STEP")

    p = steps.add_parser("prepare", help="betas → normalized, repeat-averaged patterns; splits, captions, ROIs")
    p.add_argument("nsd_root", help="the NSD download (holds nsddata/, nsddata_betas/, nsddata_stimuli/)")
    p.add_argument("--subject", type=int, nargs="+", required=True,
                   help="NSD subject(s) 1-8; several (e.g. 1 2 5 7, those who finished all sessions): one work "
                        "folder each, OUT/subjNN")
    p.add_argument("--out", required=True, help="work folder of this subject's run (several subjects: their parent)")
    p.add_argument("--sessions", type=int, default=None, help="use sessions 1..N (37 as older work, 40 = all); "
                   "default: every session on disk")
    p.add_argument("--normalize", choices=("session", "pooled"), default="session",
                   help="z-score each voxel per session (default) or over all sessions (the paper); "
                        "statistics from training trials only")
    p.add_argument("--val-fraction", type=float, default=0.1, help="fraction of training images held out")
    p.add_argument("--seed", type=int, default=0, help="seed of the validation draw")
    p.add_argument("--beta-format", choices=("auto", "nii.gz", "hdf5"), default="auto")
    p.add_argument("--coco-annotations", default=None,
                   help="folder with COCO captions_{train,val}2017.json (default: NSD's nsddata_stimuli/.../annotations)")

    p = steps.add_parser("extract", help="BLIP-2 query tokens of every stimulus, text embeddings of every caption")
    p.add_argument("work", nargs="+", help="work folder(s), one per subject")
    p.add_argument("--captioner", required=True, help="Blip2ForConditionalGeneration: model id or folder")
    p.add_argument("--retrieval", required=True, help="Blip2ForImageTextRetrieval: model id or folder")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps (per process under a distributed launch)")
    p.add_argument("--devices", default="1", help="devices for Lightning Fabric (e.g. 4, or -1 for all GPUs)")
    p.add_argument("--num-nodes", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--chunk-batches", type=int, default=8, help="batches per chunk file (the unit of resumption)")
    p.add_argument("--max-chunks", type=int, default=None, help="stop after this many new chunks (for testing)")

    p = steps.add_parser("fit", help="stage 1: ridge, alpha chosen on the validation images")
    p.add_argument("work", nargs="+", help="work folder(s), one per subject")
    p.add_argument("--alphas", type=float, nargs="+", default=None)
    p.add_argument("--alpha-per", choices=("global", "token", "output"), default="token")
    p.add_argument("--device", default="auto")

    p = steps.add_parser("contrast", help="stage 2: contrastive tuning, selected on the validation images")
    p.add_argument("work", nargs="+", help="work folder(s), one per subject")
    p.add_argument("--device", default="auto")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--lr", type=float, default=None)

    for name, text in (("evaluate", "Tables 1 and 2 on the test images"), ("roi", "Table 3: a caption per ROI")):
        p = steps.add_parser(name, help=text)
        p.add_argument("work", nargs="+", help="work folder(s), one per subject")
        p.add_argument("--device", default="auto")
        p.add_argument("--batch-size", type=int, default=16)
        if name == "evaluate":
            p.add_argument("--repeats", type=int, default=None, help="retrieval repeats (default 30 image, 50 text)")
            p.add_argument("--seed", type=int, default=42)
            p.add_argument("--no-captions", action="store_true", help="retrieval only (no language model)")
            p.add_argument("--metrics", nargs="+", default=None,
                           help="caption metrics (default: all of brainview.decoding.metrics.METRIC_NAMES)")
        else:
            p.add_argument("--stage", choices=("stage1", "stage2"), default="stage1",
                           help="the paper's Table 3 uses stage 1")
            p.add_argument("--scale", type=float, default=11.0)

    p = steps.add_parser("export", help="write the app's bundle (several work folders: a study of their bundles)")
    p.add_argument("work", nargs="+", help="work folder(s), one per subject")
    p.add_argument("--out", required=True, help="bundle folder to write (several work folders: the study folder, "
                                                "bundles in OUT/subjNN and OUT/study.json)")
    p.add_argument("--image-size", type=int, default=224, help="test stimuli are downsized to this (px)")
    p.add_argument("--weights-dtype", default="auto", choices=("auto", "float16", "float32"),
                   help="brain-model weights on disk; auto: float16 where the test predictions stay within 1e-3 "
                        "of their spread (default)")
    p.add_argument("--name", default=None)
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--copy-vlm", action="store_true",
                   help="copy the BLIP-2 model folders into the bundle (small models only; default: reference them)")

    p = steps.add_parser("study", help="write study.json for exported bundles (subjects side by side in the app)")
    p.add_argument("bundles", nargs="+")
    p.add_argument("--out", required=True, help="folder of the study.json")
    p.add_argument("--name", default=None)
    return parser


def _subject_of(work) -> str:
    from training.nsd.layout import WorkDir

    return f"subj{int(WorkDir(work).read_log('prepare')['settings']['subject']):02d}"


def _run_step(args, work: str) -> None:
    """One of extract … export on one work folder."""
    if args.step == "extract":
        from training.nsd.extract import extract

        extract(work, captioner=args.captioner, retrieval=args.retrieval, device=args.device,
                devices=args.devices, num_nodes=args.num_nodes, batch_size=args.batch_size,
                chunk_batches=args.chunk_batches, max_chunks=args.max_chunks)
    elif args.step == "fit":
        from training.nsd.fit import fit

        fit(work, alphas=args.alphas, alpha_per=args.alpha_per, device=args.device)
    elif args.step == "contrast":
        from training.nsd.contrast import contrast

        contrast(work, device=args.device, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr)
    elif args.step == "evaluate":
        from training.nsd.evaluate import evaluate

        evaluate(work, device=args.device, batch_size=args.batch_size, repeats=args.repeats,
                 seed=args.seed, captions=not args.no_captions, metrics=args.metrics)
    elif args.step == "roi":
        from training.nsd.roi import roi_table

        roi_table(work, device=args.device, batch_size=args.batch_size, stage=args.stage, scale=args.scale)
    elif args.step == "export":
        from training.nsd.export import export

        export(work, args.out, image_size=args.image_size, name=args.name, overwrite=args.overwrite,
               copy_vlm=args.copy_vlm, weights_dtype=args.weights_dtype)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.step == "prepare":
            from training.nsd.prepare import prepare

            for subject in args.subject:
                out = args.out if len(args.subject) == 1 else str(Path(args.out) / f"subj{subject:02d}")
                prepare(args.nsd_root, subject, out, sessions=args.sessions, normalize=args.normalize,
                        val_fraction=args.val_fraction, seed=args.seed, beta_format_choice=args.beta_format,
                        coco_annotations=args.coco_annotations)
        elif args.step == "study":
            from training.nsd.study import write_nsd_study

            print(write_nsd_study(args.out, args.bundles, name=args.name))
        elif args.step == "export" and len(args.work) > 1:
            from training.nsd.export import export
            from training.nsd.study import write_nsd_study

            bundles = [export(work, Path(args.out) / _subject_of(work), image_size=args.image_size, name=args.name,
                              overwrite=args.overwrite, copy_vlm=args.copy_vlm,
                              weights_dtype=args.weights_dtype).path for work in args.work]
            print(write_nsd_study(args.out, bundles))
        else:
            for work in args.work:
                _run_step(args, work)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
