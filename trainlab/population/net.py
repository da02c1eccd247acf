"""K MLPs of one shape as stacked tensors, with hand-derived batched gradients (no autograd).

The population engine's parameter layout, and its torch code (``kernel.c`` runs the same layout in
C). Each model's parameters are one row of a (K, P) matrix: the first layer as ``[W | b]`` rows
(out, in + 1) (the inputs carry a row of ones, so one ``bmm`` gives ``W x + b`` and one the
gradients of both), every later layer as ``W`` (out, in) in ``nn.Linear``'s orientation followed by
``b`` (out,). Activations are feature-major, (in, batch), so the thin layers' products are ``bmm``
calls along the dimension BLAS handles well, each into a contiguous buffer. Nets in → H → 2 instead
train batch-major and store the first layer transposed, (in + 1, out), keeping H as BLAS's
contiguous dimension in both products with the thin inputs. Gradients land in a (K, P) matrix of
the same layout, so the optimizer updates all models with a few in-place ops.

The backward pass calls the ATen backward kernels autograd calls, so the gradients equal
autograd's to rounding.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from trainlab import rng
from trainlab.activations import ACTIVATIONS


class Workspace:
    """Named scratch buffers, grown on demand and reused for every shape asked of them."""

    def __init__(self, dtype: torch.dtype):
        self.dtype = dtype
        self.buffers: dict[str, Tensor] = {}
        self.views: dict[tuple, Tensor] = {}  # the same view for the same ask: no op per step
        self.derivations: dict[tuple, tuple[Tensor, Tensor]] = {}

    def get(self, name: str, *shape: int) -> Tensor:
        view = self.views.get((name, shape))
        if view is not None:
            return view
        n = math.prod(shape)
        buf = self.buffers.get(name)
        if buf is None or buf.numel() < n:
            buf = self.buffers[name] = torch.empty(n, dtype=self.dtype)
            self.views = {key: v for key, v in self.views.items() if key[0] != name}  # of the old buffer
            self.derivations = {}
        view = self.views[name, shape] = buf[:n].view(shape)
        return view

    def derived(self, base: Tensor, how: str) -> Tensor:
        """``base.transpose(1, 2)`` ("T"), ``base.flatten(1)`` ("flat") or ``base[:, 1:]`` ("1:"),
        the same view object every time it is asked of the same ``base``."""
        hit = self.derivations.get((id(base), how))
        if hit is not None and hit[0] is base:
            return hit[1]
        view = base.transpose(1, 2) if how == "T" else base.flatten(1) if how == "flat" else base[:, 1:]
        self.derivations[id(base), how] = (base, view)
        return view


class Net:
    """The layer layout of one shape of MLP and its batched forward, backward and evaluation."""

    def __init__(self, sizes: list[int], activations: str | list[str], dtype: torch.dtype,
                 dropouts: list[float] | None = None):
        """``activations``: one for every hidden layer or one per hidden layer; ``dropouts``: each
        hidden layer's dropout rate (None: no dropout)."""
        self.sizes, self.dtype = list(sizes), dtype
        self.n_layers = len(sizes) - 1
        hidden = self.n_layers - 1
        self.activations = [activations] * hidden if isinstance(activations, str) else list(activations)
        self.dropouts = [0.0] * hidden if dropouts is None else list(dropouts)
        per_layer = [fan_out * (fan_in + 1) for fan_in, fan_out in zip(sizes[:-1], sizes[1:])]
        self.offsets = [sum(per_layer[:layer]) for layer in range(self.n_layers)]  # where each layer starts
        self.n_params = sum(per_layer)
        # in -> H -> 2 nets (``_gradients_one_hidden``): the first layer's gradient ``xᵀ @ dz`` lands in place
        self.first_transposed = self.n_layers == 2 and self.sizes[-1] == 2
        self._views_of: Tensor | None = None
        self._views: dict = {}

    def act(self, layer: int):
        """Hidden layer ``layer``'s activation: its in-place forward and backward."""
        return ACTIVATIONS[self.activations[layer]]

    def __getstate__(self) -> dict:  # pickled without the cache (Ray ships results with their Net)
        return {**self.__dict__, "_views_of": None, "_views": {}}

    # ------------------------------------------------------------------ layout

    def views(self, params: Tensor) -> dict:
        """Views into ``params``, made once while the same tensor is asked about (a slice's parameters
        stay one tensor from step to step): each layer's weights ("w", layer) (K, out, in) and biases
        ("b", layer) (K, out, 1); the first layer as ``[W | b]`` (K, out, in + 1) ("first") and
        transposed ("first_t"); the last layer's rows 1: and :1 of its weights and biases ("margin";
        without hidden layers, of ``[W | b]`` and None)."""
        if self._views_of is params:
            return self._views
        fan_in, fan_out = self.sizes[0], self.sizes[1]
        block = params[:, : fan_out * (fan_in + 1)]
        if self.first_transposed:
            first = block.view(-1, fan_in + 1, fan_out).transpose(1, 2)
        else:
            first = block.view(-1, fan_out, fan_in + 1)
        views = {"first": first, "first_t": first.transpose(1, 2), ("w", 0): first[:, :, :fan_in],
                 ("b", 0): first[:, :, fan_in:]}
        for layer in range(1, self.n_layers):
            fan_in, fan_out, at = self.sizes[layer], self.sizes[layer + 1], self.offsets[layer]
            views["w", layer] = params[:, at : at + fan_out * fan_in].view(-1, fan_out, fan_in)
            at += fan_out * fan_in
            views["b", layer] = params[:, at : at + fan_out].view(-1, fan_out, 1)
        last = self.n_layers - 1
        if last == 0:
            views["margin"] = (first[:, 1:], first[:, :1], None, None)
        else:
            w, b = views["w", last], views["b", last]
            views["margin"] = (w[:, 1:], w[:, :1], b[:, 1:], b[:, :1])
        self._views_of, self._views = params, views
        return views

    def weight(self, params: Tensor, layer: int) -> Tensor:
        return self.views(params)["w", layer]

    def bias(self, params: Tensor, layer: int) -> Tensor:
        return self.views(params)["b", layer]

    def first(self, params: Tensor) -> Tensor:
        return self.views(params)["first"]

    def first_t(self, params: Tensor) -> Tensor:
        """``first`` transposed: contiguous rows where ``first_transposed``."""
        return self.views(params)["first_t"]

    def state_dict(self, row) -> dict:
        """One model's weights (a row of parameters) under ``build_model``'s state-dict names."""
        row = np.asarray(row)
        out = {}
        for i, ((fan_in, fan_out), at) in enumerate(zip(zip(self.sizes[:-1], self.sizes[1:]), self.offsets)):
            if i == 0:
                block = row[at : at + fan_out * (fan_in + 1)]
                block = (block.reshape(fan_in + 1, fan_out).T if self.first_transposed
                         else block.reshape(fan_out, fan_in + 1))
                w, b = block[:, :fan_in], block[:, fan_in]
            else:
                w = row[at : at + fan_out * fan_in].reshape(fan_out, fan_in)
                b = row[at + fan_out * fan_in : at + fan_out * (fan_in + 1)]
            out[f"{2 * i}.weight"], out[f"{2 * i}.bias"] = w.copy(), b.copy()
        return out

    def load(self, params: Tensor, row: int, layer: int, w: Tensor, b: Tensor) -> None:
        self.weight(params, layer)[row] = w
        self.bias(params, layer)[row, :, 0] = b

    # ------------------------------------------------------------------ passes

    def forward(self, params: Tensor, xa: Tensor, ws: Workspace, margin: bool = False,
                rows: slice | None = None, masks: list[Tensor | None] | None = None) -> Tensor:
        """Logits ``(K, classes, m)`` of inputs ``xa`` ``(K, in + 1, m)`` (the last row ones); with
        ``margin`` (two classes) the logit difference ``l1 - l0`` ``(K, 1, m)``, all that softmax
        cross-entropy needs. ``rows``: only these models (``margin_weights`` computed for all of
        ``params``). ``masks``: each hidden layer's dropout mask, or None. Keeps each hidden layer's
        output (and pre-activation where its backward needs it, and output after dropout) in ``ws``."""
        k, m = xa.shape[0], xa.shape[2]
        part = (lambda t: t) if rows is None else (lambda t: t[rows])
        a, last = xa, self.n_layers - 1
        for layer in range(self.n_layers):
            fan_out = 1 if layer == last and margin else self.sizes[layer + 1]
            z = ws.get(f"z{layer}", k, fan_out, m)
            if layer == last and margin:
                if rows is None:
                    w, b = self.margin_weights(params, ws)
                else:
                    w = ws.get("wd", params.shape[0], 1, self.sizes[layer] + (layer == 0))[rows]
                    b = None if layer == 0 else ws.get("bd", params.shape[0], 1, 1)[rows]
                torch.bmm(w, a, out=z) if b is None else torch.baddbmm(b, w, a, out=z)
            elif layer == 0:
                torch.bmm(part(self.first(params)), a, out=z)
            else:
                torch.bmm(part(self.weight(params, layer)), a, out=z)
                z.add_(part(self.bias(params, layer)))
            if layer < last:
                act = self.act(layer)
                a = act.apply_(z, ws.get(f"a{layer}", k, fan_out, m) if act.needs_input else None)
                if masks is not None and masks[layer] is not None:
                    a = torch.mul(a, masks[layer], out=ws.get(f"o{layer}", k, fan_out, m))
        return z

    def margin_weights(self, params: Tensor, ws: Workspace) -> tuple[Tensor, Tensor | None]:
        """(w1 - w0, b1 - b0) of a two-class output layer: (K, 1, in) and (K, 1, 1); for a net
        without hidden layers (K, 1, in + 1) and None (the bias is in the augmented weights)."""
        k = params.shape[0]
        w1, w0, b1, b0 = self.views(params)["margin"]
        wd = torch.sub(w1, w0, out=ws.get("wd", k, 1, w1.shape[2]))
        return wd, None if b1 is None else torch.sub(b1, b0, out=ws.get("bd", k, 1, 1))

    def hidden(self, layer: int, ws: Workspace, k: int, m: int) -> tuple[Tensor | None, Tensor]:
        """(pre-activation or None, activation's output) of a hidden layer from the last ``forward``."""
        shape = (k, self.sizes[layer + 1], m)
        z = ws.get(f"z{layer}", *shape)
        if not self.act(layer).needs_input:  # the output overwrote z
            return None, z
        return z, ws.get(f"a{layer}", *shape)

    def passed_on(self, layer: int, ws: Workspace, k: int, m: int, masks: list[Tensor | None] | None) -> Tensor:
        """What hidden layer ``layer`` passed on in the last ``forward``: its output, after dropout."""
        if masks is not None and masks[layer] is not None:
            return ws.get(f"o{layer}", k, self.sizes[layer + 1], m)
        return self.hidden(layer, ws, k, m)[1]

    def through_hidden(self, layer: int, da: Tensor, ws: Workspace, k: int, m: int,
                       masks: list[Tensor | None] | None) -> Tensor:
        """The gradient w.r.t. what hidden ``layer`` passed on, ``da``, taken back through its dropout
        and activation to its pre-activation (in place)."""
        if masks is not None and masks[layer] is not None:
            da.mul_(masks[layer])
        z, a = self.hidden(layer, ws, k, m)
        return self.act(layer).backward_(da, z, a)

    def dropout_masks(self, seeds: list[int], epoch: int, step: int, m: int, batch_major: bool = False
                      ) -> list[Tensor | None] | None:
        """Each hidden layer's dropout mask for minibatch ``step`` of ``epoch`` (``rng.dropout_keep``):
        (K, units, m), 1 / (1 - rate) where a unit is kept, else 0; (K, m, units) if ``batch_major``;
        None for a layer without dropout, or where no layer has any."""
        if not any(self.dropouts):
            return None
        masks = []
        for layer, rate in enumerate(self.dropouts):
            if not rate:
                masks.append(None)
                continue
            keep = torch.from_numpy(rng.dropout_keep(seeds, epoch, step, layer, self.sizes[layer + 1], m, rate))
            mask = torch.zeros(keep.shape, dtype=self.dtype).masked_fill_(keep, 1 / (1 - rate))
            masks.append(mask.transpose(1, 2).contiguous() if batch_major else mask)
        return masks

    def gradients(self, params: Tensor, xa: Tensor, onehot_t: Tensor, ws: Workspace, out: Tensor,
                  masks: list[Tensor | None] | None = None) -> None:
        """Each model's gradient of its mean cross-entropy on its minibatch, into ``out`` (K, P):
        ``xa`` (K, in + 1, m) the inputs with a row of ones, ``onehot_t`` (K, classes, m), ``masks``
        the step's dropout masks (``dropout_masks``, batch-major where ``first_transposed``)."""
        k, m = params.shape[0], xa.shape[2]
        last = self.n_layers - 1
        binary = self.sizes[-1] == 2
        if self.first_transposed:
            return self._gradients_one_hidden(params, xa, onehot_t, ws, out, masks)
        parts: list[Tensor] = []
        if binary:
            # Two classes: softmax CE depends on the margin d = l1 - l0 only, and
            # d CE / d l1 = sigmoid(d) - y1 = -(d CE / d l0): one row of gradients, used twice.
            d = self.forward(params, xa, ws, margin=True, masks=masks)
            dd = d.sigmoid_().sub_(ws.derived(onehot_t, "1:")).mul_(1.0 / m)
            a_prev = xa if last == 0 else self.passed_on(last - 1, ws, k, m, masks)
            g = torch.bmm(dd, ws.derived(a_prev, "T"), out=ws.get("gw_last", k, 1, a_prev.shape[1]))
            minus_g = torch.neg(g, out=ws.get("gw_minus", k, 1, a_prev.shape[1]))
            if last == 0:
                torch.cat([ws.derived(minus_g, "flat"), ws.derived(g, "flat")], dim=1, out=out)
                return
            gb = torch.sum(dd, 2, out=ws.get("gb_last", k, 1))
            parts += [gb, torch.neg(gb, out=ws.get("gb_minus", k, 1)), ws.derived(g, "flat"),
                      ws.derived(minus_g, "flat")]
            wd = ws.get("wd", k, 1, self.sizes[last])  # w1 - w0, from the forward pass
            da = torch.mul(ws.derived(wd, "T"), dd, out=ws.get(f"dz{last - 1}", k, self.sizes[last], m))
            dz = self.through_hidden(last - 1, da, ws, k, m, masks)
            start = last - 1
        else:
            logits = self.forward(params, xa, ws, masks=masks)
            # d(mean CE)/d logits = (softmax - onehot) / m
            dz = torch.softmax(logits, dim=1, out=ws.get("dz_out", *logits.shape))
            dz.sub_(onehot_t).mul_(1.0 / m)
            start = last
        for layer in range(start, -1, -1):
            fan_in, fan_out = self.sizes[layer], self.sizes[layer + 1]
            if layer == 0:
                g = torch.bmm(dz, ws.derived(xa, "T"), out=ws.get("g0", k, fan_out, fan_in + 1))
                parts.append(ws.derived(g, "flat"))
                break
            a_prev = self.passed_on(layer - 1, ws, k, m, masks)
            gw = torch.bmm(dz, a_prev.transpose(1, 2), out=ws.get(f"gw{layer}", k, fan_out, fan_in))
            gb = torch.sum(dz, 2, out=ws.get(f"gb{layer}", k, fan_out))
            parts += [gb, gw.view(k, -1)]
            da = torch.bmm(self.weight(params, layer).transpose(1, 2), dz, out=ws.get(f"dz{layer - 1}", k, fan_in, m))
            dz = self.through_hidden(layer - 1, da, ws, k, m, masks)
        torch.cat(parts[::-1], dim=1, out=out)

    def _gradients_one_hidden(self, params: Tensor, xa: Tensor, onehot_t: Tensor, ws: Workspace,
                              out: Tensor, masks: list[Tensor | None] | None) -> None:
        """``gradients`` of in → H → 2 nets, batch-major: the hidden layer as ``(K, m, H)``, so both
        products with the thin inputs (``x @ [W | b]ᵀ`` and its gradient ``xᵀ @ dz``) have the wide
        dimension H as BLAS's contiguous one."""
        k, m, hidden = params.shape[0], xa.shape[2], self.sizes[1]
        xt = ws.derived(xa, "T")  # (K, m, in + 1)
        z = torch.bmm(xt, self.first_t(params), out=ws.get("z0", k, m, hidden))  # shares the evaluation's buffer
        act = self.act(0)
        pre = z if act.needs_input else None  # else the output overwrites z
        a = act.apply_(z, None if pre is None else ws.get("a0", k, m, hidden))
        mask = masks[0] if masks is not None else None  # (K, m, H)
        out0 = a if mask is None else torch.mul(a, mask, out=ws.get("o0", k, m, hidden))  # what is passed on
        wd, bd = self.margin_weights(params, ws)  # (K, 1, H), (K, 1, 1)
        d = torch.baddbmm(bd, wd, ws.derived(out0, "T"), out=ws.get("bmargin", k, 1, m))
        dd = d.sigmoid_().sub_(ws.derived(onehot_t, "1:")).mul_(1.0 / m)  # (K, 1, m)
        g = torch.bmm(dd, out0, out=ws.get("gw_last", k, 1, hidden))
        minus_g = torch.neg(g, out=ws.get("gw_minus", k, 1, hidden))
        gb = torch.sum(dd, 2, out=ws.get("gb_last", k, 1))
        minus_gb = torch.neg(gb, out=ws.get("gb_minus", k, 1))
        da = torch.mul(ws.derived(dd, "T"), wd, out=ws.get("bdz", k, m, hidden))
        if mask is not None:
            da.mul_(mask)
        dz = act.backward_(da, pre, a)
        g0 = torch.bmm(xa, dz, out=ws.get("g0", k, xa.shape[1], hidden))  # (K, in + 1, H): as stored
        torch.cat([ws.derived(g0, "flat"), ws.derived(minus_g, "flat"), ws.derived(g, "flat"), minus_gb, gb],
                  dim=1, out=out)

    @torch.no_grad()
    def evaluate(self, params: Tensor, xa: Tensor, y: Tensor, splits: list[int], ws: Workspace,
                 max_elements: int, out: Tensor | None = None) -> list[tuple[Tensor, Tensor]]:
        """Mean cross-entropy and accuracy (float64, one per model) on consecutive column ranges
        ``splits`` of the shared inputs ``xa`` (in + 1, N) with labels ``y`` (N,); written into
        ``out`` (K, 2 * len(splits)) if given: the losses, then the accuracies. Models are taken a few
        at a time, so that the widest activation has at most ``max_elements``."""
        k, n = params.shape[0], xa.shape[1]
        step = max(1, max_elements // (n * max(self.sizes[1:])))
        # which split each column is in: a product with it sums a row's values split by split
        members = torch.eye(len(splits), dtype=self.dtype).repeat_interleave(torch.tensor(splits), dim=0)
        sums = torch.empty(k, len(splits), dtype=self.dtype)  # of the per-point losses
        hits = torch.empty(k, len(splits), dtype=self.dtype)  # counts of correct points: exact
        two = self.sizes[-1] == 2
        if two:  # the sign that turns l1 - l0 into (other class's logit - the label's)
            sign = (1 - 2 * y).to(self.dtype)
            # hits = #(y = 1 and l1 > l0) + #(y = 0 and not l1 > l0)
            #      = (l1 > l0) @ (members * (2y - 1)) + #(y = 0): exact small integers, one op fewer
            signed_members = members * (-sign)[:, None]
            zeros_per_split = members[y == 0].sum(0)
            above = torch.empty(min(step, k), n, dtype=self.dtype)
            self.margin_weights(params, ws)  # once for all rows
        for s in range(0, k, step):
            rows = slice(s, min(s + step, k))
            x = xa.expand(rows.stop - s, *xa.shape)
            if two:
                # CE = softplus(l_other - l_label); argmax = 1 iff l1 > l0 (ties go to class 0)
                d = self.forward(params, x, ws, margin=True, rows=rows)[:, 0]
                nll = F.softplus(d * sign, threshold=50)
                torch.mm(nll, members, out=sums[s : s + step])
                above_rows = torch.gt(d, 0, out=above[: len(x)])  # 1.0 where l1 > l0
                torch.addmm(zeros_per_split, above_rows, signed_members, out=hits[s : s + step])
                continue
            logits = self.forward(params, x, ws, rows=rows)
            nll = F.cross_entropy(logits, y.expand(len(x), n), reduction="none")
            correct = argmax_classes(logits) == y
            torch.mm(nll, members, out=sums[s : s + step])
            torch.mm(correct.to(self.dtype), members, out=hits[s : s + step])
        m = len(splits)
        out = torch.empty(k, 2 * m, dtype=torch.float64) if out is None else out
        count = torch.tensor(splits, dtype=torch.float64)
        losses = torch.div(sums.double(), count, out=out[:, :m])
        bad = (~torch.isfinite(losses).all(1)).nonzero().flatten()
        for s in range(0, len(bad), step):  # NaN logits: count hits with torch's argmax semantics
            rows = bad[s : s + step]
            logits = self.forward(params[rows], xa.expand(len(rows), *xa.shape), ws)
            hits[rows] = torch.mm((argmax_classes(logits) == y).to(self.dtype), members)
        accs = torch.div(hits.double(), count, out=out[:, m:])
        return [(losses[:, j], accs[:, j]) for j in range(m)]


def argmax_classes(logits: Tensor) -> Tensor:
    """``logits.argmax(dim=1)`` for (K, classes, N), a class at a time (torch's reduction over a short
    middle dimension is far slower); the first maximum wins, and NaN counts as the maximum, as in torch."""
    best, index = logits[:, 0], torch.zeros(logits.shape[0], logits.shape[2], dtype=torch.long)
    for c in range(1, logits.shape[1]):
        value = logits[:, c]
        better = (value > best) | (value.isnan() & ~best.isnan())
        index.masked_fill_(better, c)
        best = torch.where(better, value, best)
    return index


def augmented_t(X: Tensor) -> Tensor:
    """(in + 1, N): the inputs as columns, with a row of ones (for ``[W | b]``)."""
    return torch.cat([X.T, torch.ones(1, len(X), dtype=X.dtype)]).contiguous()
