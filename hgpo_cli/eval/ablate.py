"""`hgpo ablate`: expand a grid of config overrides, train then evaluate every point, resumably.

A grid maps dotted config keys to values (from `--grid key=v1,v2` options and/or YAML grid files, the
shipped ones in `hgpo_cli/ablations/`); the points are the cartesian product, in the order given.
Every point gets its own run folder ROOT/<point name>, where ROOT is runs/ablate-<preset>-<hash> (the
hash of the preset name and the fixed overrides, so that extending a grid reuses the points already done)
or `--out-root`. A point is done when its final checkpoint (iteration trainer.iterations) has an
evaluation of every requested split with the requested seeds; a trained but unevaluated point is only
evaluated, a partly trained one resumes from its latest checkpoint (trainer.resume=auto).

Points run one after another in this process, or `parallel` at a time as Ray tasks, each of which starts
the point's own actors (environment workers, rollout engine, policy workers) in the same Ray cluster.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf

from hgpo_cli.errors import UserError
from hgpo_cli.eval.compare import Moments
from hgpo_cli.eval.runs import eval_file_for, read_eval
from hgpo_cli.train.checkpoint import checkpoint_dir, latest_checkpoint

SEED_KEY = "trainer.seed"


# ---------------------------------------------------------------------------------------------- grids
@dataclass
class GridSpec:
    grid: dict[str, list[str]] = field(default_factory=dict)  # dotted key -> override values (text), ordered
    overrides: list[str] = field(default_factory=list)  # fixed key=value overrides the file adds
    description: str = ""


def _grids_dir() -> Path:
    return Path(str(resources.files("hgpo_cli") / "ablations"))


def shipped_grids() -> dict[str, str]:
    """{name: description} of the grid files shipped in hgpo_cli/ablations/."""
    return {p.stem: load_grid_file(str(p)).description for p in sorted(_grids_dir().glob("*.yaml"))}


def grid_file_path(spec: str) -> Path:
    """A shipped grid name (alpha, k, ...) or a path to a YAML grid file."""
    path = Path(spec)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise UserError(f"grid file not found: {spec}")
        return path
    shipped = _grids_dir() / f"{spec}.yaml"
    if not shipped.is_file():
        names = ", ".join(sorted(p.stem for p in _grids_dir().glob("*.yaml")))
        raise UserError(f"unknown grid '{spec}' (shipped: {names}; or a .yaml path)")
    return shipped


def override_text(value: Any) -> str:
    """A YAML value as the text of a key=value override."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(override_text(v) for v in value) + "]"
    if isinstance(value, dict):
        raise UserError(f"grid value {value!r}: a mapping cannot be a grid value (give dotted keys)")
    return str(value)


def load_grid_file(spec: str) -> GridSpec:
    """Read a grid file: `grid: {key: [values]}`, optional `overrides: [key=value]` and `description`."""
    path = grid_file_path(spec)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise UserError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None
    if not isinstance(data, dict) or not isinstance(data.get("grid"), dict) or not data["grid"]:
        raise UserError(f"{path}: expected a mapping with a non-empty 'grid: {{key: [values]}}'")
    unknown = set(data) - {"grid", "overrides", "description"}
    if unknown:
        raise UserError(f"{path}: unknown top-level key(s) {', '.join(sorted(unknown))} (grid, overrides, description)")
    grid = {}
    for key, values in data["grid"].items():
        values = values if isinstance(values, list) else [values]
        if not values:
            raise UserError(f"{path}: grid key {key} has no values")
        grid[str(key)] = _unique([override_text(v) for v in values])
    overrides = data.get("overrides") or []
    if not isinstance(overrides, list) or not all(isinstance(o, str) and "=" in o for o in overrides):
        raise UserError(f"{path}: 'overrides' must be a list of key=value strings")
    return GridSpec(grid, list(overrides), str(data.get("description") or "").strip())


def parse_grid_option(text: str) -> tuple[str, list[str]]:
    """'algorithm.hgpo.alpha=0,1,2' -> ('algorithm.hgpo.alpha', ['0', '1', '2'])."""
    key, sep, values = text.partition("=")
    parts = [v.strip() for v in values.split(",") if v.strip()]
    if not sep or not key.strip() or not parts:
        raise UserError(f"--grid {text!r}: expected key=value1,value2 (e.g. algorithm.hgpo.alpha=0,1,2)")
    return key.strip(), _unique(parts)


def _unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


def combine(options: list[str], files: list[str]) -> GridSpec:
    """One grid from grid files (in order) then --grid options (a key given again replaces its values)."""
    spec = GridSpec()
    for name in files:
        part = load_grid_file(name)
        spec.grid.update(part.grid)
        spec.overrides += part.overrides
        spec.description = "; ".join(d for d in (spec.description, part.description) if d)
    for text in options:
        key, values = parse_grid_option(text)
        spec.grid[key] = values
    if not spec.grid:
        raise UserError("no grid: give --grid key=v1,v2 and/or --grid-file NAME")
    return spec


def expand(grid: dict[str, list[str]]) -> list[dict[str, str]]:
    """The cartesian product of a grid, first key slowest: [{key: value}, ...]."""
    keys = list(grid)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(grid[k] for k in keys))]


def short_keys(keys: list[str]) -> dict[str, str]:
    """The last component of each dotted key, or the whole key where two keys share it."""
    leaves = [k.rsplit(".", 1)[-1] for k in keys]
    return {k: leaf if leaves.count(leaf) == 1 else k for k, leaf in zip(keys, leaves, strict=True)}


def point_name(point: dict[str, str]) -> str:
    """'history_length=2,alpha=0,seed=1': the folder and experiment name of a grid point."""
    names = short_keys(list(point))
    return ",".join(f"{names[k]}={re.sub(r'[^A-Za-z0-9._+-]', '_', v)}" for k, v in point.items())


def preset_label(preset: str | None) -> str:
    text = preset or "default"
    return Path(text).stem if text.endswith((".yaml", ".yml")) else text


def ablation_root(preset: str | None, overrides: list[str], out_root: str | Path | None = None) -> Path:
    """runs/ablate-<preset>-<hash of preset and fixed overrides>, or `out_root`."""
    if out_root:
        return Path(out_root)
    digest = hashlib.sha1(
        json.dumps({"preset": preset or "default", "overrides": sorted(overrides)}).encode()
    ).hexdigest()[:8]
    return Path("runs") / f"ablate-{preset_label(preset)}-{digest}"


# ---------------------------------------------------------------------------------------------- planning
@dataclass
class Point:
    values: dict[str, str]
    name: str
    run_dir: Path
    cfg: DictConfig

    @property
    def final_checkpoint(self) -> Path:
        return checkpoint_dir(self.run_dir, int(self.cfg.trainer.iterations))

    @property
    def group(self) -> tuple[tuple[str, str], ...]:
        """The point's values without the training seed: points of one group are seeds of one setting."""
        return tuple((k, v) for k, v in self.values.items() if k != SEED_KEY)


def plan(
    preset: str | None, overrides: list[str], spec: GridSpec, out_root: str | Path | None = None
) -> tuple[Path, list[Point]]:
    """The root folder and every point with its validated config (a typo fails here, not at hour 10)."""
    from hgpo_cli.config import load_config

    fixed = list(spec.overrides) + list(overrides)
    fixed_keys = {o.split("=", 1)[0] for o in fixed}
    clash = sorted(fixed_keys & set(spec.grid))
    if clash:
        raise UserError(f"{', '.join(clash)}: given both as a fixed override and as a grid key")
    root = ablation_root(preset, fixed, out_root).resolve()
    record = root / "ablate.json"
    if out_root and record.is_file():
        previous = json.loads(record.read_text())
        if previous.get("preset") != (preset or "default") or sorted(previous.get("overrides", [])) != sorted(fixed):
            raise UserError(
                f"{root} holds an ablation of preset {previous.get('preset')} with overrides "
                f"{previous.get('overrides')}; choose another --out-root"
            )
    points = []
    for values in expand(spec.grid):
        name = point_name(values)
        run_dir = root / name
        extra = [f"{k}={v}" for k, v in values.items()] + [
            f"trainer.output_dir={run_dir}",
            f"trainer.experiment_name={root.name}/{name}",
            "trainer.eval_after=false",  # the ablation evaluates with its own seeds and splits
        ]
        try:
            cfg = load_config(preset, fixed + extra)
        except UserError as err:
            raise UserError(f"grid point {name}: {err}") from None
        points.append(Point(values, name, run_dir, cfg))
    return root, points


def write_record(root: Path, preset: str | None, spec: GridSpec, overrides: list[str]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "ablate.json").write_text(
        json.dumps(
            {
                "preset": preset or "default",
                "overrides": list(spec.overrides) + list(overrides),
                "grid": spec.grid,
                "description": spec.description,
            },
            indent=2,
        )
    )


def point_status(point: Point, splits: list[str], seeds: tuple[int, ...]) -> str:
    """done (final checkpoint evaluated on every split with these seeds), trained, partial or new."""
    final = point.final_checkpoint
    if (final / "state.json").is_file():
        for split in splits:
            path = eval_file_for(final, point.cfg.env.name, split)
            if path is None or list(read_eval(path).get("seeds", [])) != list(seeds):
                return "trained"
        return "done"
    return "partial" if latest_checkpoint(point.run_dir) is not None else "new"


def interrupted_note(points: list[Point], splits: list[str], seeds: tuple[int, ...], current: Point) -> str:
    """What an interrupted `hgpo ablate` leaves: points done, the current point's newest checkpoint, and how
    to go on (the same command skips what is done and resumes the rest)."""
    done = [p for p in points if point_status(p, splits, seeds) == "done"]
    newest = latest_checkpoint(current.run_dir)
    if (current.final_checkpoint / "state.json").is_file():
        where = f"{current.name} is trained ({current.final_checkpoint}); its unfinished evaluation is not saved"
    elif newest is not None:
        where = f"{current.name} is saved at {newest}"
    else:
        where = f"{current.name} had no checkpoint yet"
    return (
        f"interrupted: {len(done)}/{len(points)} point(s) done and evaluated; {where}; "
        "the same `hgpo ablate` command again skips what is done and resumes the rest"
    )


# ---------------------------------------------------------------------------------------------- running
def run_point(
    cfg: DictConfig,
    splits: list[str],
    seeds: tuple[int, ...],
    episodes: int | None,
    train_ui: Any = None,
    eval_ui: Any = None,
) -> dict[str, str]:
    """Train (or resume) the point to its final checkpoint, then evaluate it; returns {split: eval json}."""
    from hgpo_cli.eval.evaluate import evaluate_checkpoint
    from hgpo_cli.train.trainer import train

    final = checkpoint_dir(Path(cfg.trainer.output_dir), int(cfg.trainer.iterations))
    if not (final / "state.json").is_file():
        summary = train(cfg, train_ui)
        if summary.interrupted:
            raise KeyboardInterrupt
        if summary.last_checkpoint is None or Path(summary.last_checkpoint).resolve() != final.resolve():
            raise RuntimeError(f"training ended without the final checkpoint {final}")
    paths = {}
    for split in splits:
        report = evaluate_checkpoint(cfg, final / "policy", split=split, seeds=seeds, episodes=episodes, ui=eval_ui)
        paths[split] = report["paths"]["json"]
    return paths


def _point_task(config: dict[str, Any], splits: list[str], seeds: list[int], episodes: int | None) -> dict:
    """Body of the Ray task of one point (the config travels as a plain dict)."""
    return run_point(OmegaConf.create(config), splits, tuple(seeds), episodes)


def point_resources(cfg: DictConfig) -> tuple[float, float]:
    """(CPUs, GPUs) the actors of one point reserve in Ray (`hgpo_cli.cluster.run_needs`: env workers,
    engine, policy workers and, for PPO, the critic; GPUs only for a CUDA run)."""
    from hgpo_cli.cluster import run_needs

    gpus = run_needs(cfg, "cuda").gpus if cfg.trainer.device != "cpu" else 0.0
    return float(run_needs(cfg, "cpu").cpus), float(gpus)


def start_ray(points: list[Point]) -> tuple[float, float]:
    """Join or start Ray once for all the points: a local Ray gets the CPUs of the hungriest point (a
    later point that needs more than the first, PPO's critic after HGPO, would otherwise wait for ever
    in the Ray the first point started). Returns that (CPUs, GPUs) need."""
    from hgpo_cli.distributed import init_ray

    first = points[0].cfg
    needs = [point_resources(p.cfg) for p in points]
    need = (max(n[0] for n in needs), max(n[1] for n in needs))
    init_ray(first.ray.address, first.ray.num_cpus, min_cpus=need[0])
    return need


def concurrency(requested: int, cluster: dict[str, float], need: tuple[float, float]) -> int:
    """How many points fit in the cluster at once, at most `requested` and at least 1."""
    cpus, gpus = need
    fits = [int(cluster.get("CPU", 0) // cpus) if cpus > 0 else requested]
    if gpus > 0 and cluster.get("GPU", 0) > 0:
        fits.append(int(cluster["GPU"] // gpus))
    return max(1, min([requested, *fits]))


def run_parallel(
    points: list[Point],
    splits: list[str],
    seeds: tuple[int, ...],
    episodes: int | None,
    parallel: int,
    on_event: Any,
    body: Any = None,
) -> dict[str, BaseException | None]:
    """Run points as Ray tasks, at most as many at once as `parallel` and the cluster allow.

    on_event(kind, point, detail): kind is 'limit' (detail: the concurrency), 'start' or 'end' (detail:
    None or the exception). Returns {point name: None or the exception}. `body(config, splits, seeds,
    episodes)` is what each task runs (default: train then evaluate the point).
    """
    import ray

    need = start_ray(points)
    limit = concurrency(parallel, ray.cluster_resources(), need)
    on_event("limit", None, limit)
    task = ray.remote(num_cpus=0, max_retries=0)(body or _point_task)
    queue = list(points)
    pending: dict[Any, Point] = {}
    outcome: dict[str, BaseException | None] = {}
    while queue or pending:
        while queue and len(pending) < limit:
            point = queue.pop(0)
            config = OmegaConf.to_container(point.cfg, resolve=True)
            pending[task.remote(config, splits, list(seeds), episodes)] = point
            on_event("start", point, None)
        ready, _ = ray.wait(list(pending), num_returns=1)
        for ref in ready:
            point = pending.pop(ref)
            try:
                ray.get(ref)
                outcome[point.name] = None
            except Exception as err:  # noqa: BLE001 - one failed point must not stop the others
                from hgpo_cli.ray_errors import user_error_in

                outcome[point.name] = user_error_in(err) or err  # a user mistake as its one line
            on_event("end", point, outcome[point.name])
    return outcome


# ---------------------------------------------------------------------------------------------- results
@dataclass
class AblationRow:
    setting: dict[str, str]  # grid values without the seed
    split: str
    cells: dict[str, Moments]
    runs: int  # evaluated points (training seeds)
    missing: int  # points of the setting without an evaluation


def results(points: list[Point], splits: list[str]) -> list[AblationRow]:
    """Per setting (grid values without trainer.seed) and split: columns pooled over the setting's training
    seeds x evaluation seeds."""
    groups: dict[tuple, list[Point]] = {}
    for point in points:
        groups.setdefault(point.group, []).append(point)
    rows = []
    for group, members in groups.items():
        for split in splits:
            parts: dict[str, list[Moments]] = {}
            runs = 0
            for point in members:
                path = eval_file_for(point.final_checkpoint, point.cfg.env.name, split)
                if path is None:
                    continue
                runs += 1
                per_seed = read_eval(path)["per_seed"]
                for column in sorted({c for v in per_seed.values() for c in v}):
                    values = [float(v[column]) for v in per_seed.values() if column in v]
                    parts.setdefault(column, []).append(Moments.of(values))
            cells = {c: Moments.pool(ms) for c, ms in parts.items()}
            rows.append(AblationRow(dict(group), split, cells, runs, len(members) - runs))
    return rows


def result_columns(env: str, rows: list[AblationRow]) -> list[str]:
    from hgpo_cli.eval.summary import column_order

    return column_order(env, sorted({c for r in rows for c in r.cells}))


def results_markdown(env: str, rows: list[AblationRow], seeds: tuple[int, ...], title: str) -> str:
    from hgpo_cli.eval.runs import split_label

    keys = list(rows[0].setting) if rows else []
    names = short_keys(keys)
    columns = result_columns(env, rows)
    header = [names[k] for k in keys] + ["split", *columns, "runs"]
    lines = [f"# {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [f"{row.cells[c].mean:.1f} ± {row.cells[c].std:.1f}" if c in row.cells else "" for c in columns]
        runs = f"{row.runs}" + (f" ({row.missing} missing)" if row.missing else "")
        lines.append("| " + " | ".join([row.setting[k] for k in keys] + [split_label(row.split), *cells, runs]) + " |")
    lines += [
        "",
        f"Success in % (WebShop score x 100); mean ± std (ddof 1) pooled over the setting's training "
        f"seeds (runs) x evaluation seeds {', '.join(map(str, seeds))}, final checkpoints.",
    ]
    return "\n".join(lines) + "\n"


def results_csv(env: str, rows: list[AblationRow]) -> str:
    import csv
    import io

    keys = list(rows[0].setting) if rows else []
    columns = result_columns(env, rows)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*keys, "split", *[f"{c}{s}" for c in columns for s in ("", "_std", "_n")], "runs"])
    for row in rows:
        cells = []
        for c in columns:
            m = row.cells.get(c)
            cells += [f"{m.mean:.4f}", f"{m.std:.4f}", m.n] if m else ["", "", ""]
        writer.writerow([*[row.setting[k] for k in keys], row.split, *cells, row.runs])
    return buffer.getvalue()
