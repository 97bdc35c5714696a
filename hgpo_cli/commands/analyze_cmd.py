"""`hgpo analyze bias|learn|groups|envs`: the advantage lab (estimators against exact advantages)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

ENV_HELP = "Environment spec NAME or NAME:key=value,... (hgpo analyze envs); repeatable."
OUT_HELP = "Write the JSON, a Markdown table and the PNG plot(s) into this folder."


def _ints(text: str, what: str) -> tuple[int, ...]:
    from hgpo_cli.errors import UserError

    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise UserError(f"{what} must be comma-separated integers, got {text!r}") from None


def _floats(text: str, what: str) -> tuple[float, ...]:
    from hgpo_cli.errors import UserError

    try:
        return tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise UserError(f"{what} must be comma-separated numbers, got {text!r}") from None


def _provenance(seconds: float) -> dict[str, str | float]:
    """The command line, wall time, date and git commit of this run."""
    import datetime
    import shlex
    import subprocess
    import sys

    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5, check=False
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    argv = ["hgpo", *sys.argv[1:]]
    return {
        "command": " ".join(shlex.quote(a) for a in argv),
        "seconds": round(seconds, 1),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "git_commit": commit,
    }


def _emit(
    result: dict[str, Any],
    tables: list[Any],
    as_json: bool,
    out: str | None,
    name: str,
    plot: Callable[[Path], list[Path]],
) -> None:
    """Print (rich tables or JSON) and write DIR/{name}.json, DIR/table.md and the plots."""
    import json

    from hgpo_cli.analyze.report import jsonable, print_rich, to_markdown

    text = json.dumps(jsonable(result), indent=1, allow_nan=False)
    if as_json:
        typer.echo(text)
    else:
        print_rich(tables)
    if out:
        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{name}.json").write_text(text + "\n")
        prov = result["provenance"]
        pre = (
            f"# hgpo analyze {name}\n\nCommand: `{prov['command']}`  \n"
            f"Wall time: {prov['seconds']} s; {prov['date']}; commit {prov['git_commit'] or 'unknown'}.\n"
        )
        (folder / "table.md").write_text(to_markdown(tables, pre))
        for path in plot(folder):
            if not as_json:
                typer.echo(f"wrote {path}")


def register(app: typer.Typer) -> None:
    analyze_app = typer.Typer(
        help="Advantage lab: estimators against exact advantages on small POMDPs, learning curves, "
        "and the group sizes of real runs.",
        no_args_is_help=True,
    )

    @analyze_app.command("bias")
    def bias(
        env: list[str] = typer.Option(None, "--env", help=ENV_HELP + " Default: keydoor."),
        policy: list[str] = typer.Option(
            None,
            "--policy",
            help="random | scripted[:eps=0.5] | softmax[:scale=1,seed=0]; repeatable. Default: scripted.",
        ),
        policy_history: int = typer.Option(2, help="K of the policy's window: previous observations it sees."),
        group_size: int = typer.Option(8, help="Rollouts per group (N)."),
        samples: int = typer.Option(500, help="Groups drawn per task."),
        history_lengths: str = typer.Option(
            "0,1,2,3,4", help="HGPO K values of the grid (K=0: GiGPO's step part alone, a diagnostic)."
        ),
        alphas: str = typer.Option("0,1,2", help="HGPO alpha values of the grid."),
        norms: str = typer.Option("mean_norm,mean_std_norm", help="Norms of the grid."),
        estimator: list[str] = typer.Option(
            None, "--estimator", help="Measure only these: NAME[:key=value,...]; repeatable."
        ),
        target: str = typer.Option("history", help="Target shown in the tables: history or window."),
        gamma: float = typer.Option(0.95, help="Discount of the step returns and of the exact values."),
        seed: int = typer.Option(0, help="Random seed of the sampler."),
        as_json: bool = typer.Option(False, "--json", help="Print the full JSON instead of tables."),
        out: str = typer.Option(None, "--out", help=OUT_HELP),
    ) -> None:
        """Every estimator against the exact advantage: bias, variance, MSE, correlation, wrong signs."""
        import time

        from hgpo_cli.analyze.bias import TARGETS, BiasConfig, run_bias
        from hgpo_cli.analyze.report import bias_tables
        from hgpo_cli.errors import UserError

        if target not in TARGETS:
            raise UserError(f"--target must be one of {', '.join(TARGETS)}, got {target!r}")
        t0 = time.perf_counter()
        cfg = BiasConfig(
            envs=list(env or ["keydoor"]),
            policies=list(policy or ["scripted"]),
            policy_history=policy_history,
            group_size=group_size,
            samples=samples,
            gamma=gamma,
            seed=seed,
            history_lengths=_ints(history_lengths, "--history-lengths"),
            alphas=_floats(alphas, "--alphas"),
            norms=tuple(n.strip() for n in norms.split(",") if n.strip()),
            estimators=list(estimator or []),
        )
        result = run_bias(cfg)
        result["provenance"] = _provenance(time.perf_counter() - t0)

        def plot(folder: Path) -> list[Path]:
            from hgpo_cli.analyze.plots import plot_bias

            paths = []
            for run in result["runs"]:
                stem = f"bias_{run['env']}_{run['policy']}".replace(":", "-").replace(",", "-").replace("=", "")
                paths.append(folder / f"{stem}.png")
                plot_bias(run, paths[-1], target)
            return paths

        _emit(result, bias_tables(result, target), as_json, out, "bias", plot)

    @analyze_app.command("learn")
    def learn(
        env: str = typer.Option("keydoor", help="Environment spec NAME or NAME:key=value,..."),
        policy_history: int = typer.Option(2, help="K of the softmax table's window."),
        estimator: list[str] = typer.Option(
            None,
            "--estimator",
            help="NAME[:key=value,...]; repeatable. Default: grpo, rloo, gigpo, hgpo K=2, hgpo K=4.",
        ),
        seeds: int = typer.Option(5, help="Seeds 0..seeds-1 per estimator."),
        iterations: int = typer.Option(40, help="Training iterations."),
        groups: int = typer.Option(4, help="Groups per iteration (tasks in turn)."),
        group_size: int = typer.Option(8, help="Rollouts per group (N)."),
        norm: str = typer.Option("mean_std_norm", help="Norm for estimators whose spec does not set one."),
        lr: float = typer.Option(0.1, help="AdamW learning rate of the logits."),
        minibatches: int = typer.Option(4, help="PPO minibatches per iteration (one epoch)."),
        gamma: float = typer.Option(0.95, help="Discount of the step returns."),
        save_rollouts: str = typer.Option(
            None,
            help="Save seed 0's rollouts of each estimator as a run folder DIR/<estimator>/ "
            "(rollouts/iter_XXXXXX.jsonl + config.yaml), for hgpo analyze groups.",
        ),
        as_json: bool = typer.Option(False, "--json", help="Print the full JSON instead of the table."),
        out: str = typer.Option(None, "--out", help=OUT_HELP),
    ) -> None:
        """Train softmax policies with each estimator through the PPO loss; success vs iteration."""
        import time

        from hgpo_cli.analyze.learn import DEFAULT_ESTIMATORS, LearnConfig, run_learn
        from hgpo_cli.analyze.report import learn_tables

        t0 = time.perf_counter()
        cfg = LearnConfig(
            env=env,
            policy_history=policy_history,
            estimators=list(estimator or DEFAULT_ESTIMATORS),
            seeds=list(range(seeds)),
            iterations=iterations,
            groups_per_iteration=groups,
            group_size=group_size,
            gamma=gamma,
            norm=norm,
            lr=lr,
            minibatches=minibatches,
        )
        result = run_learn(cfg, Path(save_rollouts) if save_rollouts else None)
        result["provenance"] = _provenance(time.perf_counter() - t0)

        def plot(folder: Path) -> list[Path]:
            from hgpo_cli.analyze.plots import plot_learn

            plot_learn(result, folder / "learn.png")
            return [folder / "learn.png"]

        _emit(result, learn_tables(result), as_json, out, "learn", plot)

    @analyze_app.command("groups")
    def groups_(
        run_dir: str = typer.Argument(..., help="A training run folder with rollouts/iter_XXXXXX.jsonl."),
        levels: int = typer.Option(None, help="Highest level K (default: config.yaml's, else 4)."),
        as_json: bool = typer.Option(False, "--json", help="Print the full JSON instead of the table."),
        out: str = typer.Option(None, "--out", help=OUT_HELP),
    ) -> None:
        """Group sizes per hierarchy level and iteration in the rollouts a training run saved."""
        import time

        from hgpo_cli.analyze.groups import analyze_groups
        from hgpo_cli.analyze.report import groups_tables

        t0 = time.perf_counter()
        result = analyze_groups(Path(run_dir), levels)
        result["provenance"] = _provenance(time.perf_counter() - t0)

        def plot(folder: Path) -> list[Path]:
            from hgpo_cli.analyze.plots import plot_groups

            plot_groups(result, folder / "groups.png")
            return [folder / "groups.png"]

        _emit(result, groups_tables(result), as_json, out, "groups", plot)

    @analyze_app.command("envs")
    def envs() -> None:
        """List the environment family with its size and aliasing."""
        from hgpo_cli.analyze.pomdp import ENVS, make_env

        for name, (_, _, doc) in ENVS.items():
            env = make_env(name)
            a = env.compile().aliasing()
            typer.echo(
                f"{name:14s} {a['states']:3d} states {a['observations']:3d} texts "
                f"{a['shared_share']:.2f} aliased  horizon {env.horizon:2d}  {doc}"
            )

    app.add_typer(analyze_app, name="analyze")
