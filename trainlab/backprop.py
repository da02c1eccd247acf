"""Backprop by hand: the derivation of the course (notebooks 002 and 004) for an MLP of any depth.

No autograd: plain tensor operations, one line per chain-rule step, shapes in the comments.
Notation, for layers l = 1..L with widths d_0 (inputs) .. d_L (outputs: k classes, or the
targets of a regression) and a batch of N rows:

    A_0 = X                                   (N, d_0)
    Z_l = A_{l-1} W_lᵀ + b_l                  (N, d_l)     W_l: (d_l, d_{l-1}) as in nn.Linear
    A_l = f_l(Z_l) ⊙ M_l      for l < L       (N, d_l)     f_l: layer l's activation

and one of two losses on the outputs Z_L:

    cross-entropy:  p̂ = softmax(Z_L),  L = −mean_i log p̂[i, y_i],   dL/dZ_L = (p̂ − Y) / N     (Y one-hot)
    mean squared error:                 L = mean_ij (Z_L − Y)²ᵢⱼ,   dL/dZ_L = 2 (Z_L − Y) / (N d_L)

Backward, from dL/dZ_L down to layer 1:

    dW_l = dZ_lᵀ A_{l-1}        db_l = Σ_i dZ_l[i]        dA_{l-1} = dZ_l W_l
    dZ_{l-1} = dA_{l-1} ⊙ M_{l-1} ⊙ f_{l-1}'(Z_{l-1})

M_l is layer l's dropout mask while training (1 / (1 − p) where a unit is kept, 0 where it is
dropped: ``models.Dropout``), given fixed; without dropout it is all ones and left out.

Parameters are a dict in the state-dict layout of ``models.build_model`` ("0.weight", "0.bias",
"2.weight", …), so the same numbers can be loaded into the autograd model and compared.

Each step is a method of ``Backprop`` so that a planted bug (``gradcheck.BUGS``) is a subclass
that overrides exactly one step, and the derivation here stays clean.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from trainlab.activations import ACTIVATIONS, Activation, activation_of_layer
from trainlab.models import Dropout, linear_layers

Params = dict[str, Tensor]


def weight(l: int) -> str:
    """State-dict name of W_l (layers counted from 1; activations sit between the Linears)."""
    return f"{2 * (l - 1)}.weight"


def bias(l: int) -> str:
    return f"{2 * (l - 1)}.bias"


def n_layers(params: Params) -> int:
    return sum(name.endswith(".weight") for name in params)


class ShapeError(ValueError):
    """A layer's weights do not fit its inputs: the forward pass cannot multiply them."""


def check_layer(l: int, A: Tensor, W: Tensor, b: Tensor) -> None:
    """Z_l = A_{l-1} W_lᵀ + b_l needs W_l of shape (d_l, d_{l-1}) and b_l of shape (d_l,)."""
    if W.ndim != 2 or W.shape[1] != A.shape[1]:
        shape = "×".join(map(str, W.shape))
        raise ShapeError(
            f"layer {l}: A{l - 1} is {A.shape[0]}×{A.shape[1]} but W{l} is {shape}: Z{l} = A{l - 1} W{l}ᵀ needs "
            f"W{l} of shape (units, {A.shape[1]}), one row per unit and one column per input of the layer "
            f"({A.shape[0]}×{A.shape[1]} @ {'×'.join(map(str, reversed(W.shape)))} cannot be multiplied)")
    if tuple(b.shape) != (W.shape[0],):
        raise ShapeError(f"layer {l}: W{l} is {W.shape[0]}×{W.shape[1]} but b{l} has shape {tuple(b.shape)}: "
                         f"expected ({W.shape[0]},), one bias per unit")


class Backprop:
    """Forward, loss, backward and the SGD update of an MLP with activation ``activation`` (one name
    for every hidden layer, or a list with one per hidden layer), and the dropout masks ``masks``
    (one per hidden layer, (N, d_l) or None; None: no dropout).

    ``loss``: "cross_entropy" (class labels ``y``, integers) or "mse" (real targets ``y``, one
    column per output, or a vector for one output). The backward steps take the layer index ``l``
    even where the math does not need it, so a variant can change the step for one layer only.
    """

    losses: tuple[str, ...] = ("cross_entropy", "mse")  # the losses this derivation covers

    def __init__(self, activation: str | list[str] = "relu", loss: str = "cross_entropy",
                 masks: list[Tensor | None] | None = None):
        if loss not in self.losses:
            raise ValueError(f"loss {loss!r}: expected one of {', '.join(self.losses)}")
        self.activation, self.loss_name, self.masks = activation, loss, masks

    def act(self, l: int) -> Activation:
        """f_l and f_l' of hidden layer l (from 1), models.py's activation; f' is written from the
        quantity autograd reads (A = f(Z) for relu, tanh and sigmoid; Z for the others), so both get
        the same numbers."""
        return ACTIVATIONS[self.activation if isinstance(self.activation, str) else self.activation[l - 1]]

    def mask(self, l: int) -> Tensor | None:
        """M_l, hidden layer l's dropout mask (N, d_l), or None."""
        return None if self.masks is None else self.masks[l - 1]

    def parameters(self, model: nn.Module) -> Params:
        """The model's weights as the dict this derivation works on: W_l of shape (d_l, d_{l-1})."""
        return {name: p.detach() for name, p in model.named_parameters()}

    # ------------------------------------------------------------------ forward

    def forward(self, params: Params, X: Tensor) -> tuple[Tensor, list[Tensor], list[Tensor]]:
        """Outputs Z_L, and the A_0..A_{L-1} and Z_1..Z_L the backward pass needs.

        Raises ``ShapeError``, naming the shapes, when a layer's weights do not fit its inputs.
        """
        L = n_layers(params)
        A, As, Zs = X, [], []  # A_0 = X: (N, d_0)
        for l in range(1, L + 1):
            check_layer(l, A, params[weight(l)], params[bias(l)])
            As.append(A)
            Z = A @ params[weight(l)].T + params[bias(l)]  # (N, d_{l-1}) @ (d_{l-1}, d_l) + (d_l,) = (N, d_l)
            Zs.append(Z)
            if l < L:  # no activation on the outputs
                A = self.act(l).f(Z)  # (N, d_l)
                if self.mask(l) is not None:
                    A = A * self.mask(l)  # dropout: (N, d_l) ⊙ (N, d_l)
        return Zs[-1], As, Zs

    def log_probs(self, logits: Tensor) -> Tensor:
        return logits - torch.logsumexp(logits, dim=1, keepdim=True)  # log p̂: (N, k), stable softmax

    def loss(self, outputs: Tensor, y: Tensor) -> Tensor:
        """Cross-entropy: the mean negative log-probability of the true class. MSE: the mean squared error."""
        if self.loss_name == "mse":
            return (outputs - y.reshape(outputs.shape)).square().mean()  # (N, d_L) → ()
        log_p_hat = self.log_probs(outputs)  # (N, k)
        N = y.shape[0]
        return -log_p_hat[range(N), y].mean()  # pick p̂[i, y_i] for each row i: (N,) → ()

    # ------------------------------------------------------------------ backward, one step per method

    def dlogits(self, outputs: Tensor, y: Tensor) -> Tensor:
        """dL/dZ_L: (p̂ − Y) / N with Y the one-hot labels, or 2 (Z_L − Y) / (N d_L) for MSE: (N, d_L)."""
        if self.loss_name == "mse":
            return 2 * (outputs - y.reshape(outputs.shape)) / outputs.numel()
        p_hat = torch.exp(self.log_probs(outputs))  # (N, k)
        Y = nn.functional.one_hot(y, num_classes=outputs.shape[1]).to(outputs.dtype)  # (N, k)
        return (p_hat - Y) / y.shape[0]

    def dW(self, l: int, dZ: Tensor, A_prev: Tensor) -> Tensor:
        return dZ.T @ A_prev  # (d_l, N) @ (N, d_{l-1}) = (d_l, d_{l-1}), the shape of W_l

    def db(self, l: int, dZ: Tensor) -> Tensor:
        return dZ.sum(dim=0)  # (d_l,): each row's 1/N is already in dZ, so sum over the batch

    def dA_prev(self, l: int, dZ: Tensor, W: Tensor) -> Tensor:
        return dZ @ W  # (N, d_l) @ (d_l, d_{l-1}) = (N, d_{l-1})

    def dZ(self, l: int, dA: Tensor, Z: Tensor, A: Tensor) -> Tensor:
        return dA * self.act(l).df(Z, A)  # (N, d_l) ⊙ f_l'(Z_l): (N, d_l)

    def backward(self, params: Params, As: list[Tensor], Zs: list[Tensor], y: Tensor) -> Params:
        """dL/dθ for every parameter, from the forward pass's A and Z."""
        L = n_layers(params)
        grads: Params = {}
        dZ = self.dlogits(Zs[-1], y)  # (N, d_L)
        for l in range(L, 0, -1):
            grads[weight(l)] = self.dW(l, dZ, As[l - 1])  # (d_l, d_{l-1})
            grads[bias(l)] = self.db(l, dZ)  # (d_l,)
            if l > 1:
                dA = self.dA_prev(l, dZ, params[weight(l)])  # (N, d_{l-1})
                M = self.mask(l - 1)
                if M is None:
                    dZ = self.dZ(l - 1, dA, Zs[l - 2], As[l - 1])  # (N, d_{l-1}); A_{l-1} = f(Z_{l-1})
                else:  # through dropout, then f' at the activation's own output f(Z_{l-1})
                    dZ = self.dZ(l - 1, dA * M, Zs[l - 2], self.act(l - 1).f(Zs[l - 2]))
        return {name: grads[name] for name in params}  # state-dict order

    def loss_and_grads(self, params: Params, X: Tensor, y: Tensor) -> tuple[Tensor, Params]:
        outputs, As, Zs = self.forward(params, X)
        return self.loss(outputs, y), self.backward(params, As, Zs, y)

    # ------------------------------------------------------------------ update

    def sgd_step(self, params: Params, grads: Params, lr: float) -> Params:
        """θ ← θ − η ∇θL: a step downhill."""
        return {name: params[name] - lr * grads[name] for name in params}


def activations_of(model: nn.Sequential) -> list[str]:
    """Each hidden layer's activation name in a model built by ``models.build_model``."""
    return [activation_of_layer(module) for module in model if not isinstance(module, nn.Linear)]


def dropout_masks(model: nn.Sequential, rows: int) -> list[Tensor | None] | None:
    """The masks ``model``'s dropout layers apply to a minibatch of ``rows`` points at their current
    step (``models.set_dropout_step``), one per hidden layer (None: no dropout there); None when the
    model does not drop (no dropout layers, or evaluation mode)."""
    if not model.training:
        return None
    hidden = [module for module in model if not isinstance(module, nn.Linear)]
    masks = [module[1].mask(rows, linear.out_features, linear.weight.dtype)
             if isinstance(module, nn.Sequential) and isinstance(module[1], Dropout) else None
             for linear, module in zip(linear_layers(model), hidden)]
    return masks if any(mask is not None for mask in masks) else None


def manual_gradients(model: nn.Sequential, X: Tensor, y: Tensor) -> Tensor:
    """The training loop's gradient step done by hand: set each ``p.grad``, return the loss.

    Drop-in for ``train.autograd_gradients``, so ``torch.optim`` steps on these gradients (with the
    same dropout masks as the model's own forward pass would draw).
    """
    bp = Backprop(activations_of(model), "mse" if y.is_floating_point() else "cross_entropy",
                  dropout_masks(model, len(X)))
    loss, grads = bp.loss_and_grads(bp.parameters(model), X, y)
    for name, p in model.named_parameters():
        p.grad = grads[name]
    return loss
