"""Why poison passes the vote, and whether a stricter refine start helps.

For a scenario of a benchmark profile (optionally on more training images),
fits ISPLFilter with the given settings (as ``stages.py`` does) and reads
its vote three ways:

- per voter: the share of the poisoned samples it calls the target class,
  and the share of the clean source-class samples it calls the source
  class. A voter that does not know the source class calls poison the
  target for the look of it, not for the trigger;
- by vote share: poisoned and clean samples among the voted samples whose
  share of votes for their label (``scores_``) is at least each of
  ``--min-scores`` (what ``refine_min_score`` starts self-training from);
- reweighted by each voter's confusion matrix (Dawid and Skene, 1979): a
  sample keeps its label when the label is the most likely true class
  given every voter's prediction and how often that voter predicts each
  class for each given label. This discounts votes of learners that
  cannot tell two classes apart.

With ``--judge-epochs E``, the filter's refine learner then trains for E
epochs on the voted samples with a share of at least the first of
``--min-scores``; after each epoch it prints how many poisoned samples
that judge calls the target class and the poisoned and clean samples the
argmax rule keeps over all samples: whether a judge trained on the
strongly backed samples tells the poison apart.

Usage::

    python benchmarks/vote_shares.py --profile quick --n-train 60000 \\
        --scenario 4 --params large --set '{"blind_neighbors": null}' \\
        --n-jobs 2 --seeds 2 \\
        --out benchmarks/results/stages/large-vote-shares-s4-60k.json
"""

import argparse
import json
import os

import numpy as np
from stages import (
    add_fit_arguments,
    counts,
    fit_once,
    fresh_refine_model,
    load_scenario,
    run_record,
)

from sklearn_ispl._images import infer_layout
from sklearn_ispl._validation import prepare_data
from sklearn_ispl.benchmark import parse_defense_params
from sklearn_ispl.benchmark._results import _write_json_atomic
from sklearn_ispl.cli import _add_threads, _set_threads


def confusion_vote(predictions, y, n_classes, alpha=1.0):
    """Posterior of each sample's true class from confusion-weighted votes.

    ``predictions`` has shape (n_voters, n_samples). Each voter's confusion
    matrix (rows: given label, columns: predicted class) is counted over all
    samples with ``alpha`` added to every cell; voters are taken as
    independent given the true class, whose prior is the label frequency.
    """
    n = len(y)
    log_post = np.tile(np.log(np.bincount(y, minlength=n_classes) / n + 1e-12), (n, 1))
    for predicted in predictions:
        confusion = np.full((n_classes, n_classes), alpha)
        np.add.at(confusion, (y, predicted), 1)
        confusion /= confusion.sum(axis=1, keepdims=True)
        log_post += np.log(confusion[:, predicted]).T
    log_post -= log_post.max(axis=1, keepdims=True)
    post = np.exp(log_post)
    return post / post.sum(axis=1, keepdims=True)


def read_vote(ispl, y, y_true, poison, source, target, min_scores):
    """The three readings of one fit's vote (see the module docstring).

    ``y`` (given) and ``y_true`` are encoded as the filter encodes labels,
    by their rank among its ``classes_``; so are ``source`` and ``target``.
    """
    clean_source = ~poison & (y_true == source)
    voters = [
        {
            "poison_called_target": float(np.mean(row[poison] == target)),
            "clean_source_called_source": float(np.mean(row[clean_source] == source)),
        }
        for row in ispl.predictions_
    ]
    vote = ispl.vote_keep_mask_
    clean_target = ~poison & (y == target)
    by_share = []
    for share in min_scores:
        start = vote & (ispl.scores_ >= share)
        by_share.append(
            {
                "min_score": share,
                "poison": int((start & poison).sum()),
                "clean": int((start & ~poison).sum()),
                "clean_target": int((start & clean_target).sum()),
            }
        )
    post = confusion_vote(ispl.predictions_, y, len(ispl.classes_))
    reweighted = counts(post.argmax(axis=1) == y, poison)
    print("  voters (poison called target / clean source called source):")
    for i, v in enumerate(voters):
        print(
            f"    {i:2d}: {v['poison_called_target']:.2f} / "
            f"{v['clean_source_called_source']:.2f}"
        )
    for row in by_share:
        print(
            f"  vote share >= {row['min_score']:g}: {row['poison']} poisoned, "
            f"{row['clean']} clean ({row['clean_target']} of the target class)"
        )
    print(
        f"  confusion-weighted vote: FN {reweighted['FN']} FP {reweighted['FP']} "
        f"(plurality: FN {int((vote & poison).sum())} "
        f"FP {int((~vote & ~poison).sum())})",
        flush=True,
    )
    return {"voters": voters, "by_share": by_share, "confusion_vote": reweighted}


def strong_start_judge(ispl, data, poison, target, min_score, epochs):
    """Per epoch: what a judge trained on the strongly backed samples keeps."""
    model = fresh_refine_model(ispl, data)
    start = np.flatnonzero(ispl.vote_keep_mask_ & (ispl.scores_ >= min_score))
    rows = np.arange(len(data))
    per_epoch = []
    for epoch in range(1, epochs + 1):
        model.fit_epochs(start, 1)
        predicted = model.predict_proba(rows).argmax(axis=1)
        kept = counts(predicted == data.y, poison)
        per_epoch.append(
            {
                "epoch": epoch,
                "poisoned_called_target": int((predicted[poison] == target).sum()),
                **kept,
            }
        )
        print(
            f"  judge on vote share >= {min_score:g}, epoch {epoch}: calls "
            f"{per_epoch[-1]['poisoned_called_target']} poisoned the target; "
            f"argmax keeps FN {kept['FN']} FP {kept['FP']}",
            flush=True,
        )
    return per_epoch


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_fit_arguments(parser)
    parser.add_argument("--seeds", type=int, nargs="+", default=None)
    parser.add_argument("--min-scores", type=float, nargs="+", default=[0.6, 0.55, 0.5])
    parser.add_argument("--judge-epochs", type=int, default=0)
    _add_threads(parser)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    if args.judge_epochs < 0:
        parser.error("--judge-epochs must be at least 0")
    _set_threads(parser, args.threads)
    params = {**parse_defense_params(args.params), **json.loads(args.set)}
    profile, scenario, (X, y, X_p, y_p, poison), _ = load_scenario(
        args.profile, args.n_train, args.scenario
    )
    attack = scenario.attack
    result = run_record("vote_shares.py", argv, params, poison)
    data = None
    for seed in args.seeds or [profile.seed]:
        run, ispl = fit_once(params, seed, args.n_jobs, X_p, y_p, poison)
        # The filter encodes labels by their rank among its classes_.
        given, true, (source, target) = (
            np.searchsorted(ispl.classes_, labels)
            for labels in (y_p, y, [attack.source, attack.target])
        )
        run.update(
            read_vote(ispl, given, true, poison, source, target, args.min_scores)
        )
        if args.judge_epochs:
            if data is None:
                data = prepare_data(
                    X_p, given, len(ispl.classes_), infer_layout(X_p.shape)
                )
            run["strong_start_judge"] = strong_start_judge(
                ispl, data, poison, target, args.min_scores[0], args.judge_epochs
            )
        result["runs"].append(run)
    if args.out:
        os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
        _write_json_atomic(args.out, result)
    return result


if __name__ == "__main__":
    main()
