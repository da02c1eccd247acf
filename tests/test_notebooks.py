"""The course notebooks: committed files match their sources, and every notebook runs end to end."""

import importlib.util
import sys
import time
from pathlib import Path

import pytest

from conftest import NOTEBOOK_TIMES, ROOT

NOTEBOOKS = ROOT / "notebooks"
TIME_LIMIT = 60  # seconds per notebook on 2 cores: a lab session, and CI, must not wait longer


def load_builder():
    spec = importlib.util.spec_from_file_location("notebook_build", NOTEBOOKS / "build.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


build = load_builder()
ALL = sorted([*NOTEBOOKS.glob("*.ipynb"), *NOTEBOOKS.glob("solutions/*.ipynb")])


def test_committed_notebooks_are_built_from_the_sources():
    assert len(ALL) == 2 * len(list((NOTEBOOKS / "src").glob("*.py"))) == 6
    assert build.stale() == [], "run `make notebooks` and commit the result"


def test_students_get_the_questions_and_solutions_the_answers():
    cells = build.parse("# %% [markdown]\n# **Exercise.** Why?\n\n# %% student\n# your code here\n"
                        "# %% solution\nanswer = 42\n# %% [markdown] solution\n# Because.\n")
    student = [c.source for c in build.notebook(cells, "student", "t").cells]
    solution = [c.source for c in build.notebook(cells, "solution", "t").cells]
    assert student == ["**Exercise.** Why?", "# your code here"]
    assert solution == ["**Exercise.** Why?", "answer = 42", "Because."]
    with pytest.raises(ValueError, match="unknown cell marker"):
        build.parse("# %% answer\nx = 1\n")
    with pytest.raises(ValueError, match="without '# '"):
        build.parse("# %% [markdown]\nnot a comment\n")


def execute(path: Path, monkeypatch) -> "nbformat.NotebookNode":  # noqa: F821
    """Run a notebook top to bottom on a fresh ``python3`` kernel of this venv; raise on any error."""
    import nbformat
    from nbclient import NotebookClient

    # The kernel inherits this environment. Without MPLBACKEND (conftest sets Agg for the tests)
    # ipykernel picks its inline backend, so the figures are drawn as a student would see them.
    monkeypatch.delenv("MPLBACKEND", raising=False)
    # Torch's own thread count, as a student's kernel has it: the notebooks and trainlab choose
    # one thread for small models themselves (notebook 03's population engine, one per core).
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, kernel_name="python3", timeout=600,
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    return nb


def test_the_kernel_is_this_venvs_python(monkeypatch, tmp_path):
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    path = tmp_path / "which.ipynb"
    nbformat.write(new_notebook(cells=[new_code_cell("import sys; print(sys.prefix)")]), path)
    nb = execute(path, monkeypatch)
    assert nb.cells[0].outputs[0]["text"].strip() == sys.prefix


@pytest.mark.slow
@pytest.mark.parametrize("path", ALL, ids=lambda p: str(p.relative_to(NOTEBOOKS)))
def test_notebook_runs_top_to_bottom(path, monkeypatch, request):
    started = time.perf_counter()
    nb = execute(path, monkeypatch)
    seconds = time.perf_counter() - started
    request.config.stash[NOTEBOOK_TIMES][str(path.relative_to(NOTEBOOKS))] = seconds
    figures = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if "image/png" in o.get("data", {})]
    assert figures, "no figure was displayed inline"
    assert seconds < TIME_LIMIT, f"{path.name} took {seconds:.0f} s"
