"""``xner project``: run translate-train or translate-test from flags and/or a YAML config."""

from __future__ import annotations


def register(subparsers) -> None:
    from dataset_builders.cli_flags import add_flag

    p = subparsers.add_parser(
        "project",
        help="project NER annotations onto another language (translate-train / translate-test)",
        description="Flags override the values of --config.",
    )
    add_flag(p, "--config", help="YAML file with the keys of projection.pipelines.ProjectionConfig")
    add_flag(p, "--mode", choices=["translate-train", "translate-test"])
    add_flag(p, "--corpus", help="translate-train: the labelled source corpus; translate-test: the target corpus")
    add_flag(p, "--data_dir")
    add_flag(p, "--source_lang")
    add_flag(p, "--target_langs", help="comma-separated target languages")
    add_flag(p, "--splits", help="comma-separated splits (default: all)")
    add_flag(p, "--max_samples", type=int, help="first N sentences of each split")
    add_flag(p, "--translator", choices=["pretranslated", "apertium", "hf"])
    add_flag(p, "--translator_model", help="hf: a seq2seq model id or path (NLLB-200, M2M100, Marian)")
    add_flag(p, "--parallel_corpus", help="pretranslated: the corpus holding the target side (default: --corpus)")
    add_flag(p, "--aligner", choices=["eflomal", "embedding", "simalign"])
    add_flag(p, "--aligner_model", help="embedding/simalign: an encoder id or path")
    add_flag(p, "--layer", type=int, help="embedding/simalign: hidden layer")
    add_flag(p, "--align_method", choices=["argmax", "itermax", "match"], help="embedding/simalign matching")
    add_flag(p, "--symmetrization", help="eflomal: intersection, union, grow-diag-final-and, ...")
    add_flag(p, "--extra_parallel", nargs=2, metavar=("SRC_TXT", "TGT_TXT"), help="eflomal: more parallel text")
    add_flag(p, "--method", choices=["heuristic", "candidates", "backtranslation"])
    add_flag(p, "--solver", choices=["greedy", "ilp", "bipartite"], help="candidates: the solver")
    add_flag(p, "--max_ngram", type=int, help="candidates: longest n-gram candidate")
    add_flag(p, "--merge_distance", type=int, help="heuristic: largest gap merged")
    add_flag(p, "--length_ratio", type=float, help="heuristic: run length / entity length must exceed it")
    add_flag(p, "--tagger", help="translate-test: source-language NER model id or path")
    add_flag(p, "--output_dir")
    add_flag(p, "--num_proc", "--preprocessing_num_workers", type=int, help="processes for the map steps")
    p.set_defaults(func=run)


def _section(values: dict, key: str, default: dict) -> dict:
    """A copy of the mapping ``values[key]`` (``default`` when absent); anything else is a user error."""
    from dataset_builders.errors import UserError

    section = values.get(key, default)
    if not isinstance(section, dict):
        raise UserError(f"{key} must be a mapping like {default}, got {section!r}")
    return dict(section)


def config_from_args(args):
    """The ``ProjectionConfig`` of ``--config`` overridden by flags; errors name the config file."""
    from dataset_builders.errors import UserError

    try:
        return _config_from_args(args)
    except UserError as err:
        if args.config and not str(err).startswith(args.config):
            raise UserError(f"{args.config}: {err}") from None
        raise


def _config_from_args(args):
    from dataset_builders.errors import UserError
    from projection.pipelines import ProjectionConfig, load_yaml_mapping

    values: dict = load_yaml_mapping(args.config) if args.config else {}
    simple = {
        "mode": args.mode,
        "corpus": args.corpus,
        "data_dir": args.data_dir,
        "source_lang": args.source_lang,
        "max_samples": args.max_samples,
        "parallel_corpus": args.parallel_corpus,
        "output_dir": args.output_dir,
        "num_proc": args.num_proc,
    }
    values.update({k: v for k, v in simple.items() if v is not None})
    if args.target_langs:
        values["target_langs"] = args.target_langs.split(",")
    if args.splits:
        values["splits"] = args.splits.split(",")
    translator = _section(values, "translator", {"kind": "pretranslated"})
    if args.translator:
        translator = {"kind": args.translator} if args.translator != translator.get("kind") else translator
    if args.translator_model:
        translator["model"] = args.translator_model
    aligner = _section(values, "aligner", {"kind": "eflomal"})
    if args.aligner and args.aligner != aligner.get("kind"):
        aligner = {"kind": args.aligner}
    for key, value in (
        ("model", args.aligner_model),
        ("layer", args.layer),
        ("method", args.align_method),
        ("symmetrization", args.symmetrization),
        ("extra_parallel", args.extra_parallel),
    ):
        if value is not None:
            aligner[key] = value
    method = _section(values, "method", {"name": "heuristic"})
    if args.method and args.method != method.get("name"):
        method = {"name": args.method}
    for key, value in (
        ("solver", args.solver),
        ("max_ngram", args.max_ngram),
        ("merge_distance", args.merge_distance),
        ("length_ratio", args.length_ratio),
    ):
        if value is not None:
            method[key] = value
    values.update(translator=translator, aligner=aligner, method=method)
    if args.tagger:
        values["tagger"] = {**_section(values, "tagger", {}), "model": args.tagger}
    for required in ("corpus", "target_langs"):
        if required not in values:
            raise UserError(f"--{required} is required (or give it in --config)")
    return ProjectionConfig.from_dict(values)


def run(args) -> int:
    from projection.pipelines import run_projection

    config = config_from_args(args)
    summary = run_projection(config)
    for lang, info in summary["languages"].items():
        for split, s in info["splits"].items():
            gold = f", F1 vs gold {s['gold']['f1']:.3f}" if s.get("gold") else ""
            print(
                f"{lang}/{split}: {s['rows']} rows, {s['projected']}/{s['entities']} entities projected"
                f" ({s['dropped']} dropped, {s['rows_with_error']} rows flagged){gold}"
            )
        print(f"{lang}: saved to {info['path']} in {info['seconds']} s")
    print(f"summary: {config.output_dir}/projection_summary.json")
    return 0
