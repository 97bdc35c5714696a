"""`hgpo compare RUN_DIR... | --wandb-project P`: evaluated runs in Table-1 layout beside the published numbers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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

        from hgpo_cli.errors import UserError
        from hgpo_cli.eval.compare import compare as run_compare
        from hgpo_cli.eval.compare import no_published_reason, shown_columns, table_rows

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
        console = Console()
        lines = table_rows(rows)
        title = "hgpo compare (success %, mean ± std over seeds)"
        if console.width < WIDE:
            for table in narrow_tables(lines, columns):
                console.print(table)
            if reason:
                console.print(escape(reason))
        else:
            console.print(wide_table(lines, columns, title, escape(reason) if reason else None))
        err = Console(stderr=True)
        for warning in result["warnings"]:
            err.print(f"[yellow]hgpo warning[/] {warning}")
        paths = result["paths"]
        err.print(
            f"[bold cyan]hgpo[/] wrote {paths['markdown']}, {paths['csv']}" + "".join(f", {p}" for p in paths["plots"])
        )


WIDE = 160  # narrower consoles get one table per compared row (the wide table has up to 14 columns)


def wide_table(lines: list[dict[str, Any]], columns: list[tuple[str, str]], title: str, caption: str | None) -> Any:
    """Every compared row and its published lines in one table (Table-1 layout)."""
    from rich.markup import escape
    from rich.table import Table

    from hgpo_cli.eval.compare import cell_text

    table = Table(title=title, header_style="bold", caption=caption)
    for name in ("method", "K", "model", "source", *[h for _, h in columns], "runs"):
        table.add_column(name, justify="right" if name not in ("method", "model", "source", "runs") else "left")
    for i, line in enumerate(lines):
        ours = line["row"] == "ours"
        model = line["model"] + (f" [{line['setting']}]" if line["setting"] else "")
        lead = [line["method"], str(line["K"]), escape(model)]
        last = i + 1 == len(lines) or lines[i + 1]["row"] == "ours"
        table.add_row(
            *(lead if ours else ["", "", ""]),
            escape(line["source"]),
            *[cell_text(line, key) for key, _ in columns],
            escape(line["runs"]),
            style="bold" if ours else "dim" if line["row"] == "published" else None,
            end_section=last,
        )
    return table


def narrow_tables(lines: list[dict[str, Any]], columns: list[tuple[str, str]]) -> list[Any]:
    """One table per compared row, transposed: the Table-1 columns down the side, ours and each published
    line (and ours minus it) across, so that 80 characters hold it without cutting a name."""
    from rich.markup import escape
    from rich.table import Table

    from hgpo_cli.eval.compare import cell_text

    groups: list[list[dict[str, Any]]] = []
    for line in lines:
        if line["row"] == "ours" or not groups:
            groups.append([])
        groups[-1].append(line)
    tables = []
    for group in groups:
        head = group[0]
        setting = f" [{head['setting']}]" if head["setting"] else ""
        title = f"{head['method']} K={head['K']} {head['model']}{setting} (success %, mean ± std over seeds)"
        table = Table(title=escape(title), header_style="bold")
        table.add_column("column", no_wrap=True)
        for line in group:
            table.add_column(escape(line["source"]), justify="right")
        for key, header in columns:
            cells = [cell_text(line, key) for line in group]
            if any(cells):
                table.add_row(header, *cells)
        table.add_row("runs", *[escape(line["runs"]) for line in group], style="dim", end_section=True)
        tables.append(table)
    return tables
