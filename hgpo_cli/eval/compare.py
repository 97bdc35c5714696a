"""`hgpo compare`: evaluated runs in the layout of the papers' Table 1, published numbers side by side.

Rows are method x K x model. A run's identity comes from its resolved config: method = algorithm.name,
K = agent.history_length (the memory; for HGPO also the hierarchy depth), model = model.path's short name.
Runs whose configs differ only in trainer.seed (and in settings that do not change the result: names,
folders, resources, logging) form one row; their evaluations are pooled: mean and std (ddof 1) over all
(training seed, evaluation seed) pairs. When runs of the same method x K x model differ in another
setting, the row label names that setting (e.g. `alpha=2`).

Evaluations come from the newest complete checkpoint of each run (eval-<env>-<split>.json in the
checkpoint folder or its policy/). Columns: the six ALFWorld task types and All on the in-distribution
split, All on the out-of-distribution split, WebShop score and success on the test split.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hgpo_cli.errors import UserError
from hgpo_cli.eval.before_after import BEFORE_DIR
from hgpo_cli.eval.published import SOURCES, TASK_COLUMNS, Published, published_for
from hgpo_cli.eval.runs import find_run_dirs, newest_evals, reports_by_split, short_model_name

# (column key, header). Keys: <env>[-ood]/<column of the eval report>.
COLUMNS: list[tuple[str, str]] = [
    *[(f"alfworld/{name}", name) for name in TASK_COLUMNS],
    ("alfworld/All", "All"),
    ("alfworld-ood/All", "All (OOD)"),
    ("webshop/score", "WebShop score"),
    ("webshop/success", "WebShop succ."),
]
# The eval split that fills a column prefix, per environment.
SPLIT_PREFIX = {
    ("alfworld", "eval_in_distribution"): "alfworld",
    ("alfworld", "eval_out_of_distribution"): "alfworld-ood",
    ("webshop", "test"): "webshop",
}
# `sft`: a run of zero iterations, i.e. its starting policy (the warm start) evaluated by trainer.eval_before
START_METHOD = "sft"
METHOD_ORDER = (START_METHOD, "ppo", "rloo", "grpo", "gigpo", "hgpo")
# Settings that name, place or resource a run without changing what it learns.
IGNORED_KEYS = (
    "trainer.seed",
    "trainer.experiment_name",
    "trainer.output_dir",
    "trainer.resume",
    "trainer.eval_after",
    "trainer.eval_episodes",
    "trainer.save_freq",
    "trainer.save_rollouts",
    "trainer.num_workers",
    "trainer.cpus_per_worker",
    "trainer.gpus_per_worker",
    "trainer.torch_threads",
    "trainer.device",
    "trainer.micro_batch_size",
    "env.num_workers",
    "env.cpus_per_worker",
    "env.alfworld.data_dir",
    "env.webshop.data_dir",
    "rollout.engine",
    "rollout.batch_size",
    "rollout.gpu_memory_utilization",
    "rollout.num_cpus",
    "rollout.num_gpus",
    "model.gradient_checkpointing",
    "critic.micro_batch_size",
    "critic.num_cpus",
    "critic.num_gpus",
    "logging",
    "ray",
)


@dataclass(frozen=True)
class Moments:
    """Mean, sample std (ddof 1) and count of a set of values, poolable without the values."""

    mean: float
    std: float
    n: int

    @staticmethod
    def of(values: list[float]) -> Moments:
        n = len(values)
        mean = sum(values) / n
        var = sum((v - mean) ** 2 for v in values) / (n - 1) if n > 1 else 0.0
        return Moments(mean, math.sqrt(var), n)

    @staticmethod
    def pool(parts: list[Moments]) -> Moments:
        """The moments of the union of the parts' values (exact):
        mean = sum n_i m_i / N; var = (sum (n_i - 1) s_i^2 + sum n_i (m_i - mean)^2) / (N - 1)."""
        total = sum(p.n for p in parts)
        mean = sum(p.n * p.mean for p in parts) / total
        ss = sum((p.n - 1) * p.std**2 + p.n * (p.mean - mean) ** 2 for p in parts)
        return Moments(mean, math.sqrt(ss / (total - 1)) if total > 1 else 0.0, total)


@dataclass
class RunRecord:
    """One training run as compare sees it: config, evaluations per column, learning curve."""

    source: str  # run folder or W&B run path
    config: dict[str, Any]
    columns: dict[str, Moments] = field(default_factory=dict)  # column key -> moments over eval seeds
    curve: list[tuple[int, float]] = field(default_factory=list)  # (iteration, rollout success %)
    checkpoint: str | None = None

    @property
    def env(self) -> str:
        return str(self.config["env"]["name"])


def columns_of_report(
    env: str,
    split: str,
    per_seed: dict[int, dict[str, float]] | None = None,
    stats: dict[str, dict[str, float]] | None = None,
) -> dict[str, Moments]:
    """Column moments of one eval report, from its per-seed values (preferred) or its stats."""
    prefix = SPLIT_PREFIX.get((env, split))
    if prefix is None:
        return {}
    out: dict[str, Moments] = {}
    names = {c for values in (per_seed or {}).values() for c in values} or set(stats or {})
    for name in sorted(names):
        if env == "alfworld" and name == "score":  # ALFWorld has no score beyond success
            continue
        key = f"{prefix}/{'success' if env == 'webshop' and name == 'All' else name}"
        if per_seed:
            values = [float(v[name]) for v in per_seed.values() if name in v]
            out[key] = Moments.of(values)
        elif stats and name in stats:
            s = stats[name]
            out[key] = Moments(float(s["mean"]), float(s.get("std", 0.0)), int(s.get("n", 1)))
    return out


def record_from_run_dir(run_dir: Path) -> RunRecord:
    """A run folder's config, the evaluations of its newest checkpoint and its rollout success curve."""
    from omegaconf import OmegaConf

    from hgpo_cli.tracking.run_logger import read_metrics

    run_dir = Path(run_dir)
    try:
        config = OmegaConf.to_container(OmegaConf.load(run_dir / "config.yaml"), resolve=True)
    except Exception as err:  # noqa: BLE001 - a broken file is reported as a user error
        raise UserError(f"{run_dir / 'config.yaml'}: not readable ({str(err).splitlines()[0]})") from None
    record = RunRecord(str(run_dir), config)
    checkpoint, reports = newest_evals(run_dir)
    record.checkpoint = str(checkpoint) if checkpoint else None
    if checkpoint is None and int(config.get("trainer", {}).get("iterations", -1)) == 0:
        # no iteration: the run measured its starting policy alone (trainer.eval_before), the row `sft`
        config["algorithm"]["name"] = START_METHOD
        reports = start_evals(run_dir)
        record.checkpoint = str(run_dir / BEFORE_DIR) if reports else None
    env = record.env
    for split, report in reports.items():
        if report.get("env", env) == env:
            record.columns.update(columns_of_report(env, split, report.get("per_seed"), report.get("stats")))
    record.curve = [
        (int(m["iteration"]), 100.0 * float(m["rollout/success_rate"]))
        for m in read_metrics(run_dir)
        if m.get("rollout/success_rate") is not None
    ]
    return record


def start_evals(run_dir: Path) -> dict[str, dict[str, Any]]:
    """{split: report} of RUN_DIR/eval_before/ (the starting policy's evaluations)."""
    return reports_by_split(sorted((Path(run_dir) / BEFORE_DIR).glob("eval-*.json")))


def records_from_wandb(project: str, entity: str | None = None, api: Any = None) -> list[RunRecord]:
    """Training runs of a W&B project with their evaluations.

    The trainer logs the resolved config as the run config; `evaluate_checkpoint` logs
    eval/<split>/<column>/{mean,std} to the summary of a run named eval-<experiment name> (or of the
    training run itself) with the seeds in its config. Pooling over runs uses those moments (exact).
    """
    if api is None:
        import wandb

        api = wandb.Api()
    path = f"{entity}/{project}" if entity else project
    try:
        runs = list(api.runs(path))
    except Exception as err:  # noqa: BLE001 - network, auth or a wrong name: one line for the user
        raise UserError(f"W&B project {path}: could not list runs ({str(err).splitlines()[0]})") from None
    evals: dict[str, Any] = {}
    for run in sorted(runs, key=lambda r: str(getattr(r, "created_at", ""))):
        if str(run.name).startswith("eval-"):
            evals[str(run.name)[len("eval-") :]] = run  # the newest evaluation of a name wins
    records = []
    for run in runs:
        config = dict(run.config)
        if not isinstance(config.get("algorithm"), dict) or not isinstance(config.get("env"), dict):
            continue
        record = RunRecord(f"wandb:{path}/{run.id}", config)
        env = record.env
        for holder in (run, evals.get(str(run.name))):
            if holder is None:
                continue
            n = len(dict(holder.config).get("seeds") or []) or 3
            stats: dict[str, dict[str, dict[str, float]]] = defaultdict(dict)
            for key, value in dict(holder.summary).items():
                parts = str(key).split("/")
                if len(parts) == 4 and parts[0] == "eval" and parts[3] in ("mean", "std"):
                    stats[parts[1]].setdefault(parts[2], {"n": n})[parts[3]] = float(value)
            for split, by_column in stats.items():
                complete = {c: s for c, s in by_column.items() if "mean" in s}
                record.columns.update(columns_of_report(env, split, stats=complete))
        rows = run.scan_history(keys=["rollout/success_rate", "_step"])
        record.curve = [
            (int(r["_step"]), 100.0 * float(r["rollout/success_rate"]))
            for r in rows
            if r.get("rollout/success_rate") is not None
        ]
        records.append(record)
    return records


# ---------------------------------------------------------------------------------------------- identity
def flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in config.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, dotted + "."))
        else:
            out[dotted] = value
    return out


def identity(config: dict[str, Any]) -> tuple[str, int, str]:
    """(method, K, model) of a run config."""
    k = config.get("agent", {}).get("history_length")
    if k is None:
        k = config["algorithm"].get("hgpo", {}).get("history_length", 0)
    return str(config["algorithm"]["name"]), int(k), short_model_name(str(config["model"]["path"]))


def fingerprint(config: dict[str, Any]) -> dict[str, Any]:
    """The settings that make two runs comparable as seeds of one experiment."""
    env = config["env"]["name"]
    flat = flatten(config)
    others = [f"env.{name}." for name in ("alfworld", "webshop") if name != env]
    return {
        k: v
        for k, v in flat.items()
        if not any(k == i or k.startswith(i + ".") for i in IGNORED_KEYS) and not k.startswith(tuple(others))
    }


def differing_keys(fingerprints: list[dict[str, Any]]) -> set[str]:
    """Keys whose values are not the same in all the fingerprints."""
    keys = {k for f in fingerprints for k in f}
    return {k for k in keys if len({json.dumps(f.get(k), sort_keys=True) for f in fingerprints}) > 1}


def extras_label(fingerprint_: dict[str, Any], keys: list[str]) -> str:
    """'alpha=2.0': the values of `keys` in a fingerprint (leaf names unless two keys share a leaf)."""
    present = [k for k in keys if k in fingerprint_]
    leaves = [k.rsplit(".", 1)[-1] for k in present]
    names = [leaf if leaves.count(leaf) == 1 else key for key, leaf in zip(present, leaves, strict=True)]
    return ", ".join(f"{n}={fingerprint_[k]}" for n, k in zip(names, present, strict=True))


@dataclass
class Row:
    method: str
    k: int
    model: str
    extras: str = ""
    cells: dict[str, Moments] = field(default_factory=dict)
    runs: dict[str, list[RunRecord]] = field(default_factory=dict)  # env -> runs
    published: list[Published] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.method} K={self.k} {self.model}" + (f" [{self.extras}]" if self.extras else "")

    def counts(self, env: str) -> str:
        """'3 runs x 3 eval seeds' style count of what a row's numbers of one environment pool."""
        runs = self.runs.get(env, [])
        evaluated = [r for r in runs if any(k.startswith(env) for k in r.columns)]
        if not evaluated:
            return "-"
        seeds = sorted({m.n for r in evaluated for k, m in r.columns.items() if k.startswith(env)})
        return f"{len(evaluated)}x{'/'.join(map(str, seeds))}"

    def curves(self, env: str) -> list[list[tuple[int, float]]]:
        return [r.curve for r in self.runs.get(env, []) if r.curve]


def build_rows(records: list[RunRecord], match_model: str | None = None) -> tuple[list[Row], list[str]]:
    """Group runs into rows and pool their evaluations; returns (rows, warnings)."""
    warnings: list[str] = []
    groups: dict[tuple[str, str], list[RunRecord]] = defaultdict(list)
    prints: dict[tuple[str, str], dict[str, Any]] = {}
    for record in records:
        fp = fingerprint(record.config)
        key = (record.env, json.dumps(fp, sort_keys=True, default=str))
        groups[key].append(record)
        prints[key] = fp
        if not record.columns:
            warnings.append(f"{record.source}: no evaluation of its newest checkpoint ({record.checkpoint or 'none'})")
    # Groups of one method x K x model that differ in other settings are labelled by those settings: the keys
    # that differ between groups of the same environment; a group of the other environment is labelled by its
    # values of the same keys, so that it joins the row with the same settings.
    by_identity: dict[tuple[str, int, str], dict[str, list[tuple[str, str]]]] = defaultdict(lambda: defaultdict(list))
    for key, members in groups.items():
        by_identity[identity(members[0].config)][key[0]].append(key)
    rows: dict[tuple[str, int, str, str], Row] = {}
    for (method, k, model), by_env in by_identity.items():
        differing = sorted(set().union(*(differing_keys([prints[g] for g in keys]) for keys in by_env.values())))
        for env, key in ((env, key) for env, keys in by_env.items() for key in keys):
            extras = extras_label(prints[key], differing)
            row = rows.setdefault((method, k, model, extras), Row(method, k, model, extras))
            members = groups[key]
            row.runs.setdefault(env, []).extend(members)
            seeds = [m.config.get("trainer", {}).get("seed") for m in members]
            if len(set(map(str, seeds))) < len(seeds):
                warnings.append(f"{row.label} ({env}): several runs share a training seed ({seeds})")
    for row in rows.values():
        for env, members in row.runs.items():
            column_keys = sorted({c for m in members for c in m.columns if c.split("/")[0].split("-")[0] == env})
            for column in column_keys:
                row.cells[column] = Moments.pool([m.columns[column] for m in members if column in m.columns])
        row.published = published_for(row.method, match_model or row.model, row.k)
    ordered = sorted(
        rows.values(),
        key=lambda r: (
            r.model,
            r.k,
            METHOD_ORDER.index(r.method) if r.method in METHOD_ORDER else len(METHOD_ORDER),
            r.method,
            r.extras,
        ),
    )
    return ordered, warnings


# ---------------------------------------------------------------------------------------------- output
def shown_columns(rows: list[Row]) -> list[tuple[str, str]]:
    """Table-1 columns that have a number in some row (ours or published)."""
    used = {c for r in rows for c in r.cells} | {c for r in rows for p in r.published for c in p.values}
    return [(key, header) for key, header in COLUMNS if key in used]


def _ours(m: Moments | None) -> str:
    return f"{m.mean:.1f} ± {m.std:.1f}" if m else ""


def table_rows(rows: list[Row]) -> list[dict[str, Any]]:
    """The lines of the comparison: for each row, ours, then each published entry and ours minus it."""
    lines: list[dict[str, Any]] = []
    for row in rows:
        base = {"method": row.method, "K": row.k, "model": row.model, "setting": row.extras}
        runs = {env: row.counts(env) for env in ("alfworld", "webshop") if env in row.runs}
        lines.append(
            {
                **base,
                "row": "ours",
                "source": "ours",
                "runs": "; ".join(f"{e} {c}" for e, c in runs.items()),
                "cells": dict(row.cells),
            }
        )
        for pub in row.published:
            k_note = "" if pub.k is not None else " (K not stated)"
            lines.append(
                {**base, "row": "published", "source": pub.source + k_note, "runs": pub.note, "cells": dict(pub.values)}
            )
            diff = {c: row.cells[c].mean - v for c, v in pub.values.items() if c in row.cells}
            if diff:
                lines.append({**base, "row": "diff", "source": f"ours - {pub.source}", "runs": "", "cells": diff})
    return lines


def cell_text(line: dict[str, Any], key: str) -> str:
    value = line["cells"].get(key)
    if value is None:
        return ""
    if line["row"] == "ours":
        return _ours(value)
    if line["row"] == "diff":
        return f"{value:+.1f}"
    return str(value)


NOTE = (
    "Success in %, WebShop score x 100. ours: mean ± std (ddof 1) pooled over all (training seed, evaluation "
    "seed) pairs of the row's runs, evaluated at temperature 0.4 on the newest checkpoint; `runs` gives "
    "training runs x evaluation seeds per run. published: means of 3 seeds as reported; diff: ours minus "
    "published (percentage points). ALFWorld columns: in-distribution split (valid_seen) unless marked OOD "
    "(valid_unseen); WebShop: test split."
)


def no_published_reason(rows: list[Row]) -> str | None:
    """Why the comparison shows no published numbers (no row's model and method match a published entry),
    or None when some row has them."""
    if not rows or any(r.published for r in rows):
        return None
    from hgpo_cli.eval.published import PUBLISHED

    models = sorted({r.model for r in rows})
    published = sorted({p.model for p in PUBLISHED})
    return (
        f"No published numbers shown: the models trained here ({', '.join(models)}) are not among the published "
        f"ones ({', '.join(published)}). `hgpo compare --match-model {published[0]}` puts that model's published "
        "numbers beside every row, as a reference point."
    )


def markdown(
    rows: list[Row], warnings: list[str] | None = None, sources: list[str] | None = None, match_model: str | None = None
) -> str:
    columns = shown_columns(rows)
    header = ["method", "K", "model", "setting", "source", *[h for _, h in columns], "runs"]
    out = ["# Comparison with the published numbers", ""]
    reason = no_published_reason(rows)
    if reason:
        out += [reason, ""]
    out += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for line in table_rows(rows):
        first = line["row"] == "ours"
        lead = [line["method"], str(line["K"]), line["model"], line["setting"]] if first else ["", "", "", ""]
        source = f"**{line['source']}**" if first else line["source"]
        cells = [cell_text(line, key) for key, _ in columns]
        out.append("| " + " | ".join([*lead, source, *cells, line["runs"]]) + " |")
    out += ["", NOTE]
    if match_model:
        out += [
            "",
            f"The published numbers shown are those of {match_model} (--match-model), whatever model a row "
            "trained: a reference point, not a like-for-like comparison.",
        ]
    out += ["", "Sources: " + "; ".join(f"{k}: {v}" for k, v in SOURCES.items()) + "."]
    if sources:
        out += ["", "Runs:", *[f"- {s}" for s in sources]]
    if warnings:
        out += ["", "Warnings:", *[f"- {w}" for w in warnings]]
    return "\n".join(out) + "\n"


def csv_text(rows: list[Row]) -> str:
    """One line per table line; ours carries <column>, <column>_std and <column>_n."""
    buffer = io.StringIO()
    fields = ["method", "K", "model", "setting", "row", "source", "runs"]
    main = [key for key, _ in COLUMNS]
    for key in main + sorted({c for r in rows for c in r.cells} - set(main)):  # e.g. OOD per task type
        fields += [key, f"{key}_std", f"{key}_n"]
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for line in table_rows(rows):
        out = {k: line[k] for k in ("method", "K", "model", "setting", "row", "source", "runs")}
        for key, value in line["cells"].items():
            if isinstance(value, Moments):
                out[key], out[f"{key}_std"], out[f"{key}_n"] = f"{value.mean:.4f}", f"{value.std:.4f}", value.n
            else:
                out[key] = f"{value:.4f}"
        writer.writerow(out)
    return buffer.getvalue()


def write_comparison(
    rows: list[Row],
    out_dir: Path,
    warnings: list[str],
    sources: list[str],
    plots: bool = True,
    match_model: str | None = None,
) -> dict[str, Any]:
    """comparison.md, comparison.csv and the PNG plots in `out_dir`; returns their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Any] = {"markdown": out_dir / "comparison.md", "csv": out_dir / "comparison.csv", "plots": []}
    paths["markdown"].write_text(markdown(rows, warnings, sources, match_model))
    paths["csv"].write_text(csv_text(rows))
    if plots:
        from hgpo_cli.eval.plots import write_plots

        paths["plots"] = write_plots(rows, out_dir)
    return paths


def compare(
    run_dirs: list[str],
    *,
    wandb_project: str | None = None,
    wandb_entity: str | None = None,
    out_dir: Path,
    match_model: str | None = None,
    plots: bool = True,
) -> dict[str, Any]:
    """The whole job: gather runs (folders and/or a W&B project), build rows, write the outputs."""
    records: list[RunRecord] = [record_from_run_dir(p) for p in find_run_dirs(list(run_dirs))]
    if wandb_project:
        records += records_from_wandb(wandb_project, wandb_entity)
    if not records:
        raise UserError("no runs found (give run folders, folders holding them, or --wandb-project)")
    rows, warnings = build_rows(records, match_model)
    paths = write_comparison(rows, out_dir, warnings, [r.source for r in records], plots, match_model)
    return {"rows": rows, "warnings": warnings, "paths": paths, "records": records}
