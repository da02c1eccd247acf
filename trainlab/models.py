"""The MLP: any depth (no hidden layer is logistic regression), an activation per hidden layer,
dropout after it, seeded init."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from trainlab import rng
from trainlab.activations import ACTIVATIONS
from trainlab.config import INIT_PRESET_STD, ModelConfig


def layer_sizes(cfg: ModelConfig, in_dim: int, n_out: int) -> list[int]:
    return [in_dim, *cfg.hidden, n_out]


def build_model(
    cfg: ModelConfig,
    in_dim: int,
    n_out: int,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
) -> nn.Sequential:
    """Linear → activation → … → Linear, initialised layer by layer from ``generator``: any engine
    that draws the weights in this order gets the same model. A hidden layer with dropout has
    ``nn.Sequential(activation, Dropout)`` in its activation's place, so the Linear layers keep their
    state-dict names (``0.weight``, ``2.weight``, …) with or without it.
    """
    sizes = layer_sizes(cfg, in_dim, n_out)
    layers: list[nn.Module] = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        # Built on the meta device (no memory, no random draws), then given real tensors: the
        # only random numbers are the generator's, and sweeps of thousands of models build fast.
        linear = nn.Linear(fan_in, fan_out, device="meta", dtype=dtype)
        linear.weight = nn.Parameter(torch.empty(fan_out, fan_in, dtype=dtype))
        linear.bias = nn.Parameter(torch.empty(fan_out, dtype=dtype))
        init_weights(linear.weight, linear.bias, cfg, generator)
        layers.append(linear)
        if i < len(sizes) - 2:
            activation, rate = ACTIVATIONS[cfg.activations[i]].module(), cfg.dropouts[i]
            layers.append(nn.Sequential(activation, Dropout(rate, i)) if rate else activation)
    return nn.Sequential(*layers)


class Dropout(nn.Module):
    """Inverted dropout after hidden layer ``layer`` (0 = the first): while training, each unit of
    each point is kept with probability 1 - rate and scaled by 1 / (1 - rate), else zeroed; at
    evaluation it passes its input on.

    The masks are ``rng.dropout_keep``'s, a function of (seed, epoch, step, layer, unit, position
    in the minibatch), not torch's generator: the population engine draws the same ones. The
    training loop says which step it is before each forward pass (``set_dropout_step``).
    """

    def __init__(self, rate: float, layer: int):
        super().__init__()
        self.rate, self.layer = rate, layer
        self.step: tuple[int, int, int] | None = None  # (seed, epoch, step) of the current minibatch

    def mask(self, samples: int, units: int, dtype: torch.dtype) -> torch.Tensor:
        """(samples, units): 1 / (1 - rate) where a unit is kept, 0 where it is dropped."""
        if self.step is None:
            raise RuntimeError("Dropout: call models.set_dropout_step(model, seed, epoch, step) before training")
        seed, epoch, step = self.step
        keep = rng.dropout_keep([seed], epoch, step, self.layer, units, samples, self.rate)[0].T
        return torch.zeros(samples, units, dtype=dtype).masked_fill_(torch.from_numpy(keep), 1 / (1 - self.rate))

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        return a * self.mask(a.shape[0], a.shape[1], a.dtype) if self.training else a

    def extra_repr(self) -> str:
        return f"rate={self.rate}, layer={self.layer}"


@contextmanager
def evaluating(model: nn.Module) -> Iterator[None]:
    """``model`` in evaluation mode (dropout off), then back in the mode it was in."""
    training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(training)


def set_dropout_step(model: nn.Module, seed: int, epoch: int, step: int) -> None:
    """Tell ``model``'s dropout layers which minibatch comes next: their masks are drawn for it."""
    for module in model.modules():
        if isinstance(module, Dropout):
            module.step = (seed, epoch, step)


@torch.no_grad()
def init_weights(w: torch.Tensor, b: torch.Tensor, cfg: ModelConfig, generator: torch.Generator | None) -> None:
    """Initialise one layer's weight ``(out, in)`` and bias ``(out,)`` in place, drawing from ``generator``.

    ``w`` and ``b`` must be contiguous: torch draws some distributions in a different order into
    strided tensors. The population engine calls this on rows of its stacked layers.
    """
    if cfg.init == "default":  # what nn.Linear does on its own
        nn.init.kaiming_uniform_(w, a=5**0.5, generator=generator)
        bound = 1 / w.shape[1] ** 0.5
        nn.init.uniform_(b, -bound, bound, generator=generator)
        return
    if cfg.init == "he":
        nn.init.kaiming_normal_(w, nonlinearity="relu", generator=generator)
    elif cfg.init == "xavier":
        nn.init.xavier_uniform_(w, generator=generator)
    elif cfg.init == "zeros":
        nn.init.zeros_(w)
    else:  # normal, small, large
        std = INIT_PRESET_STD.get(cfg.init, cfg.init_std)
        nn.init.normal_(w, 0.0, std, generator=generator)
    nn.init.zeros_(b)


def linear_layers(model: nn.Sequential) -> list[nn.Linear]:
    return [m for m in model if isinstance(m, nn.Linear)]


def forward_keeping_hidden(model: nn.Sequential, X: torch.Tensor) -> tuple[torch.Tensor, list]:
    """``model(X)``, and each hidden layer's activation module and output A_l on the way.

    The same modules in the same order as ``nn.Sequential`` runs them, so the output is bit-identical.
    """
    A, hidden = X, []
    for module in model:
        A = module(A)
        if not isinstance(module, nn.Linear):
            hidden.append((module, A))
    return A, hidden


def model_from_params(cfg: ModelConfig, params: dict, dtype: torch.dtype = torch.float64) -> nn.Sequential:
    """The model of ``cfg`` holding ``params`` (state-dict names, numpy arrays), ready to predict.

    The input and output widths are read off the first and last layers, so a run's stored weights
    are all it takes. float64 by default: plots and checks then see the weights exactly as trained.
    """
    first, last = params["0.weight"], params[f"{2 * len(cfg.hidden)}.weight"]
    # The initial weights are overwritten: a throwaway generator keeps torch's global one (a
    # notebook's torch.manual_seed) untouched by plotting a model.
    model = build_model(cfg, first.shape[1], last.shape[0], generator=torch.Generator(), dtype=dtype)
    model.load_state_dict({k: torch.as_tensor(v, dtype=dtype) for k, v in params.items()})
    return model.eval()
