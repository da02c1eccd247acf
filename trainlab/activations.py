"""The activation functions: one entry each, for every part of trainlab that computes one.

An entry is the reference model's layer (``module()``: a ``torch.nn`` class with its defaults), the
course's hand-derived backprop (``f`` and its derivative ``df``: backprop.py), the population
engine's in-place torch code (``apply_`` and ``backward_``: net.py, with the ATen kernels autograd
calls, so the gradients equal autograd's) and the C kernel's number (``c_enum``: kernel.c's enum lists
the entries in this order). The derivative reads what autograd's backward reads: ``a = f(z)`` for
relu, tanh and sigmoid, ``z`` for leaky_relu and gelu. tests/test_activations.py checks every entry
in every one of these places.

No torch import at load time: config.py takes its choices from here before the command loads torch.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import Tensor, nn

LEAKY_SLOPE = 0.01  # nn.LeakyReLU's default negative slope


def _aten():
    import torch

    return torch.ops.aten


@dataclass(frozen=True)
class Activation:
    name: str
    torch_module: str  # the torch.nn layer class, built with its defaults
    c_enum: str  # its name in kernel.c's enum
    f: Callable[[Tensor], Tensor]  # a = f(z)
    df: Callable[[Tensor, Tensor], Tensor]  # f'(z), given z and a = f(z)
    # The population engine's pair. apply_(z, out): a = f(z), computed in place in z, or into
    # ``out`` when the backward needs z (``needs_input``). backward_(grad, z, a): grad ⊙ f'(z),
    # in place into grad (z is None unless ``needs_input``).
    apply_: Callable[[Tensor, Tensor | None], Tensor]
    backward_: Callable[[Tensor, Tensor | None, Tensor], Tensor]
    needs_input: bool = False
    kink: bool = False  # f' jumps at 0: a central difference straddling 0 is no derivative (gradcheck)

    def module(self) -> nn.Module:
        """The layer ``models.build_model`` puts after each hidden Linear."""
        from torch import nn

        return getattr(nn, self.torch_module)()


def _Phi(z: Tensor) -> Tensor:  # standard normal CDF
    return 0.5 * (1 + (z / math.sqrt(2)).erf())


def _phi(z: Tensor) -> Tensor:  # standard normal density
    return (-0.5 * z * z).exp() / math.sqrt(2 * math.pi)


ACTIVATIONS: dict[str, Activation] = {a.name: a for a in (
    Activation(
        "relu", "ReLU", "RELU",
        f=lambda z: z.clamp(min=0),
        df=lambda z, a: (a > 0).to(a.dtype),
        apply_=lambda z, out: z.clamp_(min=0),
        backward_=lambda grad, z, a: _aten().threshold_backward.grad_input(grad, a, 0, grad_input=grad),
        kink=True,
    ),
    Activation(
        "tanh", "Tanh", "TANH",
        f=lambda z: z.tanh(),
        df=lambda z, a: 1 - a * a,
        apply_=lambda z, out: z.tanh_(),
        backward_=lambda grad, z, a: _aten().tanh_backward.grad_input(grad, a, grad_input=grad),
    ),
    Activation(
        "sigmoid", "Sigmoid", "SIGMOID",
        f=lambda z: z.sigmoid(),
        df=lambda z, a: (1 - a) * a,
        apply_=lambda z, out: z.sigmoid_(),
        backward_=lambda grad, z, a: _aten().sigmoid_backward.grad_input(grad, a, grad_input=grad),
    ),
    Activation(
        "leaky_relu", "LeakyReLU", "LEAKY_RELU",
        f=lambda z: z.where(z > 0, LEAKY_SLOPE * z),
        df=lambda z, a: z.new_ones(z.shape).where(z > 0, LEAKY_SLOPE),
        apply_=lambda z, out: _aten().leaky_relu.out(z, LEAKY_SLOPE, out=out),
        backward_=lambda grad, z, a: _aten().leaky_relu_backward.grad_input(grad, z, LEAKY_SLOPE, False,
                                                                             grad_input=grad),
        needs_input=True, kink=True,
    ),
    Activation(  # the exact (erf) GELU, as nn.GELU computes it by default
        "gelu", "GELU", "GELU",
        f=lambda z: z * _Phi(z),
        df=lambda z, a: _Phi(z) + z * _phi(z),
        apply_=lambda z, out: _aten().gelu.out(z, out=out),
        backward_=lambda grad, z, a: _aten().gelu_backward.grad_input(grad, z, approximate="none", grad_input=grad),
        needs_input=True,
    ),
    Activation(
        "identity", "Identity", "IDENTITY",
        f=lambda z: z,
        df=lambda z, a: z.new_ones(z.shape),
        apply_=lambda z, out: z,
        backward_=lambda grad, z, a: grad,
    ),
)}


def activation_of_layer(module: nn.Module) -> str | None:
    """The name of the activation ``module`` is, or None (a Linear, say). A hidden layer with
    dropout (``models.build_model``: its activation, then dropout) counts as its activation."""
    from torch import nn

    if isinstance(module, nn.Sequential) and len(module):
        module = module[0]
    for activation in ACTIVATIONS.values():
        if type(module) is getattr(nn, activation.torch_module):
            return activation.name
    return None
