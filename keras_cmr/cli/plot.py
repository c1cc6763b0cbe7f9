"""`keras-cmr plot`: precision-recall and validation curves from a `compare --json` file."""

import os

from keras_cmr.cli.options import add_overwrite_option, check_output_folder

PLOTS = ("precision_recall.png", "validation_map.png")


def add_parser(commands):
    parser = commands.add_parser(
        "plot", help="plot precision-recall and validation curves of a compare --json file")
    parser.add_argument("results", help="the JSON file written by `keras-cmr compare --json`")
    parser.add_argument("--out", default="figures",
                        help="folder for the PNG files (default %(default)s)")
    parser.add_argument("--methods", help="comma-separated methods to plot (default: all)")
    parser.add_argument("--title", help="title prefix (default: the data set's name)")
    add_overwrite_option(parser, "the PNG files")
    parser.set_defaults(run=run, check=check)


def data_set_name(content):
    """The data set's name for titles: the one `compare` recorded, else (older files) the
    spec's folder or file name ("wikipedia:../data/wikipedia_sift_lda" -> "wikipedia_sift_lda"),
    else the spec itself ("digits")."""
    if content.get("dataset"):
        return str(content["dataset"])
    spec = str(content.get("data", ""))
    kind, _, path = spec.partition(":")
    return os.path.basename(os.path.normpath(path)) if path else kind


def read_results(path):
    """`(content, runs)` of a compare JSON file, its runs as `RunResult`s; a clear error for
    any other file."""
    from keras_cmr.results import result_from_dict
    from keras_cmr.utils.files import read_json_object

    content = read_json_object(path, "results file")
    refusal = (f"{path}: not a `keras-cmr compare --json` file with curves (it needs 'runs' "
               "with 'test_curves' and 'history')")
    if not content.get("runs"):
        raise ValueError(refusal)
    try:
        runs = [result_from_dict(run) for run in content["runs"]]
    except ValueError as error:
        raise ValueError(f"{refusal}: {error}") from None
    if any(run.failed or run.test_curves is None for run in runs):
        raise ValueError(refusal)
    return content, runs


def mean_curves(runs, methods):
    """{method: (recall levels, mean I2T precisions, mean T2I precisions)} over seeds."""
    import numpy as np

    curves = {}
    for method in methods:
        chosen = [run.test_curves for run in runs if run.method == method]
        curves[method] = (chosen[0]["recall"],
                          np.mean([curve["i2t"] for curve in chosen], axis=0),
                          np.mean([curve["t2i"] for curve in chosen], axis=0))
    return curves


def _needs_source(method):
    """Whether `method` trains after a source; False for a name this process has not
    registered (a results file may hold a method registered by another program)."""
    from keras_cmr import methods

    return method in methods.available() and methods.get(method).needs_source


def validation_curves(runs, source_method):
    """{stage name: [per-seed validation avg mAP per epoch]} for the source and the transfer.

    `runs`: `RunResult`s. The transfer methods are the registered methods that need a
    source. The source's curves come from the source stage that each transfer run trained,
    or, when the comparison shared that model, from the runs of `source_method` itself. With
    out-of-fold sources (runs with `source_folds`), the fold sources of each seed are the
    transfer's stage 1, and a `source_method` row is only the baseline trained on every
    training pair.
    """
    out_of_fold = any(run.source_folds is not None for run in runs)
    source_label = (f"source: {source_method}, all training pairs (baseline)" if out_of_fold
                    else f"source: {source_method} (stage 1)")
    stages, folded_seeds = {}, set()
    for run in runs:
        if run.source_folds is not None and run.seed not in folded_seeds:
            folded_seeds.add(run.seed)
            stages.setdefault(f"source: {source_method}, out-of-fold (stage 1)", []).extend(
                history["val_avg_map"] for history in run.source_folds)
        transfer = _needs_source(run.method)
        for stage, history in run.history.items():
            # A transfer run's stage other than its own is the source it trained (named
            # "source", as is the cosine-CE method: hence not told apart by name).
            trained_for_transfer = transfer and stage != run.method
            if trained_for_transfer or (stage == source_method and run.method == stage):
                stages.setdefault(source_label, []).append(history["val_avg_map"])
            elif transfer:
                stages.setdefault(f"{stage} (stage 2)", []).append(history["val_avg_map"])
    return stages


def check(args):
    """The --out folder, before any work."""
    check_output_folder(args.out, "--out", args.overwrite, PLOTS)


def run(args):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ValueError("plotting needs matplotlib: pip install 'keras-cmr[plot]'") from None
    content, runs = read_results(args.results)
    present = list(dict.fromkeys(run.method for run in runs))
    methods = present
    if args.methods:
        methods = [name.strip() for name in args.methods.split(",") if name.strip()]
        missing = [name for name in methods if name not in present]
        if missing:
            raise ValueError(f"{args.results} has no runs of {missing}; it has {present}")
    title = args.title or data_set_name(content)
    os.makedirs(args.out, exist_ok=True)

    figure, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharey=True)
    for method, (recall, i2t, t2i) in mean_curves(runs, methods).items():
        # The transfer methods (MET, Kim et al.) drawn bolder: the comparison is about them.
        style = {"linewidth": 2.2 if _needs_source(method) else 1.2}
        axes[0].plot(recall, i2t, marker=".", label=method, **style)
        axes[1].plot(recall, t2i, marker=".", label=method, **style)
    for axis, direction in zip(axes, ("image -> text", "text -> image")):
        axis.set(title=f"{title}: {direction}", xlabel="recall", xlim=(0, 1), ylim=(0, None))
        axis.grid(alpha=0.3)
    axes[0].set_ylabel("interpolated precision (test, mean over seeds)")
    axes[1].legend(fontsize=8, loc="upper right")
    figure.tight_layout()
    _save(figure, os.path.join(args.out, PLOTS[0]))

    figure, axis = plt.subplots(figsize=(7, 4.5))
    from keras_cmr.config import default

    source_method = content.get("config", {}).get("source_method", default("source_method"))
    for index, (stage, curves) in enumerate(validation_curves(runs, source_method).items()):
        color = f"C{index}"
        for seed, curve in enumerate(curves):
            axis.plot(range(1, len(curve) + 1), curve, color=color, alpha=0.8,
                      label=stage if seed == 0 else None)
    axis.set(title=f"{title}\nvalidation avg mAP per epoch (each line a seed or a fold's source)",
             xlabel="epoch", ylabel="validation avg mAP@all")
    axis.title.set_fontsize(10)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8, loc="lower right")
    figure.tight_layout()
    _save(figure, os.path.join(args.out, PLOTS[1]))
    plt.close("all")
    print(f"wrote {', '.join(os.path.join(args.out, name) for name in PLOTS)}")


def _save(figure, path):
    from keras_cmr.saving import atomic_path

    with atomic_path(path) as temporary:
        figure.savefig(temporary, dpi=110, format="png")
