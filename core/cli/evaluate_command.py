"""``adaqat evaluate``: Dice, IoU, HD95, NSD on a manifest split; optional paired comparison."""

from __future__ import annotations

import json
import sys

from ..io.manifest import ManifestError, read_manifest
from .common import ModelLoadError, add_runtime_options, fail, open_model, say

PROMPTS = ("auto", "box")  # core.evaluation.runner.PROMPTS; imported lazily with the image readers


def add_parser(sub) -> None:
    parser = sub.add_parser("evaluate", help="score a model against ground-truth masks")
    parser.add_argument("--model", default=None, help="model name or directory (default: the active model; the bundled one on a fresh install)")
    parser.add_argument("--data", required=True, help="manifest CSV (id,image,mask,split)")
    parser.add_argument("--split", default="test", help="which split to score (default: test)")
    parser.add_argument("--prompt", choices=PROMPTS, default="auto", help="auto: no human prompt; box: ground-truth box")
    parser.add_argument("--limit", type=int, default=None, help="score only the first N images of the split")
    parser.add_argument("--compare", default=None, metavar="OTHER_MODEL", help="second model for a paired Wilcoxon test")
    parser.add_argument("--json", action="store_true", help="print the full result as JSON")
    add_runtime_options(parser)
    parser.set_defaults(run=run)


def run(args) -> int:
    from ..evaluation.explain import metric_notes, unit_summaries
    from ..evaluation.report import SUMMARY_COLUMNS, format_table, summaries_to_json, summary_rows
    from ..evaluation.runner import compare, evaluate

    try:
        manifest = read_manifest(args.data)
    except ManifestError as error:
        return fail(str(error))
    for problem in manifest.problems:
        say("warning", problem)
    samples = manifest.split(args.split)[: args.limit]
    if not samples:
        return fail(f"{args.data}: no usable rows in split '{args.split}'")
    evaluations = []
    for name in [args.model] + ([args.compare] if args.compare else []):
        try:
            loaded, device = open_model(name, args)
        except (ModelLoadError, RuntimeError) as error:
            return fail(str(error))
        evaluation = evaluate(loaded, samples, args.prompt, device, _progress if not args.json else None)
        for problem in evaluation.problems:
            say("warning", problem)
        evaluations.append(evaluation)
    comparison = compare(evaluations[0], evaluations[1]) if len(evaluations) == 2 else None
    if args.json:
        print(json.dumps({
            "split": args.split,
            "prompt": args.prompt,
            "models": [{"model": e.model, "summary": json.loads(summaries_to_json(e.summaries())),
                        "summary_by_unit": json.loads(summaries_to_json(unit_summaries(e.per_image))),
                        "notes": metric_notes(e.per_image), "per_image": e.per_image}
                       for e in evaluations],
            "comparison": comparison,
        }, default=float))
        return 0
    for evaluation in evaluations:
        print(f"\n{evaluation.model} — split {args.split}, prompt {args.prompt}, n={len(evaluation.per_image)}")
        print(format_table(summary_rows(unit_summaries(evaluation.per_image)), ["metric", *SUMMARY_COLUMNS]))
        for note in metric_notes(evaluation.per_image):
            print(f"  {note}")
    if comparison:
        print(f"\nPaired Wilcoxon on Dice: mean difference {comparison['mean_difference']:+.4f}, "
              f"p = {comparison['p_value']:.4g} (n={comparison['n']})")
    return 0


def _progress(done: int, total: int) -> None:
    print(f"\r  {done}/{total} images", end="" if done < total else "\n", file=sys.stderr, flush=True)
