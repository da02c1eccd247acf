"""The MLP: any depth (no hidden layer is logistic regression), any activation, seeded init."""

from __future__ import annotations

import torch
from torch import nn

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
    """Linear → activation → … → Linear, initialised layer by layer from ``generator``.

    The initial weights depend only on the generator's seed, so any engine that draws them in
    this order gets the same model.
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
            layers.append(ACTIVATIONS[cfg.activation].module())
    return nn.Sequential(*layers)


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
    """``model(X)``, and each hidden layer's activation function f and output A_l = f(Z_l) on the way.

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
