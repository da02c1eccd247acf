"""The debugging checklist of the course (notebook 000), automated.

``diagnose(cfg)`` trains the config briefly with the diagnostics on, runs an LR range test and
the 100-sample overfit sanity check, then walks the checklist. Each item is a ``Finding``: ok,
a note, or a fault, with the evidence (numbers from the run) and a concrete thing to try.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from trainlab.backprop import manual_gradients
from trainlab.config import RunConfig
from trainlab.data import Dataset, huge_inputs, make_dataset
from trainlab.errors import BadInput
from trainlab.history import DIVERGENCE_FACTOR, RunResult
from trainlab.lrfind import LRFind, lr_range_test
from trainlab.models import build_model
from trainlab.train import DTYPES, autograd_gradients, train

GRADIENTS = {"reference": autograd_gradients, "manual": manual_gradients}
MAX_EPOCHS = 100  # "trains briefly": the config's epochs, at most this many
SANITY_SAMPLES, SANITY_EPOCHS, SANITY_LR = 100, 500, 0.01  # full-batch Adam: memorises if anything can
SANITY_ACC = 0.9  # a working pipeline fits its 100 rows at least this well (a broken one stays near chance)

VANISHING = 1e-2  # ‖∇W₁‖ / ‖∇W_L‖ below this: "orders of magnitude" smaller
DEAD_FAULT, DEAD_NOTE = 0.4, 0.15  # fraction of dead ReLU units
SATURATED_FAULT, SATURATED_NOTE = 0.5, 0.2  # fraction of saturated sigmoid/tanh activations
OVERFIT_RISE = 0.15  # val loss of the last tenth of the epochs this much above its minimum, train loss falling


@dataclass(frozen=True)
class Finding:
    check: str  # the checklist item, phrased as what a healthy run does
    status: str  # ok | note | fault
    evidence: str
    suggestion: str = ""


@dataclass
class Diagnosis:
    cfg: RunConfig  # the brief run's config
    description: str  # the run in one line: data, architecture, optimizer, epochs, seed, engine
    result: RunResult
    lr_find: LRFind | None  # None when not even its first step had a finite loss
    sanity: RunResult  # the 100-sample overfit run
    findings: list[Finding]

    @property
    def faults(self) -> list[Finding]:
        return [f for f in self.findings if f.status == "fault"]

    @property
    def healthy(self) -> bool:
        return not self.faults

    def show(self) -> None:
        """Print the checklist as ``trainlab doctor`` does (rich renders it in a notebook too)."""
        from rich.console import Console

        render(self, Console())


def diagnose(cfg: RunConfig, seed: int = 0, engine: str = "reference", epochs: int | None = None,
             progress: Callable[[str], None] | None = None) -> Diagnosis:
    """Train ``cfg`` briefly and run the checklist on what happened; ``progress`` is told each step."""
    say = progress or (lambda step: None)
    if engine not in GRADIENTS:
        raise BadInput(f"--engine {engine!r}: the doctor runs one of {', '.join(GRADIENTS)}")
    if epochs is not None and epochs < 1:
        raise BadInput(f"--epochs {epochs}: expected at least 1")
    if cfg.data.task == "regression":  # its checks read cross-entropy and accuracy
        raise BadInput("data.task = 'regression': the doctor checks classifiers only")
    data = make_dataset(cfg.data)
    brief = _with_train(cfg, epochs=epochs or min(cfg.train.epochs, MAX_EPOCHS), early_stopping=None)
    say(f"training {brief.train.epochs} epochs with the diagnostics on")
    result = train(brief, seed, data=data, gradients=GRADIENTS[engine], diagnostics=True)
    say("LR range test")
    try:
        lr_find = lr_range_test(brief, seed, data=data)
    except BadInput:  # not even the first step's loss is finite: the loss check says why
        lr_find = None
    say(f"overfitting {min(SANITY_SAMPLES, len(data.y_train))} training rows ({SANITY_EPOCHS} epochs)")
    sanity = overfit_small_subset(brief, seed, data, engine)
    checks = Checks(brief, data, seed, result, lr_find, sanity)
    return Diagnosis(brief, describe_run(brief, data, engine, seed), result, lr_find, sanity, checks.run())


def _with_train(cfg: RunConfig, **changes) -> RunConfig:
    return cfg.model_copy(update={"train": cfg.train.model_copy(update=changes)})


def overfit_small_subset(cfg: RunConfig, seed: int, data: Dataset, engine: str) -> RunResult:
    """The notebook's sanity check: can this model, by this engine, memorise 100 training rows?"""
    n = min(SANITY_SAMPLES, len(data.y_train))
    X, y = data.X_train[:n], data.y_train[:n]
    subset = dataclasses.replace(data, X_train=X, y_train=y, X_val=X, y_val=y, X_test=None, y_test=None)
    sanity_cfg = _with_train(
        cfg.model_copy(update={"optim": cfg.optim.model_copy(update={"name": "adam", "lr": SANITY_LR,
                                                                     "weight_decay": 0.0})}),
        epochs=SANITY_EPOCHS, batch_size=0,
    )
    return train(sanity_cfg, seed, data=subset, gradients=GRADIENTS[engine])


def initial_loss(cfg: RunConfig, seed: int, data: Dataset) -> float:
    """The training loss before the first step (the same init as ``train``)."""
    dtype = DTYPES[cfg.train.dtype]
    model = build_model(cfg.model, data.in_dim, data.n_classes, torch.Generator().manual_seed(seed), dtype).eval()
    with torch.no_grad():
        return F.cross_entropy(model(torch.tensor(data.X_train, dtype=dtype)), torch.tensor(data.y_train)).item()


class Checks:
    """The checklist, one method per item, in the order a person would debug."""

    def __init__(self, cfg: RunConfig, data: Dataset, seed: int, result: RunResult, lr_find: LRFind | None,
                 sanity: RunResult):
        self.cfg, self.data, self.result, self.lr_find, self.sanity = cfg, data, result, lr_find, sanity
        self.h = {c: values.tolist() for c, values in result.history.items()}  # the checklist reads lists
        self.extra = result.extra
        self.lr = cfg.optim.lr
        self.chance_loss = math.log(data.n_classes)
        self.start_loss = initial_loss(cfg, seed, data)

    def run(self) -> list[Finding]:
        findings = [self.finite_loss()]
        if findings[0].status == "fault":
            findings.append(Finding("the other checks", "note", "skipped: they read a run that blew up"))
        else:
            findings += [self.loss_decreases(), self.gradients_reach_first_layer(), self.relu_units_alive(),
                         self.units_not_saturated(), self.val_above_chance(), self.no_overfitting()]
        findings.append(self.can_overfit_small_subset())
        return [f for f in findings if f is not None]

    # ------------------------------------------------------------------ helpers

    def try_lr(self, direction: str) -> str:
        """A learning rate to try, from the LR range test, never on the wrong side of the current one."""
        lr = self.lr_find.suggested_lr if self.lr_find is not None else self.lr
        if (direction == "lower" and lr >= self.lr) or (direction == "raise" and lr <= self.lr):
            lr = self.lr / 10 if direction == "lower" else self.lr * 10
            source = "a tenth of the current rate" if direction == "lower" else "10× the current rate"
        else:
            source = f"LR range test: loss lowest at lr ≈ {self.lr_find.best_lr:.2g}, suggestion a tenth of that"
        return f"--set optim.lr={lr:.2g} ({source}; see trainlab lrfind)"

    def more_capacity(self) -> str:
        """A bit more capacity: twice the units in every hidden layer, or a hidden layer of 32."""
        hidden = [2 * h for h in self.cfg.model.hidden] or [32]
        return f"--set model.hidden=[{','.join(map(str, hidden))}]"

    # ------------------------------------------------------------------ the checklist

    def finite_loss(self) -> Finding:
        check = "loss finite, not exploding"
        losses = self.h["train_loss"]
        huge = huge_inputs(self.data)
        if self.result.status == "diverged":
            return Finding(check, "fault", f"{self.divergence()} (lr {self.lr:g}, {self.cfg.optim.name})"
                           + (f"; {huge}" if huge else ""),
                           "scale the inputs: --set data.scale=standard (or minmax)" if huge
                           else f"lower the learning rate: {self.try_lr('lower')}")
        worst, best, final = max(losses), min(losses), losses[-1]
        if final > self.chance_loss and final > 2 * best:
            return Finding(check, "fault", f"train loss rose from {best:.3g} to {final:.3g} (max {worst:.3g}); "
                           f"chance level is {self.chance_loss:.3g}",
                           f"lower the learning rate: {self.try_lr('lower')}")
        return Finding(check, "ok",
                       f"finite in all {len(losses)} epochs, highest {worst:.3g} (epoch {losses.index(worst) + 1})")

    def divergence(self) -> str:
        """Why the run counts as diverged, from its history: the loss became NaN/inf, or rose above
        ``DIVERGENCE_FACTOR`` times the untrained model's (the engines' rule, history.diverged)."""
        losses = self.h["train_loss"]
        if not math.isfinite(self.start_loss):
            return f"train loss is {self.start_loss} before the first step already"
        bad = next((e for e, v in enumerate(losses, start=1) if not math.isfinite(v)), None)
        if bad is not None:
            return f"train loss became {losses[bad - 1]} at epoch {bad} (from {self.start_loss:.3g} untrained)"
        top = max(losses)
        at = losses.index(top) + 1
        return (f"train loss rose from {self.start_loss:.3g} (untrained) to {top:.3g} at epoch {at}, "
                f"{top / self.start_loss:.3g}× its start: a run diverges above {DIVERGENCE_FACTOR:g}×")

    def loss_decreases(self) -> Finding:
        check = "loss decreases"
        final = self.h["train_loss"][-1]
        drop = (self.start_loss - final) / self.start_loss
        evidence = (f"train loss {self.start_loss:.4g} at init → {final:.4g} at epoch {self.result.epochs_run} "
                    f"({-drop:+.1%})")
        if drop < -0.05:
            return Finding(check, "fault", evidence + ": the loss rises",
                           f"lower the learning rate: {self.try_lr('lower')}")
        if drop < 0.05 and final > 0.5 * self.chance_loss:
            init = self.cfg.model.init
            tiny = init in ("small", "zeros") or (init == "normal" and self.cfg.model.init_std < 0.05)
            fix_init = f"fix the init (init = {init!r} is tiny)" if tiny else "check the init"
            return Finding(check, "fault", evidence + f": flat (chance level is {self.chance_loss:.3g})",
                           f"raise the learning rate: {self.try_lr('raise')}; or {fix_init}: --set model.init=he for "
                           "relu, xavier for tanh/sigmoid")
        return Finding(check, "ok", evidence)

    def gradients_reach_first_layer(self) -> Finding | None:
        L = len(self.cfg.model.hidden) + 1
        if L < 2:
            return None
        first, last = (statistics.median(self.extra[f"grad_norm.{l}"]) for l in (1, L))
        ratio = first / last if last > 0 else math.inf
        check = "gradients reach layer 1"
        evidence = f"median ‖∇W1‖ {first:.2g}, ‖∇W{L}‖ {last:.2g} (ratio {ratio:.1e})"
        if ratio < VANISHING:
            activation = self.cfg.model.activation_label
            return Finding(
                check, "fault",
                evidence + (f": {math.log10(1 / ratio):.0f} orders of magnitude smaller at layer 1" if ratio > 0
                            else ": no gradient reaches layer 1 at all") + " (vanishing gradients)",
                "use an init scaled to the layer width and a non-saturating activation: --set model.init=he "
                "--set model.activation=relu" + (" (or model.init=xavier to keep " + activation + ")"
                                                 if activation in ("sigmoid", "tanh") else "")
                + "; or fewer layers",
            )
        return Finding(check, "ok", evidence)

    def relu_units_alive(self) -> Finding | None:
        if "dead" not in self.extra:
            return None
        dead = self.extra["dead"][-1]
        per_layer = ", ".join(f"layer {l}: {self.extra[f'dead.{l}'][-1]:.0%}"
                              for l in range(1, len(self.cfg.model.hidden) + 1) if f"dead.{l}" in self.extra)
        evidence = (f"{dead:.0%} of hidden units dead (0 on every training row) at epoch "
                    f"{self.result.epochs_run} ({per_layer})")
        status = "fault" if dead >= DEAD_FAULT else "note" if dead >= DEAD_NOTE else "ok"
        suggestion = "" if status == "ok" else (
            f"dead units never recover (their gradient is 0): lower the learning rate, {self.try_lr('lower')}; "
            "or --set model.activation=leaky_relu, or --set model.init=he"
        )
        return Finding("ReLU units alive", status, evidence, suggestion)

    def units_not_saturated(self) -> Finding | None:
        if "saturated" not in self.extra:
            return None
        saturated = self.extra["saturated"][-1]
        evidence = f"{saturated:.0%} of hidden outputs in a flat tail (f' ≈ 0) at epoch {self.result.epochs_run}"
        status = "fault" if saturated >= SATURATED_FAULT else "note" if saturated >= SATURATED_NOTE else "ok"
        suggestion = "" if status == "ok" else (
            "keep pre-activations small: --set model.init=xavier, --set data.scale=standard, a lower learning rate; "
            "or --set model.activation=relu"
        )
        judged = ", ".join(dict.fromkeys(a for a in self.cfg.model.activations if a in ("sigmoid", "tanh")))
        return Finding(f"{judged} units not saturated", status, evidence, suggestion)

    def val_above_chance(self) -> Finding:
        counts = torch.bincount(torch.tensor(self.data.y_val), minlength=self.data.n_classes)
        chance = counts.max().item() / counts.sum().item()  # always predicting the majority class
        final, best = self.h["val_acc"][-1], max(self.h["val_acc"])
        check = "val accuracy above chance"
        train_acc = self.h["train_acc"][-1]
        evidence = (f"val accuracy {final:.3f} (best {best:.3f}), train {train_acc:.3f}; "
                    f"chance (the majority class) {chance:.3f}")
        if best > chance + 0.05:
            return Finding(check, "ok", evidence)
        if train_acc <= chance + 0.05:
            return Finding(check, "fault", evidence + ": nothing learned, on train either",
                           f"increase capacity a bit ({self.more_capacity()}) or try Adam with a smaller learning "
                           f"rate (--set optim.name=adam --set optim.lr={self.lr / 10:.2g}), as the course's "
                           "checklist says for val accuracy stuck near 50%; if the loss and gradient checks fail "
                           "too, fix those first, and if nothing helps, check that the labels belong to their rows "
                           "(data.target is the label column)")
        return Finding(check, "fault", evidence + ": learned on train, not on val",
                       "check the labels of the validation rows and the inputs' scale (--set data.scale=standard, "
                       "fitted on train); a val split from another distribution looks like this")

    def no_overfitting(self) -> Finding:
        val, tr = self.h["val_loss"], self.h["train_loss"]
        best_at = val.index(min(val)) + 1
        tail = max(3, len(val) // 10)  # the last epochs, averaged: one noisy epoch is not a trend
        val_end, train_end = statistics.fmean(val[-tail:]), statistics.fmean(tr[-tail:])
        rise = val_end / val[best_at - 1] - 1
        check = "val loss follows train loss"
        if best_at > len(val) - tail:
            return Finding(check, "ok", f"val loss still at its lowest near the end: {val[best_at - 1]:.3f} at "
                                        f"epoch {best_at} of {len(val)}")
        evidence = (f"val loss lowest {val[best_at - 1]:.3f} at epoch {best_at}, {val_end:.3f} in the last {tail} "
                    f"epochs ({rise:+.0%}); train loss {tr[best_at - 1]:.3f} → {train_end:.3f}")
        if rise > OVERFIT_RISE and train_end < tr[best_at - 1]:
            patience = max(5, min(20, best_at // 2))
            return Finding(
                check, "fault", evidence + ": overfitting",
                f"stop early: about epoch {best_at} is best (--set train.epochs={best_at}, or "
                f"--set train.early_stopping.patience={patience} to stop near epoch {best_at + patience} and "
                f"restore epoch {best_at}'s weights); or regularise: --set optim.weight_decay=1e-3, fewer hidden "
                "units, more data",
            )
        return Finding(check, "ok", evidence)

    def can_overfit_small_subset(self) -> Finding:
        acc = self.sanity.history["train_acc"][-1]
        n = min(SANITY_SAMPLES, len(self.data.y_train))
        check = f"can overfit {n} train rows"
        evidence = (f"train accuracy {acc:.3f} after {SANITY_EPOCHS} full-batch Adam steps (lr {SANITY_LR:g}), "
                    f"loss {self.sanity.history['train_loss'][-1]:.3g}")
        if acc >= SANITY_ACC:
            return Finding(check, "ok", evidence)
        if not self.cfg.model.hidden:
            return Finding(check, "note", evidence + ": a linear model cannot memorise non-linear data",
                           "add a hidden layer: --set model.hidden=[32]")
        return Finding(
            check, "fault", evidence,
            "a working model and loop fit 100 rows: fix the faults above first; if there are none, look for a bug — "
            "labels that do not belong to their rows, a wrong loss or gradients (trainlab gradcheck) — or a model "
            "too small for the data",
        )


# ---------------------------------------------------------------------------- what a person reads

STATUS_STYLE = {"ok": "[green]ok[/]", "note": "[yellow]note[/]", "fault": "[red bold]FAULT[/]"}


def describe_run(cfg: RunConfig, data: Dataset, engine: str, seed: int) -> str:
    m, o, t = cfg.model, cfg.optim, cfg.train
    activation = f" {m.activation_label}" if m.hidden else ""
    shape = "→".join(map(str, [data.in_dim, *m.hidden, data.n_classes])) + activation
    return (f"{cfg.name}: {cfg.data.name}, {shape}, init {m.init}, {o.name} lr {o.lr:g}, "
            f"batch {t.batch_size or 'full'}, {t.epochs} epochs, seed {seed}, {engine} engine")


def render(diagnosis: Diagnosis, console) -> None:
    """The checklist as a table, then what to try for each fault and note, then the verdict."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"trainlab doctor — {escape(diagnosis.description)}", title_justify="left")
    table.add_column("check", no_wrap=True)
    table.add_column("", no_wrap=True)
    table.add_column("evidence")
    for f in diagnosis.findings:
        table.add_row(f.check, STATUS_STYLE[f.status], escape(f.evidence))
    console.print(table)
    todo = [f for f in diagnosis.findings if f.suggestion]
    if todo:
        console.print("[bold]What to try[/]")
        steps = Table.grid(padding=(0, 1))
        steps.add_column(justify="right")
        steps.add_column()
        for i, f in enumerate(todo, start=1):
            steps.add_row(f"{i}.", f"[bold]{escape(f.check)}[/] ({f.status}): {escape(f.suggestion)}")
        console.print(steps)
    faults = diagnosis.faults
    if faults:
        console.print(f"[red bold]{len(faults)} fault{'s' if len(faults) > 1 else ''} found[/]: "
                      + "; ".join(escape(f.check) for f in faults) + ".")
    else:
        console.print("[green bold]Healthy[/]: every check of the checklist passed.")
