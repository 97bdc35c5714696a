"""`hgpo compare RUN_DIR... | --wandb-project P`: evaluated runs in Table-1 layout beside the published numbers."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command("compare")
    def compare(
        run_dirs: list[str] = typer.Argument(None, help="Run folders, or folders searched for run folders."),
        wandb_project: str = typer.Option(None, "--wandb-project", help="Also gather the runs of this W&B project."),
        wandb_entity: str = typer.Option(None, "--wandb-entity", help="W&B entity of --wandb-project."),
        out: Path = typer.Option(Path("results/compare"), "--out", help="Folder for comparison.md/.csv and PNGs."),
        match_model: str = typer.Option(
            None,
            "--match-model",
            help="Put the published numbers of this model (e.g. Qwen2.5-1.5B-Instruct) "
            "beside every row, whatever model it trained (for small-scale runs).",
        ),
        plots: bool = typer.Option(True, "--plots/--no-plots", help="Write the PNG plots."),
    ) -> None:
        """Evaluated runs in the papers' Table-1 layout, beside the published numbers.

        Rows: method x K x model; columns: the six ALFWorld task types, All, WebShop score and success;
        mean ± std over seeds, the published numbers and the differences. Writes markdown, CSV and PNG plots
        (learning curves, bars per task type).
        """
        from rich.console import Console
        from rich.markup import escape
        from rich.table import Table

        from hgpo_cli.errors import UserError
        from hgpo_cli.eval.compare import cell_text, no_published_reason, shown_columns, table_rows
        from hgpo_cli.eval.compare import compare as run_compare

        if not run_dirs and not wandb_project:
            raise UserError("give run folders or --wandb-project")
        result = run_compare(
            list(run_dirs or []),
            wandb_project=wandb_project,
            wandb_entity=wandb_entity,
            out_dir=out,
            match_model=match_model,
            plots=plots,
        )
        rows = result["rows"]
        columns = shown_columns(rows)
        reason = no_published_reason(rows)
        caption = escape(reason) if reason else None
        table = Table(title="hgpo compare (success %, mean ± std over seeds)", header_style="bold", caption=caption)
        lines = table_rows(rows)
        widest = {"method": max((len(str(line["method"])) for line in lines), default=6), "K": 1}
        for name in ("method", "K", "model", "source", *[h for _, h in columns], "runs"):
            table.add_column(
                name,
                justify="right" if name not in ("method", "model", "source", "runs") else "left",
                min_width=widest.get(name),  # short labels never cut at 80 columns; the others wrap
            )
        for i, line in enumerate(lines):
            ours = line["row"] == "ours"
            lead = [
                line["method"],
                str(line["K"]),
                escape(line["model"] + (f" [{line['setting']}]" if line["setting"] else "")),
            ]
            last = i + 1 == len(lines) or lines[i + 1]["row"] == "ours"
            table.add_row(
                *(lead if ours else ["", "", ""]),
                line["source"],
                *[cell_text(line, key) for key, _ in columns],
                line["runs"],
                style="bold" if ours else "dim" if line["row"] == "published" else None,
                end_section=last,
            )
        console = Console()
        console.print(table)
        err = Console(stderr=True)
        for warning in result["warnings"]:
            err.print(f"[yellow]hgpo warning[/] {warning}")
        paths = result["paths"]
        err.print(
            f"[bold cyan]hgpo[/] wrote {paths['markdown']}, {paths['csv']}" + "".join(f", {p}" for p in paths["plots"])
        )
