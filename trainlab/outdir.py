"""The output directory: which one a command may write, what ``--force`` may remove, one writer at a time.

trainlab writes only inside ``--out``. ``--force`` replaces a directory trainlab made (its
runs.sqlite and config.toml are there) or an empty one, and removes only trainlab's own files
from it; anything else is refused. While a command writes, ``.trainlab.lock`` in the directory
holds its pid under an OS file lock, so a second command into the same directory stops at once,
and the lock of a process that died is released by the OS and taken over.
"""

from __future__ import annotations

import hashlib
import os
import tomllib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from trainlab.config import RunConfig, RunSpec, config_from_dict, to_toml
from trainlab.errors import BadInput
from trainlab.store import STORE_NAME, Store

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None
    import msvcrt

LOCK_NAME = ".trainlab.lock"
# What trainlab writes into an output directory, as glob patterns: all --force removes.
OWN_FILES = (f"{STORE_NAME}", f"{STORE_NAME}-wal", f"{STORE_NAME}-shm", f"{STORE_NAME}-journal", "config.toml",
             "runs.csv", "runs.csv.tmp", "history.csv", "history.csv.tmp", "history.csv.part*", "*.png",
             "report.html", "report.html.tmp")
MADE_BY_TRAINLAB = (STORE_NAME, "config.toml")  # both there: a directory trainlab made


@contextmanager
def writing_to(out_dir: Path, resume: bool, force: bool) -> Iterator[Path]:
    """Make ``out_dir`` ready to write and hold its lock meanwhile: refuse to mix into a non-empty
    directory unless resuming; ``force`` first removes trainlab's files of an earlier run."""
    out_dir = Path(out_dir)
    if resume and force:
        raise BadInput("--resume and --force contradict each other: choose one")
    if out_dir.exists() and not out_dir.is_dir():
        raise BadInput(f"--out {out_dir}: exists and is not a directory")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise BadInput(f"--out {out_dir}: cannot create the directory ({e.strerror})") from None
    with locked(out_dir):
        contents = [p for p in out_dir.iterdir() if p.name != LOCK_NAME]
        if contents and resume and not (out_dir / STORE_NAME).exists():
            raise BadInput(f"--out {out_dir}: nothing to resume here (no {STORE_NAME})")
        if contents and not resume:
            if not force:
                raise BadInput(f"--out {out_dir}: directory is not empty; pass --resume to continue it "
                               "or --force to replace it")
            remove_own_files(out_dir, contents)
        yield out_dir


def remove_own_files(out_dir: Path, contents: list[Path]) -> None:
    """``--force``: trainlab's files of an earlier run, and nothing else, from a directory it made."""
    if not all((out_dir / name).is_file() for name in MADE_BY_TRAINLAB):
        names = sorted(p.name + ("/" if p.is_dir() else "") for p in contents)
        shown = ", ".join(names[:6]) + (f", … ({len(names)} entries)" if len(names) > 6 else "")
        raise BadInput(f"--out {out_dir} --force: refusing to replace a directory trainlab did not make "
                       f"(it holds {shown}); choose a new or empty --out")
    for pattern in OWN_FILES:
        for path in out_dir.glob(pattern):
            if path.is_file() or path.is_symlink():
                path.unlink()


@contextmanager
def locked(out_dir: Path) -> Iterator[None]:
    """Hold ``out_dir``'s lock file for the body; BadInput naming the holder's pid if another has it."""
    path = out_dir / LOCK_NAME
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise BadInput(f"--out {out_dir}: cannot write there ({e.strerror})") from None
        if not _try_lock(fd):
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise BadInput(f"--out {out_dir} is in use by pid {holder} (another trainlab command writing "
                           "there); wait for it to finish or choose another --out")
        try:  # a holder that just finished removed the file: lock the one there now
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        path.unlink(missing_ok=True)
        os.close(fd)  # which releases the lock


def _try_lock(fd: int) -> bool:
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        else:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
    except OSError:
        return False
    return True


# ---------------------------------------------------------------------------- resuming


def data_fingerprint(specs: Iterable[RunSpec], data_for) -> str:
    """A hash of the data every run of an experiment trains on: the arrays of each of its data sets
    after the split and scaling (X and y of train, val and test)."""
    digest = hashlib.blake2b(digest_size=16)
    seen: set[str] = set()
    configs: dict[int, RunConfig] = {id(s.config): s.config for s in specs}  # a grid point's seeds share theirs
    for cfg in configs.values():
        key = cfg.data.model_dump_json()
        if key in seen:
            continue
        seen.add(key)
        data = data_for(cfg)
        for a in (data.X_train, data.y_train, data.X_val, data.y_val, data.X_test, data.y_test):
            if a is not None:
                a = np.ascontiguousarray(a)
                digest.update(f"{a.dtype.str}{a.shape}".encode())
                digest.update(a.data)
    return digest.hexdigest()


def check_resumable(store: Store, cfg: RunConfig, resume: bool, fingerprint: str | None = None) -> None:
    """Resuming with a different config, or on different data, would mix runs of two experiments
    under one name. A store from before data fingerprints were recorded has none to compare: its
    data counts as unchanged."""
    if not resume:
        return
    stored = {e["experiment"]: e for e in store.experiments()}
    old = stored.get(cfg.experiment_name)
    if old is None:
        return
    if _without_seeds(_as_today(old["config_toml"])) != _without_seeds(to_toml(cfg)):
        raise BadInput(
            f"--resume: the config of {cfg.experiment_name!r} differs from the one stored in "
            f"{store.path}; use a new --out (or --force to start over)"
        )
    if fingerprint and old.get("data_fingerprint") and old["data_fingerprint"] != fingerprint:
        source = f" ({cfg.data.path} changed)" if cfg.data.name == "csv" else ""
        raise BadInput(
            f"--resume: the data of {cfg.experiment_name!r} differs from the data its stored runs trained "
            f"on{source}; use a new --out (or --force to start over)"
        )


def _as_today(toml_text: str) -> str:
    """A stored config as this version writes it: an option added since takes its default, so a
    store made before it still resumes (the text itself, when the config no longer reads)."""
    try:
        return to_toml(config_from_dict(tomllib.loads(toml_text), source="the stored config"))
    except (BadInput, tomllib.TOMLDecodeError):
        return toml_text


def _without_seeds(toml_text: str) -> str:
    return "\n".join(line for line in toml_text.splitlines() if not line.startswith("seeds ="))
