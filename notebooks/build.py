"""Build the course notebooks from their plain-Python sources in ``notebooks/src/``.

Each source is a Python file cut into cells by ``# %%`` lines (the "percent" format that
jupytext, VS Code and Spyder read):

    # %% [markdown]            a text cell: every line starts with "# "
    # %%                       a code cell, in both variants
    # %% student               only in the student variant (a starter for an exercise)
    # %% solution              only in the solutions variant (the answer, code)
    # %% [markdown] solution   only in the solutions variant (the answer, text)

From ``src/NAME.py`` it writes ``NAME.ipynb`` (for students: questions, no answers) and
``solutions/NAME.ipynb`` (with the answers), without outputs and with stable cell ids, so a
rebuild of unchanged sources changes no byte and git shows only real edits.

    python notebooks/build.py            # rebuild
    python notebooks/build.py --check    # exit 1 if a committed notebook is out of date
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent
SOURCES = HERE / "src"
MARKER = re.compile(r"^# %%(?P<markdown> \[markdown\])?(?: (?P<variant>student|solution))?\s*$")
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}


@dataclass(frozen=True)
class Cell:
    kind: str  # "markdown" | "code"
    source: str
    variant: str | None  # None: in both variants


def parse(text: str, name: str = "source") -> list[Cell]:
    """The cells of a percent-format source; text before the first marker is not allowed."""
    cells: list[Cell] = []
    kind, variant, lines = None, None, []

    def flush() -> None:
        if kind is None:
            if "".join(lines).strip():
                raise ValueError(f"{name}: text before the first '# %%' line")
            return
        body = "\n".join(lines).strip("\n")
        if kind == "markdown":
            body = "\n".join(_uncomment(line, name) for line in body.splitlines())
        cells.append(Cell(kind, body, variant))

    for line in text.splitlines():
        m = MARKER.match(line)
        if m:
            flush()
            kind, variant, lines = ("markdown" if m["markdown"] else "code"), m["variant"], []
        elif line.startswith("# %%"):
            raise ValueError(f"{name}: unknown cell marker {line!r}")
        else:
            lines.append(line)
    flush()
    return cells


def _uncomment(line: str, name: str) -> str:
    if line == "#":
        return ""
    if not line.startswith("# "):
        raise ValueError(f"{name}: markdown line without '# ': {line!r}")
    return line[2:]


def notebook(cells: list[Cell], variant: str, stem: str) -> nbformat.NotebookNode:
    nb = new_notebook(metadata={"kernelspec": KERNELSPEC, "language_info": {"name": "python"}})
    kept = [c for c in cells if c.variant in (None, variant)]
    for i, c in enumerate(kept):
        make = new_markdown_cell if c.kind == "markdown" else new_code_cell
        # ids from the position, not random: rebuilding unchanged sources gives identical files
        nb.cells.append(make(c.source, id=f"{stem}-{i:03d}"))
    return nb


def build(out_dir: Path = HERE, sources: Path = SOURCES) -> list[Path]:
    """Write the student and solutions notebook of every source; return the paths written."""
    written = []
    for src in sorted(sources.glob("*.py")):
        cells = parse(src.read_text(encoding="utf-8"), src.name)
        for variant, target in (("student", out_dir), ("solution", out_dir / "solutions")):
            target.mkdir(parents=True, exist_ok=True)
            path = target / f"{src.stem}.ipynb"
            nbformat.validate(nb := notebook(cells, variant, src.stem))
            path.write_text(nbformat.writes(nb) + "\n", encoding="utf-8")
            written.append(path)
    return written


def stale(out_dir: Path = HERE) -> list[str]:
    """The committed notebooks that differ from a fresh build (missing ones included)."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh = build(Path(tmp))
        return [str(p.relative_to(tmp)) for p in fresh
                if not (out_dir / p.relative_to(tmp)).is_file()
                or (out_dir / p.relative_to(tmp)).read_bytes() != p.read_bytes()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report notebooks that are out of date")
    args = parser.parse_args(argv)
    if args.check:
        out_of_date = stale()
        for name in out_of_date:
            print(f"out of date: notebooks/{name} (run `make notebooks`)", file=sys.stderr)
        return 1 if out_of_date else 0
    for path in build():
        print(path.relative_to(HERE.parent))
    return 0


if __name__ == "__main__":
    sys.exit(main())
