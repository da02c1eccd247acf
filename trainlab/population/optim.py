"""torch.optim's update rules, vectorized over a population: one row of a (K, P) matrix per model.

Each optimizer repeats, operation for operation, the single-tensor code path ``torch.optim`` takes on
CPU, with the scalars (lr, momentum, betas, eps, weight decay) replaced by (K, 1) columns built from
the population's few distinct configs (``which`` maps each row to its config), so a model's row is
updated with the reference engine's roundings. State and scratch live in (K, P) buffers allocated
once. Where the C kernel trains, it also takes Adam's and AdamW's steps (``Adam.kernel_steps``),
written as torch's fused CPU kernel that the reference engine runs; both paths round within ~1 ulp
a step of it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
from torch import Tensor

from trainlab.config import OptimConfig
from trainlab.population.compiled import AdamStep


class BatchedOptimizer:
    """Base class: per-model state rows (compacted with the population) and config columns."""

    state_names: tuple[str, ...] = ()

    def __init__(self, configs: list[OptimConfig], which: Tensor, params: Tensor):
        self.configs = configs  # the distinct optimizer configs of the population
        self.which = which  # (K,) index of each model's config
        self.steps = 0
        self.state = {name: torch.zeros_like(params) for name in self.state_names}
        self._alloc_scratch(params)

    def _alloc_scratch(self, params: Tensor) -> None:
        self.scratch = torch.empty_like(params)
        self.scratch2 = torch.empty_like(params)
        self._columns: dict[tuple, Tensor] = {}

    def column(self, values: list[float], like: Tensor) -> Tensor:
        """(K, 1) column of a per-config value in the parameters' dtype ((1, 1) with one config),
        cached: most are the same at every step."""
        key = tuple(values)
        col = self._columns.get(key)
        if col is None:
            if len(self._columns) > 64:  # per-step values (bias corrections) would pile up
                self._columns.clear()
            col = torch.tensor(values, dtype=like.dtype)
            col = (col if len(self.configs) == 1 else col[self.which]).unsqueeze(1)
            self._columns[key] = col
        return col

    def keep(self, rows: Tensor, params: Tensor) -> None:
        """Drop the models that left the population (``rows`` are the ones that stay)."""
        self.which = self.which[rows]
        self.state = {name: s[rows] for name, s in self.state.items()}
        self._alloc_scratch(params)

    def copy_rows(self, dst: Tensor, src: Tensor) -> None:
        """Models ``dst`` take the state of models ``src`` (population-based training's exploit)."""
        for s in self.state.values():
            s[dst] = s[src]

    def reconfigure(self, rows: Tensor, config: OptimConfig, params: Tensor) -> None:
        """Models ``rows`` take ``config`` from the next step on (population-based training's explore)."""
        self.configs.append(config)
        self.which = self.which.clone()
        self.which[rows] = len(self.configs) - 1
        self._alloc_scratch(params)

    def with_l2(self, params: Tensor, grad: Tensor) -> Tensor:
        """``grad.add(param, alpha=weight_decay)`` (the L2 penalty of SGD, Adam and RMSprop)."""
        wd = [c.weight_decay_value for c in self.configs]
        if not any(wd):
            return grad
        return torch.addcmul(grad, params, self.column(wd, params), out=self.scratch)

    def step(self, params: Tensor, grad: Tensor, lrs: list[float]) -> None:
        """One update of every row; ``lrs`` is this epoch's learning rate of each config."""
        raise NotImplementedError

    def kernel_steps(self, lrs: list[float], steps: int) -> AdamStep | None:
        """The next ``steps`` updates, counted as taken, for the C kernel to make after each model's
        gradient; None where it does not (then ``step`` makes each)."""
        return None


class SGD(BatchedOptimizer):
    """torch.optim.SGD (momentum and nesterov are SGD with a momentum buffer)."""

    def __init__(self, configs: list[OptimConfig], which: Tensor, params: Tensor):
        self.state_names = ("momentum_buffer",) if any(c.momentum_value for c in configs) else ()
        super().__init__(configs, which, params)

    def step(self, params: Tensor, grad: Tensor, lrs: list[float]) -> None:
        self.steps += 1
        grad = self.with_l2(params, grad)
        if self.state_names:
            momentum = self.column([c.momentum_value for c in self.configs], params)
            buf = self.state["momentum_buffer"]
            if self.steps == 1:
                buf.copy_(grad)
            else:  # with momentum 0 this is exactly `grad`, as torch's buffer-free path
                buf.mul_(momentum).add_(grad)
            nesterov = any(c.name == "nesterov" for c in self.configs)
            grad = torch.addcmul(grad, buf, momentum, out=self.scratch2) if nesterov else buf
        params.addcmul_(grad, self.column([-lr for lr in lrs], params))


class Adam(BatchedOptimizer):
    """torch.optim.Adam, and AdamW (``decoupled``: the weight decay shrinks the weights instead)."""

    state_names = ("exp_avg", "exp_avg_sq")

    def __init__(self, configs: list[OptimConfig], which: Tensor, params: Tensor, decoupled: bool):
        self.decoupled = decoupled
        super().__init__(configs, which, params)

    def _alloc_scratch(self, params: Tensor) -> None:
        super()._alloc_scratch(params)
        self.denom = torch.empty_like(params)
        self.kernel_rows: tuple = (None, None, None)  # (lrs, kernel_steps' AdamStep, the rows it points into)

    def kernel_steps(self, lrs: list[float], steps: int) -> AdamStep:
        self.steps += steps
        if self.kernel_rows[0] != lrs:
            cfgs = self.configs
            per_config = (lrs, [c.betas[0] for c in cfgs], [c.betas[1] for c in cfgs], [c.eps for c in cfgs],
                          [c.weight_decay_value for c in cfgs])
            rows = [torch.tensor(values, dtype=torch.float64)[self.which] for values in per_config]  # per model
            adam = AdamStep(self.state["exp_avg"].data_ptr(), self.state["exp_avg_sq"].data_ptr(),
                            *(r.data_ptr() for r in rows), decoupled=self.decoupled)
            self.kernel_rows = (list(lrs), adam, rows)
        self.kernel_rows[1].step = self.steps - steps + 1  # the first one's count
        return self.kernel_rows[1]

    def step(self, params: Tensor, grad: Tensor, lrs: list[float]) -> None:
        self.steps += 1
        t, cfgs = self.steps, self.configs
        if self.decoupled:
            params.mul_(self.column([1 - lr * c.weight_decay_value for c, lr in zip(cfgs, lrs)], params))
        else:
            grad = self.with_l2(params, grad)
        beta1 = [c.betas[0] for c in cfgs]
        beta2 = [c.betas[1] for c in cfgs]
        exp_avg, exp_avg_sq = self.state["exp_avg"], self.state["exp_avg_sq"]
        exp_avg.lerp_(grad, self.column([1 - b for b in beta1], params))
        exp_avg_sq.mul_(self.column(beta2, params))
        exp_avg_sq.addcmul_(torch.mul(grad, self.column([1 - b for b in beta2], params), out=self.scratch2), grad)
        step_size = [lr / (1 - b1**t) for lr, b1 in zip(lrs, beta1)]
        bias_correction2_sqrt = [(1 - b2**t) ** 0.5 for b2 in beta2]
        denom = torch.sqrt(exp_avg_sq, out=self.denom)
        denom.div_(self.column(bias_correction2_sqrt, params)).add_(self.column([c.eps for c in cfgs], params))
        # torch computes (-step_size * exp_avg) / denom: the same two roundings here
        params.addcdiv_(torch.mul(exp_avg, self.column([-s for s in step_size], params), out=self.scratch2), denom)


class RMSprop(BatchedOptimizer):
    """torch.optim.RMSprop (not centered), with or without momentum."""

    def __init__(self, configs: list[OptimConfig], which: Tensor, params: Tensor):
        # torch's update differs in rounding with and without momentum, so a population holds one kind
        self.momentum = configs[0].momentum_value > 0
        assert all((c.momentum_value > 0) == self.momentum for c in configs)
        self.state_names = ("square_avg", "momentum_buffer") if self.momentum else ("square_avg",)
        super().__init__(configs, which, params)

    def _alloc_scratch(self, params: Tensor) -> None:
        super()._alloc_scratch(params)
        self.avg = torch.empty_like(params)

    def step(self, params: Tensor, grad: Tensor, lrs: list[float]) -> None:
        self.steps += 1
        cfgs = self.configs
        grad = self.with_l2(params, grad)
        square_avg = self.state["square_avg"]
        square_avg.mul_(self.column([c.alpha for c in cfgs], params))
        square_avg.addcmul_(torch.mul(grad, self.column([1 - c.alpha for c in cfgs], params), out=self.scratch2), grad)
        avg = torch.sqrt(square_avg, out=self.avg).add_(self.column([c.eps for c in cfgs], params))
        neg_lr = self.column([-lr for lr in lrs], params)
        if self.momentum:
            buf = self.state["momentum_buffer"]
            buf.mul_(self.column([c.momentum_value for c in cfgs], params)).addcdiv_(grad, avg)
            params.addcmul_(buf, neg_lr)
        else:
            params.addcdiv_(torch.mul(grad, neg_lr, out=self.scratch2), avg)


# Each of config.OPTIMIZERS, as its rows are updated (tests/test_activations.py checks they match).
BATCHED_OPTIMIZERS: dict[str, Callable[[list[OptimConfig], Tensor, Tensor], BatchedOptimizer]] = {
    "sgd": SGD, "momentum": SGD, "nesterov": SGD, "adam": functools.partial(Adam, decoupled=False),
    "adamw": functools.partial(Adam, decoupled=True), "rmsprop": RMSprop}


def build_batched_optimizer(configs: list[OptimConfig], which: Tensor, params: Tensor) -> BatchedOptimizer:
    name = configs[0].name
    assert all(c.name == name for c in configs), "a population holds one kind of optimizer"
    return BATCHED_OPTIMIZERS[name](configs, which, params)
