"""The experiment report: tables, significance tests, findings and charts from the results store.

Every number is computed from the records of the store (see :mod:`xner.experiments.store`), so a
report can be rebuilt at any time and never goes stale. Only records of kind ``teacher`` and
``student`` enter the main tables; ``trial`` and ``sweep`` records feed the "Sweeps" section.

A *configuration* is ``(kind, model, student_kind)``, labelled ``"teacher en"``, ``"soft-kl
(full)"``. Where runs of one configuration differ in what they learnt from (teachers, base model
or params), averaging them as seeds would mix different systems, so each variant becomes its own
configuration with the differing settings in brackets: ``"soft-kl (full) [temperature=2.0]"``.

Figures in ``report.json`` are fractions (0-1), as in the store; the markdown shows F1 in % with
one decimal and differences in percentage points. Means are over seeds, std is the sample std
(ddof=1) and is absent for one seed.

Significance: per language x test set, the best configuration (highest mean F1) is compared with
every other one by a paired bootstrap (:mod:`xner.experiments.bootstrap`) over test sentences,
each system's per-sentence counts summed over its seeds. When the two configurations have seeds in
common only those shared seeds are pooled (so that both systems see the same number of runs);
when they share none, each pools all of its seeds. The tested delta is therefore the F1 of the
pooled counts, which can differ slightly from the difference of mean F1.
"""

from __future__ import annotations

import json
import math
import os
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Optional

import numpy as np

from xner.experiments.bootstrap import paired_bootstrap, pool_seeds
from xner.experiments.languages import language_info

REPORT_FORMAT = "xner-experiment-report/1"
MAIN_KINDS = ("teacher", "student")
SWEEP_KINDS = ("trial", "sweep")
CHARTS = {"f1": "f1.png", "robustness": "robustness.png", "families": "families.png", "coverage": "coverage.png"}


# --------------------------------------------------------------------------------------- records


@dataclass
class _Result:
    domain: str
    f1: float
    precision: Optional[float]
    recall: Optional[float]
    per_type: dict[str, float]
    counts: Optional[np.ndarray]


@dataclass
class _Run:
    run_id: str
    kind: str
    model: str
    student_kind: Optional[str]
    lang: str
    seed: Optional[int]
    teachers: list[str]
    base_model: Optional[str]
    params: dict
    results: dict[str, _Result]
    experiment: Optional[str] = None
    label: str = ""
    variant: dict = field(default_factory=dict)
    pseudo_labels: dict = field(default_factory=dict)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _name(record, index: int) -> str:
    run_id = record.get("run_id") if isinstance(record, Mapping) else None
    return f"run {run_id!r}" if isinstance(run_id, str) and run_id else f"record #{index} (no run_id)"


def _result(raw, where: str) -> _Result:
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where} is not an object")
    if raw.get("domain") not in ("in", "out"):
        raise ValueError(f"{where} has domain {raw.get('domain')!r}, not 'in' or 'out'")
    if not _is_number(raw.get("f1")) or not 0 <= raw["f1"] <= 1:
        raise ValueError(f"{where} has no F1 between 0 and 1 (f1={raw.get('f1')!r})")
    optional = {}
    for key in ("precision", "recall"):
        value = raw.get(key)
        if value is not None and not _is_number(value):
            raise ValueError(f"{where} has a non-numeric {key}: {value!r}")
        optional[key] = value
    per_type = {}
    for entity, scores in (raw.get("per_type") or {}).items():
        if not isinstance(scores, Mapping) or not _is_number(scores.get("f1")):
            raise ValueError(f"{where} has no numeric F1 for entity type {entity!r}")
        per_type[entity] = float(scores["f1"])
    counts = raw.get("sentence_counts")
    if counts is not None:
        try:
            counts = np.asarray(counts, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"{where} has sentence_counts that are not [[tp, fp, fn], ...]") from None
        if counts.size == 0:
            counts = None  # an empty test set cannot be resampled
        elif counts.ndim != 2 or counts.shape[1] != 3 or (counts < 0).any() or not np.isfinite(counts).all():
            raise ValueError(f"{where} has sentence_counts that are not [[tp, fp, fn], ...] (shape {counts.shape})")
    return _Result(raw["domain"], float(raw["f1"]), optional["precision"], optional["recall"], per_type, counts)


def _run(record: Mapping, index: int) -> _Run:
    name = _name(record, index)
    if name.startswith("record #"):
        raise ValueError(f"{name} has no run_id")
    for key in ("model", "lang"):
        if not isinstance(record.get(key), str) or not record[key]:
            raise ValueError(f"{name}: {key} must be a non-empty string, not {record.get(key)!r}")
    seed = record.get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise ValueError(f"{name}: seed must be an integer, not {seed!r}")
    teachers = record.get("teachers") or []
    if not isinstance(teachers, list) or not all(isinstance(t, str) for t in teachers):
        raise ValueError(f"{name}: teachers must be a list of names, not {teachers!r}")
    params = record.get("params") or {}
    if not isinstance(params, Mapping):
        raise ValueError(f"{name}: params must be an object, not {params!r}")
    student_kind = record.get("student_kind") if record["kind"] == "student" else None
    if student_kind is not None and not isinstance(student_kind, str):
        raise ValueError(f"{name}: student_kind must be a string or null, not {student_kind!r}")
    results = record.get("results")
    if not isinstance(results, Mapping) or not results:
        raise ValueError(f"{name} has no results")
    parsed = {test: _result(raw, f"{name}, test set {test!r},") for test, raw in results.items()}
    pseudo_labels = record.get("pseudo_labels") or {}
    if not isinstance(pseudo_labels, Mapping) or not all(_is_number(v) and 0 <= v <= 1 for v in pseudo_labels.values()):
        raise ValueError(f"{name}: pseudo_labels must map step names to fractions in [0, 1], not {pseudo_labels!r}")
    return _Run(
        str(record["run_id"]),
        record["kind"],
        record["model"],
        student_kind,
        record["lang"],
        seed,
        list(teachers),
        record.get("base_model"),
        dict(params),
        parsed,
        record.get("experiment"),
        pseudo_labels=dict(pseudo_labels),
    )


def _check_sweep(record: Mapping, index: int) -> dict:
    name = _name(record, index)
    sweep = record.get("sweep")
    if not isinstance(sweep, Mapping) or not isinstance(sweep.get("name"), str):
        raise ValueError(f"{name}: a {record['kind']} record needs sweep = {{'name': ..., 'value': ...}}")
    sweep = dict(sweep)
    if sweep.get("value") is None:  # records that name it otherwise: a sweep's best_value, a trial's dev F1
        results = record.get("results") or {}
        if sweep.get("best_value") is not None:
            sweep["value"] = sweep["best_value"]
        elif record["kind"] == "trial" and len(results) == 1:
            sweep["value"] = next(iter(results.values())).get("f1")
        if sweep.get("trial") is None and sweep.get("best_trial") is not None:
            sweep["trial"] = sweep["best_trial"]
    if sweep.get("value") is not None and not _is_number(sweep["value"]):
        raise ValueError(f"{name}: sweep value must be a number or null, not {sweep['value']!r}")
    if record.get("params") is not None and not isinstance(record["params"], Mapping):
        raise ValueError(f"{name}: params must be an object")
    return sweep


def _base_label(run: _Run) -> str:
    if run.kind == "teacher":
        return f"teacher {run.model}"
    return f"{run.model} ({run.student_kind})" if run.student_kind else run.model


def _short(value) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def _label_variants(runs: list[_Run]) -> None:
    """Set ``label``: the base label, plus the settings that tell apart variants of one configuration."""
    groups: dict[tuple, list[_Run]] = defaultdict(list)
    for run in runs:
        groups[(run.kind, run.model, run.student_kind)].append(run)
    for group in groups.values():
        signature = lambda r: (tuple(r.teachers), r.base_model, json.dumps(r.params, sort_keys=True))  # noqa: E731
        if len({signature(r) for r in group}) == 1:
            for run in group:
                run.label = _base_label(run)
            continue
        differs_teachers = len({tuple(r.teachers) for r in group}) > 1
        differs_base = len({r.base_model for r in group}) > 1
        keys = sorted({k for r in group for k in r.params})
        differing = [k for k in keys if len({json.dumps(r.params.get(k), sort_keys=True) for r in group}) > 1]
        for run in group:
            variant = {}
            if differs_teachers:
                variant["teachers"] = "+".join(run.teachers) or "none"
            if differs_base:
                variant["base_model"] = run.base_model
            variant.update({k: run.params.get(k) for k in differing})
            run.variant = variant
            # the label names what this variant sets; a setting it leaves unset is left out (said only when
            # it sets none of them)
            shown = [f"{k}={_short(v)}" for k, v in variant.items() if v is not None]
            run.label = _base_label(run) + " [" + (", ".join(shown) or ", ".join(f"{k} unset" for k in variant)) + "]"


# ----------------------------------------------------------------------------------- statistics


def _mean(values) -> Optional[float]:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def _std(values) -> Optional[float]:
    return float(np.std(values, ddof=1)) if len(values) > 1 else None


def _main_rows(cells, domains, order) -> list[dict]:
    rows = []
    for (label, lang, test), by_seed in sorted(cells.items(), key=lambda kv: (order[kv[0][0]], kv[0][1], kv[0][2])):
        seeds = sorted(by_seed, key=lambda s: (s is None, s or 0))
        f1s = [by_seed[s].f1 for s in seeds]
        precisions = [by_seed[s].precision for s in seeds]
        recalls = [by_seed[s].recall for s in seeds]
        rows.append(
            {
                "configuration": label,
                "lang": lang,
                "test_set": test,
                "domain": domains[(lang, test)],
                "seeds": seeds,
                "n_seeds": len(seeds),
                "f1_values": f1s,
                "f1_mean": _mean(f1s),
                "f1_std": _std(f1s),
                "precision_mean": _mean(precisions) if None not in precisions else None,
                "recall_mean": _mean(recalls) if None not in recalls else None,
            }
        )
    return rows


def _robustness(main_rows, order) -> dict:
    per_lang: dict[tuple, dict[str, list]] = defaultdict(lambda: {"in": [], "out": []})
    for row in main_rows:
        per_lang[(row["configuration"], row["lang"])][row["domain"]].append(row["f1_mean"])
    rows = []
    for (label, lang), by_domain in sorted(per_lang.items(), key=lambda kv: (order[kv[0][0]], kv[0][1])):
        f1_in, f1_out = _mean(by_domain["in"]), _mean(by_domain["out"])
        rows.append(
            {
                "configuration": label,
                "lang": lang,
                "in_f1": f1_in,
                "out_f1": f1_out,
                "n_in_sets": len(by_domain["in"]),
                "n_out_sets": len(by_domain["out"]),
                "drop": f1_in - f1_out if f1_in is not None and f1_out is not None else None,
            }
        )
    by_config = []
    for label in sorted({r["configuration"] for r in rows}, key=order.get):
        both = [r for r in rows if r["configuration"] == label and r["drop"] is not None]
        if both:
            by_config.append(
                {
                    "configuration": label,
                    "n_languages": len(both),
                    "languages": [r["lang"] for r in both],
                    "in_f1": _mean(r["in_f1"] for r in both),
                    "out_f1": _mean(r["out_f1"] for r in both),
                    "drop": _mean(r["drop"] for r in both),
                }
            )
    return {"rows": rows, "by_configuration": by_config}


def _teacher_vs_student(main_rows, configs, notes) -> dict:
    means = {(r["configuration"], r["lang"], r["test_set"]): r for r in main_rows}
    rows, missing = [], set()
    for row in main_rows:
        config = configs[row["configuration"]]
        if config["kind"] != "student" or not config["teachers"]:
            continue
        teacher = config["teachers"][0]
        candidates = [c for c in configs.values() if c["kind"] == "teacher" and c["model"] == teacher]
        found = [means[key] for c in candidates if (key := (c["label"], row["lang"], row["test_set"])) in means]
        if not found:
            missing.add((row["configuration"], teacher, row["lang"], row["test_set"]))
            continue
        if len(found) > 1:
            notes.append(
                f"teacher {teacher!r} has several configurations on {row['lang']}/{row['test_set']}; "
                f"{found[0]['configuration']!r} is compared with {row['configuration']!r}"
            )
        t = found[0]
        rows.append(
            {
                "configuration": row["configuration"],
                "lang": row["lang"],
                "test_set": row["test_set"],
                "domain": row["domain"],
                "teacher": teacher,
                "teacher_configuration": t["configuration"],
                "student_f1": row["f1_mean"],
                "teacher_f1": t["f1_mean"],
                "delta": row["f1_mean"] - t["f1_mean"],
                "student_seeds": row["n_seeds"],
                "teacher_seeds": t["n_seeds"],
            }
        )
    for label, teacher, lang, test in sorted(missing):
        notes.append(f"no zero-shot result of teacher {teacher!r} on {lang}/{test} to compare {label!r} with")
    by_config = []
    for label in dict.fromkeys(r["configuration"] for r in rows):
        deltas = [r["delta"] for r in rows if r["configuration"] == label]
        by_config.append(
            {
                "configuration": label,
                "n": len(deltas),
                "delta_mean": _mean(deltas),
                "wins": sum(d > 0 for d in deltas),
                "losses": sum(d < 0 for d in deltas),
            }
        )
    deltas = [r["delta"] for r in rows]
    overall = {
        "n": len(deltas),
        "delta_mean": _mean(deltas),
        "wins": sum(d > 0 for d in deltas),
        "losses": sum(d < 0 for d in deltas),
    }
    return {"rows": rows, "by_configuration": by_config, "overall": overall}


def _per_type(cells, order) -> list[dict]:
    rows = []
    for (label, lang, test), by_seed in sorted(cells.items(), key=lambda kv: (order[kv[0][0]], kv[0][1], kv[0][2])):
        for entity in sorted({t for r in by_seed.values() for t in r.per_type}):
            f1s = [r.per_type[entity] for r in by_seed.values() if entity in r.per_type]
            rows.append(
                {
                    "configuration": label,
                    "lang": lang,
                    "test_set": test,
                    "type": entity,
                    "f1_mean": _mean(f1s),
                    "f1_std": _std(f1s),
                    "n_seeds": len(f1s),
                }
            )
    return rows


# Report key -> the LanguageInfo attributes its rows are grouped by. "encoder" (seen / unseen in the
# encoder's pre-training) next to "family" tells a language the encoder never saw from one that is
# typologically far from English; the family x encoder cross table separates the two within a family.
GROUPINGS = {
    "by_family": ("family",),
    "by_script": ("script",),
    "by_encoder": ("encoder",),
    "by_family_encoder": ("family", "encoder"),
}


def _families(robustness_rows, langs, order) -> dict:
    infos = {lang: language_info(lang) for lang in langs}
    languages = [
        {
            "code": i.code,
            "name": i.name,
            "family": i.family,
            "branch": i.branch,
            "script": i.script,
            "encoder": i.encoder,
        }
        for i in infos.values()
    ]
    grouped = {}
    for key, attributes in GROUPINGS.items():
        buckets: dict[tuple, list] = defaultdict(list)
        for row in robustness_rows:
            if row["in_f1"] is not None:
                group = tuple(getattr(infos[row["lang"]], a) for a in attributes)
                buckets[(group, row["configuration"])].append(row)
        grouped[key] = [
            {
                **dict(zip(attributes, group)),
                "configuration": label,
                "n_languages": len(rows),
                "languages": [r["lang"] for r in rows],
                "f1_mean": _mean(r["in_f1"] for r in rows),
            }
            for (group, label), rows in sorted(buckets.items(), key=lambda kv: (kv[0][0], order[kv[0][1]]))
        ]
    return {"languages": languages, **grouped}


def _rankings(main_rows, order) -> dict[tuple, list[dict]]:
    ranking: dict[tuple, list[dict]] = defaultdict(list)
    for row in main_rows:
        ranking[(row["lang"], row["test_set"])].append(row)
    return {
        key: sorted(rows, key=lambda r: (-r["f1_mean"], order[r["configuration"]]))
        for key, rows in sorted(ranking.items())
    }


def _significance(rankings, cells, samples, alpha, seed) -> dict:
    rows, skipped = [], []
    for (lang, test), ranked in rankings.items():
        best = ranked[0]
        for rank, other in enumerate(ranked[1:], 2):
            a_seeds, b_seeds = cells[(best["configuration"], lang, test)], cells[(other["configuration"], lang, test)]
            shared = sorted(set(a_seeds) & set(b_seeds), key=lambda s: (s is None, s or 0))
            use_a, use_b = (shared, shared) if shared else (best["seeds"], other["seeds"])
            pair = f"{lang}/{test}: {best['configuration']!r} vs {other['configuration']!r}"
            counts_a = [a_seeds[s].counts for s in use_a]
            counts_b = [b_seeds[s].counts for s in use_b]
            if any(c is None for c in counts_a + counts_b):
                skipped.append(f"{pair}: no sentence counts in some runs")
                continue
            try:
                pooled_a, pooled_b = pool_seeds(counts_a), pool_seeds(counts_b)
                result = paired_bootstrap(pooled_a, pooled_b, samples=samples, seed=seed)
            except ValueError as error:
                skipped.append(f"{pair}: {error}")
                continue
            rows.append(
                {
                    "lang": lang,
                    "test_set": test,
                    "domain": best["domain"],
                    "best": best["configuration"],
                    "other": other["configuration"],
                    "other_rank": rank,
                    "pooling": "shared seeds" if shared else "all seeds",
                    "seeds_best": use_a,
                    "seeds_other": use_b,
                    "sentences": result.sentences,
                    "f1_best_pooled": result.f1_a,
                    "f1_other_pooled": result.f1_b,
                    "delta": result.delta,
                    "ci_low": result.ci_low,
                    "ci_high": result.ci_high,
                    "p_value": result.p_value,
                    "significant": result.p_value < alpha,
                }
            )
    return {"rows": rows, "skipped": skipped}


def _sweeps(records: list[tuple[Mapping, dict]]) -> list[dict]:
    groups: dict[tuple, dict] = defaultdict(lambda: {"trials": [], "final": None})
    for record, sweep in records:
        group = groups[(sweep["name"], record.get("lang"))]
        if record["kind"] == "trial":
            group["trials"].append((record, sweep))
        else:
            group["final"] = (record, sweep)  # the last sweep record of a name wins
    rows = []
    for (name, lang), group in sorted(groups.items(), key=lambda kv: (kv[0][0], str(kv[0][1]))):
        scored = [(r, s) for r, s in group["trials"] if s.get("value") is not None]
        if group["final"] is not None and group["final"][1].get("value") is not None:
            best, source = group["final"], "sweep record"
        elif scored:
            best, source = max(scored, key=lambda rs: rs[1]["value"]), "best trial"
        else:
            best, source = None, None
        rows.append(
            {
                "name": name,
                "lang": lang,
                "models": sorted({str(r.get("model")) for r, _ in group["trials"]}),
                "n_trials": len({r.get("run_id") for r, _ in group["trials"]}),
                "best_value": best[1]["value"] if best else None,
                "best_params": dict(best[0].get("params") or {}) if best else None,
                "best_trial": best[1].get("trial") if best else None,
                "source": source,
            }
        )
    return rows


# ------------------------------------------------------------------------------------- findings


def _pct(value: Optional[float]) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def _pts(value: Optional[float]) -> str:
    return "-" if value is None else f"{100 * value:+.1f}"


def _p(value: float) -> str:
    return f"{value:.3f}" if value >= 0.001 else "<0.001"


def _lead_text(test_row, alpha) -> str:
    if test_row is None:
        return "; the lead was not tested for significance (see Significance)."
    if test_row["delta"] <= 0:
        # Pooled counts can order two close systems differently from their mean F1.
        return (
            f"; the paired bootstrap on counts pooled over seeds does not confirm the lead "
            f"(pooled Δ = {_pts(test_row['delta'])} points, p = {_p(test_row['p_value'])})."
        )
    if test_row["significant"]:
        return f"; the lead is significant (paired bootstrap p = {_p(test_row['p_value'])} < {alpha})."
    return f"; the lead is not significant (paired bootstrap p = {_p(test_row['p_value'])} >= {alpha})."


def _student_findings(report, student_rankings, alpha) -> list[str]:
    """Per language x test set, the best student strategy against the runner-up student."""
    tests = {(r["lang"], r["test_set"], r["best"], r["other"]): r for r in report["student_significance"]["rows"]}
    findings = []
    for (lang, test), ranked in student_rankings.items():
        best, second = ranked[0], ranked[1]
        where = f"{lang} / {test} ({'in-domain' if best['domain'] == 'in' else 'out-of-domain'})"
        findings.append(
            f"Best student on {where}: {best['configuration']} ({_pct(best['f1_mean'])}%), "
            f"{_pts(best['f1_mean'] - second['f1_mean'])} points over {second['configuration']} "
            f"({_pct(second['f1_mean'])}%)"
            + _lead_text(tests.get((lang, test, best["configuration"], second["configuration"])), alpha)
        )
    return findings


def _findings(report, rankings, alpha) -> list[str]:
    findings = []
    tests = {(r["lang"], r["test_set"], r["best"], r["other"]): r for r in report["significance"]["rows"]}
    wins: dict[str, int] = defaultdict(int)
    for (lang, test), ranked in rankings.items():
        best = ranked[0]
        wins[best["configuration"]] += 1
        where = f"{lang} / {test} ({'in-domain' if best['domain'] == 'in' else 'out-of-domain'})"
        if len(ranked) == 1:
            findings.append(
                f"{where}: {best['configuration']} is the only configuration evaluated "
                f"({_pct(best['f1_mean'])}% mean F1)."
            )
            continue
        second = ranked[1]
        lead = best["f1_mean"] - second["f1_mean"]
        text = (
            f"{where}: {best['configuration']} has the highest mean F1 ({_pct(best['f1_mean'])}%), "
            f"{_pts(lead)} points over the runner-up {second['configuration']} ({_pct(second['f1_mean'])}%)"
        )
        findings.append(
            text + _lead_text(tests.get((lang, test, best["configuration"], second["configuration"])), alpha)
        )
    if len(rankings) > 1:
        counts = ", ".join(f"{label} {n}" for label, n in sorted(wins.items(), key=lambda kv: -kv[1]))
        findings.insert(0, f"Best configuration per language x test set ({len(rankings)} in all): {counts}.")
    # A configuration that found no entity in domain has nothing to lose out of it: its "drop" of 0 would
    # read as the most robust, so it is named apart.
    by_config = [r for r in report["robustness"]["by_configuration"] if r["in_f1"] > 0]
    silent = [r["configuration"] for r in report["robustness"]["by_configuration"] if not r["in_f1"] > 0]
    if by_config:
        smallest = min(by_config, key=lambda r: r["drop"])
        text = (
            f"Smallest in- vs out-of-domain drop: {smallest['configuration']} ({_pts(smallest['drop'])} points "
            f"averaged over {smallest['n_languages']} language(s))"
        )
        if len(by_config) > 1:
            largest = max(by_config, key=lambda r: r["drop"])
            text += f"; largest: {largest['configuration']} ({_pts(largest['drop'])} points)"
        if silent:
            text += f"; left out, F1 0 in domain: {', '.join(silent)}"
        findings.append(text + ".")
    overall = report["teacher_vs_student"]["overall"]
    if overall["n"]:
        relation = "above" if overall["delta_mean"] > 0 else "below" if overall["delta_mean"] < 0 else "equal to"
        per_config = "; ".join(
            f"{r['configuration']} {_pts(r['delta_mean'])} ({r['wins']}/{r['n']} higher)"
            for r in report["teacher_vs_student"]["by_configuration"]
        )
        findings.append(
            f"Students vs their zero-shot teacher: on average {_pts(overall['delta_mean'])} points "
            f"({relation} the teacher), higher in {overall['wins']} of {overall['n']} comparisons; "
            f"per configuration: {per_config}."
        )
    families: dict[str, list[dict]] = defaultdict(list)
    for row in report["families"]["by_family"]:
        families[row["family"]].append(row)
    for family, rows in families.items():
        # Means over different languages do not compare: only configurations run on every language of the family.
        widest = set(max(rows, key=lambda r: r["n_languages"])["languages"])
        complete = [r for r in rows if set(r["languages"]) == widest]
        best = max(complete, key=lambda r: r["f1_mean"])
        left_out = len(rows) - len(complete)
        findings.append(
            f"{family} ({', '.join(sorted(best['languages']))}): highest mean in-domain F1 for "
            f"{best['configuration']} ({_pct(best['f1_mean'])}%)"
            + (f", among the {len(complete)} configuration(s) run on all of them." if left_out else ".")
        )
    fam = report["families"]
    findings += _coverage_findings(fam.get("by_encoder", []), "")
    for family in sorted({r["family"] for r in fam.get("by_family_encoder", [])}):
        rows = [r for r in fam["by_family_encoder"] if r["family"] == family]
        findings += _coverage_findings(rows, f"Within {family}, ")
    return findings


def _coverage_findings(rows, prefix) -> list[str]:
    """One sentence: per configuration, mean in-domain F1 on the seen vs the unseen languages of ``rows``."""
    seen = {r["configuration"]: r for r in rows if r["encoder"] == "seen"}
    unseen = {r["configuration"]: r for r in rows if r["encoder"] == "unseen"}
    both = [label for label in seen if label in unseen]
    if not both:
        return []

    def codes(side):
        return ", ".join(sorted({lang for label in both for lang in side[label]["languages"]}))

    per_config = "; ".join(
        f"{label} {_pct(seen[label]['f1_mean'])}% (n={seen[label]['n_languages']}) vs "
        f"{_pct(unseen[label]['f1_mean'])}% (n={unseen[label]['n_languages']}), "
        f"{_pts(seen[label]['f1_mean'] - unseen[label]['f1_mean'])} points"
        for label in both
    )
    higher = sum(seen[label]["f1_mean"] > unseen[label]["f1_mean"] for label in both)
    text = (
        f"{prefix}languages the encoder saw in pre-training ({codes(seen)}) vs not ({codes(unseen)}), "
        f"mean in-domain F1: {per_config}; the seen ones score higher for {higher} of {len(both)} configuration(s)."
    )
    return [text[0].upper() + text[1:]]


# --------------------------------------------------------------------------------------- report


def _compute(records: list) -> dict:
    """What the recorded runs cost (their own wall time and peak memory; teacher training is not a record).

    ``groups``: wall time per experiment group, so each group's budget is a measured figure. A run counts under
    the group(s) its record names: the harness runs group by group, so a run that several groups use (a
    teacher's evaluation) is recorded, and counted, under the first; sweep trials count under "sweeps"."""
    counted = [r for r in records if isinstance(r, Mapping) and r.get("kind") in ("teacher", "student", "trial")]
    facts = [r.get("provenance") or {} for r in counted]
    walls = [f["wall_time_s"] for f in facts if _is_number(f.get("wall_time_s"))]
    rss = [f["peak_rss_mb"] for f in facts if _is_number(f.get("peak_rss_mb"))]
    gpu = [f["peak_gpu_memory_mb"] for f in facts if _is_number(f.get("peak_gpu_memory_mb"))]
    groups: dict[str, float] = {}
    for record, fact in zip(counted, facts):
        if _is_number(fact.get("wall_time_s")):
            for group in ["sweeps"] if record["kind"] == "trial" else record.get("groups") or []:
                groups[str(group)] = groups.get(str(group), 0.0) + float(fact["wall_time_s"])
    return {
        "runs": len(walls),
        "wall_time_s": sum(walls) if walls else None,
        "groups": groups,
        "peak_rss_mb": max(rss) if rss else None,
        "peak_gpu_memory_mb": max(gpu) if gpu else None,
    }


def group_minutes(compute: Mapping) -> str:
    """``main 150 min, zoo 70 min`` from a report's compute summary (empty where no record names a group)."""
    groups = compute.get("groups") or {}
    return ", ".join(f"{name} {seconds / 60:.0f} min" for name, seconds in groups.items())


def _model_selection(records: list) -> list[dict]:
    """How each language's students picked their epoch (the ``selection`` a student record holds, from
    ``training.model_selection``): one row per language and protocol, with its dev set and run count."""
    rows: dict[tuple, dict] = {}
    for record in records:
        if not isinstance(record, Mapping) or record.get("kind") != "student":
            continue
        chosen = record.get("selection") if isinstance(record.get("selection"), Mapping) else {}
        protocol = chosen.get("selection") or "none"
        dev = chosen.get("dev_set") if isinstance(chosen.get("dev_set"), Mapping) else {}
        if protocol == "translate-train-dev":  # a local folder: say what it is, not where it was
            dev_set = "the source dev set translated and projected (no gold labels)"
        else:
            dev_set = dev.get("dataset") or "none: the last epoch"
        key = (str(record.get("lang")), protocol, dev_set)
        row = rows.setdefault(
            key,
            {
                "lang": key[0],
                "protocol": protocol,
                "dev_set": dev_set,
                "gold_target_dev_used": bool(chosen.get("gold_target_dev_used")),
                "runs": 0,
            },
        )
        row["runs"] += 1
    return [rows[k] for k in sorted(rows)]


# What each pseudo-label rate of a student record means (training.results.RunResults.pseudo_label_rates)
PSEUDO_LABEL_RATES = {
    "sentences_kept": "sentences kept (language-agnostic selection)",
    "denoise_mean_weight": "mean neighbour weight (denoising)",
    "relabelled": "words relabelled (denoising)",
    "words_kept": "words kept (class-balanced thresholds)",
    "kept_rate": "pseudo-labels kept, last epoch",
    "disagreement_rate": "projection vs teacher disagreement, last epoch",
}


def _pseudo_label_rows(runs: list[_Run], order: Mapping[str, int]) -> list[dict]:
    """Per configuration and language: the mean (over seeds) of each rate its students' records carry."""
    groups: dict[tuple, list[_Run]] = defaultdict(list)
    for run in runs:
        if run.pseudo_labels:
            groups[(run.label, run.lang)].append(run)
    rows = []
    for (label, lang), group in sorted(groups.items(), key=lambda item: (order.get(item[0][0], 0), item[0][1])):
        keys = [k for k in PSEUDO_LABEL_RATES if any(k in r.pseudo_labels for r in group)]
        rates = {k: float(np.mean([r.pseudo_labels[k] for r in group if k in r.pseudo_labels])) for k in keys}
        rows.append({"configuration": label, "lang": lang, "rates": rates, "runs": len(group)})
    return rows


def build_report(records: Iterable[Mapping], *, samples: int = 1000, alpha: float = 0.05, seed: int = 0) -> dict:
    """The report as a JSON-ready dict (see the module docstring); ValueError on a malformed record."""
    records = list(records)
    runs, sweeps, notes = [], [], []
    for index, record in enumerate(records):
        if not isinstance(record, Mapping):
            raise ValueError(f"record #{index} is not an object")
        kind = record.get("kind")
        if kind in MAIN_KINDS:
            runs.append(_run(record, index))
        elif kind in SWEEP_KINDS:
            sweeps.append((record, _check_sweep(record, index)))
        else:
            raise ValueError(f"{_name(record, index)} has an unknown kind {kind!r}")
    if not runs:
        raise ValueError("no teacher or student records")
    by_id = {}
    for run in runs:  # a run stored twice counts once: the later record wins
        if run.run_id in by_id:
            notes.append(f"run {run.run_id!r} appears more than once; its last record is used")
        by_id[run.run_id] = run
    runs = list(by_id.values())
    _label_variants(runs)

    configs: dict[str, dict] = {}
    for run in sorted(runs, key=lambda r: (r.kind != "teacher", r.label)):
        configs.setdefault(
            run.label,
            {
                "label": run.label,
                "kind": run.kind,
                "model": run.model,
                "student_kind": run.student_kind,
                "teachers": run.teachers,
                "base_model": run.base_model,
                "variant": run.variant,
                "run_ids": [],
            },
        )["run_ids"].append(run.run_id)
    order = {label: i for i, label in enumerate(configs)}

    cells: dict[tuple, dict] = defaultdict(dict)
    domains: dict[tuple, str] = {}
    for run in runs:
        for test, result in run.results.items():
            key = (run.label, run.lang, test)
            if run.seed in cells[key]:
                notes.append(
                    f"{run.label!r} has two runs with seed {run.seed} on {run.lang}/{test}; run {run.run_id!r} is used"
                )
            cells[key][run.seed] = result
            if domains.setdefault((run.lang, test), result.domain) != result.domain:
                notes.append(
                    f"{run.lang}/{test} is labelled both in- and out-of-domain; {domains[(run.lang, test)]!r} is used"
                )

    main = _main_rows(cells, domains, order)
    rankings = _rankings(main, order)
    experiments = sorted(
        {e for e in [r.experiment for r in runs] + [s.get("experiment") for s, _ in sweeps] if isinstance(e, str)}
    )
    report: dict[str, Any] = {
        "format": REPORT_FORMAT,
        "title": "Experiment report" + (f": {', '.join(experiments)}" if experiments else ""),
        "settings": {
            "samples": samples,
            "alpha": alpha,
            "seed": seed,
            "p_value": "two-sided: min(1, 2 (1 + k) / (samples + 1)), k = resamples whose delta is 0 "
            "or of the opposite sign to the observed delta",
        },
        "summary": {
            "records": len(runs) + len(sweeps),
            "runs": len(runs),
            "sweep_records": len(sweeps),
            "experiments": experiments,
            "languages": sorted({r.lang for r in runs}),
            "test_sets": sorted({t for r in runs for t in r.results}),
            "configurations": list(configs),
            "compute": _compute(records),
            "model_selection": _model_selection(records),
        },
        "configurations": list(configs.values()),
        "main": main,
    }
    report["robustness"] = _robustness(main, order)
    report["teacher_vs_student"] = _teacher_vs_student(main, configs, notes)
    report["per_type"] = _per_type(cells, order)
    report["families"] = _families(report["robustness"]["rows"], report["summary"]["languages"], order)
    report["significance"] = _significance(rankings, cells, samples, alpha, seed)
    # Question 1 is about strategies: the same test among students only (teachers left out).
    students = {label for label, c in configs.items() if c["kind"] == "student"}
    student_rankings = {key: [r for r in ranked if r["configuration"] in students] for key, ranked in rankings.items()}
    student_rankings = {key: ranked for key, ranked in student_rankings.items() if len(ranked) > 1}
    report["student_significance"] = _significance(student_rankings, cells, samples, alpha, seed)
    report["sweeps"] = _sweeps(sweeps)
    report["pseudo_labels"] = _pseudo_label_rows(runs, order)
    report["findings"] = _findings(report, rankings, alpha) + _student_findings(report, student_rankings, alpha)
    report["notes"] = notes
    return report


# ------------------------------------------------------------------------------------- markdown


def _esc(value) -> str:
    return str(value).replace("|", "\\|")


def _table(headers: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(_esc(cell) for cell in row) + " |" for row in rows]
    return lines + [""]


def _pseudo_label_lines(rows: list) -> list[str]:
    """What the pseudo-label steps did, per configuration and language (% , mean over seeds)."""
    keys = [k for k in PSEUDO_LABEL_RATES if any(k in r["rates"] for r in rows)]
    if not keys:
        return []
    out = ["## Pseudo-label steps", "", "What each step did to the teacher's labels (%, mean over seeds):", ""]
    return out + _table(
        ["Configuration", "Language", *[PSEUDO_LABEL_RATES[k] for k in keys], "Students"],
        [[r["configuration"], r["lang"], *[_pct(r["rates"].get(k)) for k in keys], r["runs"]] for r in rows],
    )


def _significance_table(rows: list, best: str) -> list[str]:
    """Paired-bootstrap rows (the best configuration against each other one) as a Markdown table."""
    header = ["Language", "Test set", best, "Compared with", "Seeds", "Δ F1", "95% CI", "p", "Significant"]
    return _table(
        header,
        [
            [
                r["lang"],
                r["test_set"],
                r["best"],
                r["other"],
                r["pooling"],
                _pts(r["delta"]),
                f"[{_pts(r['ci_low'])}, {_pts(r['ci_high'])}]",
                _p(r["p_value"]),
                "yes" if r["significant"] else "no",
            ]
            for r in rows
        ],
    )


def _f1_cell(mean: Optional[float], std: Optional[float]) -> str:
    return _pct(mean) if std is None else f"{_pct(mean)} ± {_pct(std)}"


def _chart_lines(report: Mapping, name: str, alt: str) -> list[str]:
    entry = (report.get("charts") or {}).get(name)
    if entry is None:
        return []  # charts are drawn by write_report only
    if entry.get("file"):
        return [f"![{alt}]({entry['file']})", ""]
    return [f"*No {alt} chart: {entry.get('reason', 'no data')}.*", ""]


def _overview(main_rows: list[dict]) -> list[str]:
    """The main results as one table: configurations x (language, test set), in report order."""
    columns = list(dict.fromkeys((r["lang"], r["test_set"], r["domain"]) for r in main_rows))
    configurations = list(dict.fromkeys(r["configuration"] for r in main_rows))
    cells = {(r["configuration"], r["lang"], r["test_set"]): r for r in main_rows}
    rows = []
    for configuration in configurations:
        row = [configuration]
        for lang, test, _ in columns:
            r = cells.get((configuration, lang, test))
            if r is None:
                row.append("")
            else:
                row.append(_f1_cell(r["f1_mean"], r["f1_std"]) + (f" ({r['n_seeds']})" if r["n_seeds"] > 1 else ""))
        rows.append(row)
    return _table(["Configuration", *[f"{lang} {test} ({domain})" for lang, test, domain in columns]], rows)


def render_markdown(report: Mapping) -> str:
    """The report (from :func:`build_report` or :func:`write_report`) as markdown."""
    s = report["summary"]
    out = [f"# {report.get('title') or 'Experiment report'}", ""]
    out += [
        f"Built from {s['runs']} teacher/student run(s) and {s['sweep_records']} sweep record(s): "
        f"{len(s['configurations'])} configuration(s), {len(s['languages'])} language(s), "
        f"{len(s['test_sets'])} test set(s). F1 is in %, mean ± sample std (ddof=1) over seeds, "
        "n = number of seeds; differences are in percentage points.",
        "",
    ]
    compute = s.get("compute") or {}
    if compute.get("wall_time_s") is not None:
        memory = f", peak RSS {compute['peak_rss_mb']:.0f} MB" if compute.get("peak_rss_mb") is not None else ""
        gpu = f", peak GPU memory {compute['peak_gpu_memory_mb']:.0f} MB" if compute.get("peak_gpu_memory_mb") else ""
        by_group = group_minutes(compute)
        out += [
            f"Compute: {compute['runs']} recorded runs (evaluations, students, trials) took "
            f"{compute['wall_time_s'] / 60:.1f} min of wall time in all{memory}{gpu}"
            + (f"; by group: {by_group}." if by_group else "."),
            "",
        ]

    selection = s.get("model_selection") or []
    if selection:
        out += [
            "Model selection (the dev set that picked each student's epoch; gold target-language labels only "
            "where said):",
            "",
        ]
        out += _table(
            ["Language", "Protocol", "Dev set", "Gold target dev", "Students"],
            [
                [r["lang"], r["protocol"], r["dev_set"], "yes" if r["gold_target_dev_used"] else "no", r["runs"]]
                for r in selection
            ],
        )
    out += ["## Findings", ""] + [f"- {f}" for f in report["findings"]] + [""]

    out += [
        "## Overview",
        "",
        "F1 (%) per configuration (rows) and language / test set (columns); "
        "mean ± std over seeds, with the number of seeds in brackets when there are several.",
        "",
    ]
    out += _overview(report["main"])
    out += ["## Main results", ""]
    out += _table(
        ["Configuration", "Language", "Test set", "Domain", "F1 (%)", "n"],
        [
            [
                r["configuration"],
                r["lang"],
                r["test_set"],
                r["domain"],
                _f1_cell(r["f1_mean"], r["f1_std"]),
                r["n_seeds"],
            ]
            for r in report["main"]
        ],
    )
    out += _chart_lines(report, "f1", "F1")
    out += _pseudo_label_lines(report.get("pseudo_labels") or [])

    rob = report["robustness"]
    out += ["## Robustness (in- vs out-of-domain)", "", "Drop = mean in-domain F1 - mean out-of-domain F1.", ""]
    out += _table(
        ["Configuration", "Language", "In-domain F1", "Out-of-domain F1", "Drop"],
        [[r["configuration"], r["lang"], _pct(r["in_f1"]), _pct(r["out_f1"]), _pts(r["drop"])] for r in rob["rows"]],
    )
    if rob["by_configuration"]:
        out += ["Averaged over the languages with both in- and out-of-domain test sets:", ""]
        out += _table(
            ["Configuration", "Languages", "In-domain F1", "Out-of-domain F1", "Drop"],
            [
                [r["configuration"], r["n_languages"], _pct(r["in_f1"]), _pct(r["out_f1"]), _pts(r["drop"])]
                for r in rob["by_configuration"]
            ],
        )
    out += _chart_lines(report, "robustness", "Robustness")

    tvs = report["teacher_vs_student"]
    out += ["## Teacher vs student", ""]
    if tvs["rows"]:
        out += ["Δ = student mean F1 - zero-shot F1 of its (first) teacher on the same language and test set.", ""]
        out += _table(
            ["Student", "Language", "Test set", "Domain", "Teacher", "Student F1", "Teacher F1", "Δ"],
            [
                [
                    r["configuration"],
                    r["lang"],
                    r["test_set"],
                    r["domain"],
                    r["teacher"],
                    _pct(r["student_f1"]),
                    _pct(r["teacher_f1"]),
                    _pts(r["delta"]),
                ]
                for r in tvs["rows"]
            ],
        )
        out += _table(
            ["Student", "Comparisons", "Mean Δ", "Higher", "Lower"],
            [
                [r["configuration"], r["n"], _pts(r["delta_mean"]), r["wins"], r["losses"]]
                for r in tvs["by_configuration"]
            ],
        )
    else:
        out += ["No student result has a zero-shot result of its teacher to compare with.", ""]

    out += ["## Per-type F1", ""]
    if report["per_type"]:
        out += _table(
            ["Configuration", "Language", "Test set", "Type", "F1 (%)", "n"],
            [
                [
                    r["configuration"],
                    r["lang"],
                    r["test_set"],
                    r["type"],
                    _f1_cell(r["f1_mean"], r["f1_std"]),
                    r["n_seeds"],
                ]
                for r in report["per_type"]
            ],
        )
    else:
        out += ["No per-type scores in the records.", ""]

    fam = report["families"]
    out += [
        "## Languages by family, script and encoder coverage",
        "",
        "Encoder: seen when the language is one of the 100 of CC-100, the pre-training corpus of XLM-R and "
        "multilingual-e5 (xner/experiments/languages.py).",
        "",
    ]
    out += _table(
        ["Code", "Name", "Family", "Branch", "Script", "Encoder"],
        [
            [r["code"], r["name"], r["family"], r["branch"], r["script"], r.get("encoder", "unknown")]
            for r in fam["languages"]
        ],
    )
    for key, what in (
        ("by_family", "family"),
        ("by_script", "script"),
        ("by_encoder", "encoder-coverage group (seen / unseen in pre-training)"),
        ("by_family_encoder", "family x encoder-coverage group"),
    ):
        rows = fam.get(key, [])  # reports written before encoder coverage have no by_encoder
        if rows:
            attributes = GROUPINGS[key]
            out += [f"Mean in-domain F1 per configuration, averaged over the languages of each {what}:", ""]
            out += _table(
                [*(a.capitalize() for a in attributes), "Configuration", "Languages", "F1 (%)"],
                [
                    [*(r[a] for a in attributes), r["configuration"], ", ".join(r["languages"]), _pct(r["f1_mean"])]
                    for r in rows
                ],
            )
    out += _chart_lines(report, "families", "Families")
    out += _chart_lines(report, "coverage", "Encoder coverage")

    sig, settings = report["significance"], report["settings"]
    out += [
        "## Significance",
        "",
        f"Paired bootstrap over test sentences ({settings['samples']} resamples), best configuration per "
        "language and test set against each other one; per-sentence counts are summed over the seeds the two "
        "configurations share (all their seeds when they share none). Δ is the F1 of the pooled counts; "
        f"p is {settings['p_value']}; significant means p < {settings['alpha']}.",
        "",
    ]
    if sig["rows"]:
        out += _significance_table(sig["rows"], "Best")
    else:
        out += ["No pair of configurations could be tested.", ""]
    out += [f"- skipped: {s}" for s in sig["skipped"]] + ([""] if sig["skipped"] else [])
    among = report.get("student_significance") or {"rows": [], "skipped": []}
    if among["rows"]:
        out += ["Among students only (which strategy transfers best), the best student against each other one:", ""]
        out += _significance_table(among["rows"], "Best student")

    out += ["## Sweeps", ""]
    if report["sweeps"]:
        out += _table(
            ["Sweep", "Language", "Trials", "Best dev F1", "Best params", "From"],
            [
                [
                    r["name"],
                    r["lang"] or "-",
                    r["n_trials"],
                    _pct(r["best_value"]),
                    json.dumps(r["best_params"], sort_keys=True) if r["best_params"] is not None else "-",
                    r["source"] or "-",
                ]
                for r in report["sweeps"]
            ],
        )
    else:
        out += ["No sweep records.", ""]

    if report["notes"]:
        out += ["## Notes", ""] + [f"- {n}" for n in report["notes"]] + [""]
    return "\n".join(out)


# --------------------------------------------------------------------------------------- charts


# Charts are drawn for the README: CHART_WIDTH inches at CHART_DPI is the ~800 px width a README
# shows them at, so FONT_SIZE points there are FONT_SIZE points on screen (legible), and
# ``bbox_inches="tight"`` keeps legends outside the axes inside the image.
CHART_WIDTH, CHART_DPI, FONT_SIZE = 8.0, 100, 10


def _legend(figure, labels, colours) -> None:
    from matplotlib.patches import Patch

    handles = [Patch(facecolor=colours[label], label=label) for label in labels]
    figure.legend(handles=handles, loc="outside upper center", ncols=min(3, len(handles)), fontsize=FONT_SIZE)


def _legend_rows(labels) -> int:
    return math.ceil(len(labels) / 3)


def _chart_f1(report, colours, Figure):
    rows = report["main"]
    if not rows:
        return "no teacher or student results"
    langs = sorted({r["lang"] for r in rows})
    configs = [c for c in colours if any(r["configuration"] == c for r in rows)]
    tests_per_lang = {lang: sorted({r["test_set"] for r in rows if r["lang"] == lang}) for lang in langs}
    most = max(len(t) for t in tests_per_lang.values())
    panel = 1.0 + 0.25 * len(configs) * most  # inches a language's panel needs for its bars and labels
    ncols = max(1, min(3, len(langs), int(CHART_WIDTH // panel)))
    nrows = math.ceil(len(langs) / ncols)
    figure = Figure(figsize=(CHART_WIDTH, 3.2 * nrows + 0.35 * _legend_rows(configs)), layout="constrained")
    axes = figure.subplots(nrows, ncols, squeeze=False).ravel()
    top = _y_top(100 * (r["f1_mean"] + (r["f1_std"] or 0)) for r in rows)
    for ax, lang in zip(axes, langs):
        here = [r for r in rows if r["lang"] == lang]
        present = [c for c in configs if any(r["configuration"] == c for r in here)]
        tests = tests_per_lang[lang]
        cell = {(r["configuration"], r["test_set"]): r for r in here}
        bar = 0.8 / len(present)
        for j, label in enumerate(present):
            got = [cell.get((label, t)) for t in tests]
            x = np.arange(len(tests)) - 0.4 + bar * (j + 0.5)
            heights = [100 * r["f1_mean"] if r else np.nan for r in got]
            errors = [100 * r["f1_std"] if r and r["f1_std"] is not None else 0 for r in got]
            ax.bar(x, heights, bar, yerr=errors, capsize=2, color=colours[label])
        domain = {r["test_set"]: r["domain"] for r in here}
        ax.set_xticks(np.arange(len(tests)), labels=[f"{t}\n({domain[t]})" for t in tests], fontsize=FONT_SIZE)
        ax.set_title(f"{lang} ({language_info(lang).name})", fontsize=FONT_SIZE + 1)
        ax.set_ylim(0, top)
        ax.tick_params(labelsize=FONT_SIZE)
        if ax.get_subplotspec().is_first_col():
            ax.set_ylabel("F1 (%)", fontsize=FONT_SIZE)
    for ax in axes[len(langs) :]:
        ax.set_visible(False)
    _legend(figure, configs, colours)
    return figure


def _y_top(values) -> float:
    """The y-axis top: the largest bar plus a margin, rounded up to 10 points (at most 100), so low scores stay legible."""
    highest = max([v for v in values if v is not None and math.isfinite(v)] or [0.0])
    return float(min(100, max(10, 10 * math.ceil(highest * 1.15 / 10))))


def _chart_robustness(report, colours, Figure):
    from matplotlib.patches import Patch

    rows = report["robustness"]["by_configuration"]
    if not rows:
        return "no configuration has both in- and out-of-domain results"
    figure = Figure(figsize=(CHART_WIDTH, 4.8), layout="constrained")
    ax = figure.subplots()
    x = np.arange(len(rows))
    for row, position in zip(rows, x):
        colour = colours[row["configuration"]]
        ax.bar(position - 0.2, 100 * row["in_f1"], 0.4, color=colour)
        ax.bar(position + 0.2, 100 * row["out_f1"], 0.4, facecolor="white", edgecolor=colour, hatch="///")
    # Each pair averages over its configuration's languages: say how many, as they may differ.
    ax.set_xticks(
        x,
        labels=[f"{r['configuration']} (n={r['n_languages']})" for r in rows],
        rotation=30,
        ha="right",
        fontsize=FONT_SIZE,
    )
    ax.set_ylim(0, _y_top(100 * max(r["in_f1"], r["out_f1"]) for r in rows))
    ax.tick_params(labelsize=FONT_SIZE)
    ax.set_ylabel("mean F1 (%)", fontsize=FONT_SIZE)
    ax.set_title("In- vs out-of-domain F1, mean over the n languages with both", fontsize=FONT_SIZE + 1)
    ax.legend(
        handles=[
            Patch(facecolor="grey", label="in-domain"),
            Patch(facecolor="white", edgecolor="grey", hatch="///", label="out-of-domain"),
        ],
        fontsize=FONT_SIZE,
        loc="upper left",
        bbox_to_anchor=(1.0, 1.0),
        frameon=False,
    )
    return figure


def _chart_groups(report, colours, Figure, key, attribute, title):
    """Bars of mean in-domain F1 per group of languages (``report["families"][key]``) and configuration."""
    rows = report["families"].get(key, [])
    if not rows:
        return "no in-domain results"
    groups = sorted({r[attribute] for r in rows})
    configs = [c for c in colours if any(r["configuration"] == c for r in rows)]
    cell = {(r[attribute], r["configuration"]): r for r in rows}
    figure = Figure(figsize=(CHART_WIDTH, 4.4 + 0.35 * _legend_rows(configs)), layout="constrained")
    ax = figure.subplots()
    bar = 0.8 / len(configs)
    top = _y_top(100 * r["f1_mean"] for r in rows)
    for j, label in enumerate(configs):
        x = np.arange(len(groups)) - 0.4 + bar * (j + 0.5)
        heights = [100 * cell[(g, label)]["f1_mean"] if (g, label) in cell else np.nan for g in groups]
        ax.bar(x, heights, bar, color=colours[label])
        # Each bar averages its own languages of the group: n on every bar, as bars side by side may differ.
        for position, group, height in zip(x, groups, heights):
            if (group, label) in cell:
                ax.text(
                    position,
                    height + top * 0.01,
                    f"{cell[(group, label)]['n_languages']}",
                    ha="center",
                    va="bottom",
                    fontsize=FONT_SIZE,
                )
    ax.set_xticks(np.arange(len(groups)), labels=groups, fontsize=FONT_SIZE)
    ax.set_ylim(0, top)
    ax.tick_params(labelsize=FONT_SIZE)
    ax.set_ylabel("mean in-domain F1 (%)", fontsize=FONT_SIZE)
    ax.set_title(f"Mean in-domain F1 per {title} (number on a bar: languages it averages)", fontsize=FONT_SIZE)
    _legend(figure, configs, colours)
    return figure


def _chart_families(report, colours, Figure):
    return _chart_groups(report, colours, Figure, "by_family", "family", "language family")


def _chart_coverage(report, colours, Figure):
    rows = report["families"].get("by_encoder", [])
    if len({r["encoder"] for r in rows}) == 1:
        return f"every language with in-domain results is {rows[0]['encoder']} by the encoder"
    return _chart_groups(report, colours, Figure, "by_encoder", "encoder", "encoder coverage")


def _draw_charts(report: dict, output_dir: str) -> dict[str, dict]:
    # Lazy: only writing a report needs matplotlib. The Agg canvas is used directly, without
    # pyplot, so no global backend is switched and no window can open.
    from matplotlib import colormaps, rc_context
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    labels = [c["label"] for c in report["configurations"]]
    palette = colormaps["tab10" if len(labels) <= 10 else "tab20"]
    colours = {label: palette(i % palette.N) for i, label in enumerate(labels)}
    charts = {}
    drawers = {
        "f1": _chart_f1,
        "robustness": _chart_robustness,
        "families": _chart_families,
        "coverage": _chart_coverage,
    }
    for name, draw in drawers.items():
        path = os.path.join(output_dir, CHARTS[name])
        with rc_context({"font.size": FONT_SIZE}):
            figure = draw(report, colours, Figure)
            if isinstance(figure, str):
                if os.path.exists(path):
                    os.remove(path)  # a chart from an earlier report would no longer match it
                charts[name] = {"file": None, "reason": figure}
                continue
            FigureCanvasAgg(figure)
            figure.savefig(path, dpi=CHART_DPI, bbox_inches="tight", pad_inches=0.1)
        charts[name] = {"file": CHARTS[name]}
    return charts


def redraw_charts(output_dir: str) -> dict[str, dict]:
    """Draw the charts of a written report again from its ``report.json`` (no results store needed)."""
    with open(os.path.join(output_dir, "report.json"), encoding="utf-8") as handle:
        report = json.load(handle)
    return _draw_charts(report, output_dir)


def write_report(
    records: Iterable[Mapping],
    output_dir: str,
    *,
    title: Optional[str] = None,
    samples: int = 1000,
    alpha: float = 0.05,
) -> dict[str, str]:
    """Write ``report.md``, ``report.json`` and the PNG charts to ``output_dir``; file name -> path written."""
    report = build_report(records, samples=samples, alpha=alpha)
    if title:
        report["title"] = title
    os.makedirs(output_dir, exist_ok=True)
    report["charts"] = _draw_charts(report, output_dir)
    paths = {c["file"]: os.path.join(output_dir, c["file"]) for c in report["charts"].values() if c["file"]}
    json_path = os.path.join(output_dir, "report.json")
    with open(json_path, "w", encoding="utf-8") as handle:
        json.dump(report, handle, ensure_ascii=False, indent=2, allow_nan=False)
        handle.write("\n")
    markdown_path = os.path.join(output_dir, "report.md")
    with open(markdown_path, "w", encoding="utf-8") as handle:
        handle.write(render_markdown(report))
    return {"report.md": markdown_path, "report.json": json_path, **paths}


__all__ = [
    "CHARTS",
    "REPORT_FORMAT",
    "build_report",
    "group_minutes",
    "redraw_charts",
    "render_markdown",
    "write_report",
]
