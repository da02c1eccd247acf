# %% [markdown]
# # Lab 1 — Your first training loop
#
# A neural network learns by repeating four steps: **predict** (forward pass), **measure** how
# wrong the prediction is (the loss), **attribute** the error to every weight (the backward pass,
# which gives the gradient), and **nudge** each weight against its gradient (the optimizer step).
# In this lab you will
#
# 1. compute a gradient three ways — by hand, numerically and with PyTorch's autograd — and see
#    that they agree;
# 2. train a small multi-layer perceptron (MLP) on the two-moons data with **SGD** and **Adam**;
# 3. read loss curves, accuracy and the decision boundary;
# 4. run the **debugging checklist** on a healthy and on a broken training run.
#
# We use [trainlab](../README.md) for the bookkeeping (data, models, training, plots) so the
# notebook can stay about the ideas. Everything is seeded: running the notebook again gives the
# same numbers.
#
# Cells marked **Exercise** are for you. Write your answer in the cell below the question.

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch

import trainlab as tl

torch.set_num_threads(1)  # these networks are tiny: one thread runs them faster than several

# %% [markdown]
# ## 1. A gradient, three ways
#
# Take one number $x$ and the function
#
# $$y = \frac{(3x + 2)^2}{2}.$$
#
# **By hand (the chain rule).** Write it as two steps, $u = 3x + 2$ and $y = u^2 / 2$. Then
# $\frac{dy}{du} = u$ and $\frac{du}{dx} = 3$, and the chain rule multiplies the local
# derivatives along the path from $x$ to $y$:
#
# $$\frac{dy}{dx} = \frac{dy}{du}\cdot\frac{du}{dx} = 3\,(3x + 2).$$
#
# **Numerically.** Nudge $x$ a little both ways and measure the slope:
# $\frac{dy}{dx} \approx \frac{y(x+h) - y(x-h)}{2h}$ (a *central difference*).
#
# **With autograd.** PyTorch records every operation on a tensor created with
# `requires_grad=True`; `y.backward()` then walks that record backwards applying the chain rule,
# and leaves $\frac{dy}{dx}$ in `x.grad`. Backpropagation in a network is this, for millions of
# numbers at once.

# %%
def f(x):
    return (3 * x + 2) ** 2 / 2


x0, h = 1.5, 1e-6
analytic = 3 * (3 * x0 + 2)
numerical = (f(x0 + h) - f(x0 - h)) / (2 * h)

x = torch.tensor(x0, requires_grad=True)
y = f(x)
y.backward()

print(f"y({x0}) = {y.item()}")
print(f"dy/dx by hand      : {analytic}")
print(f"dy/dx numerically  : {numerical}")
print(f"dy/dx by autograd  : {x.grad.item()}")

# %% [markdown]
# trainlab keeps the same demo as a check (it computes in float64, so its central difference is
# closer still):

# %%
tl.scalar_demo(x=1.5)

# %% [markdown]
# ### Three common autograd mistakes
#
# Each cell below makes one on purpose, catches the error it raises and prints it, so you can
# read the message you would get.
#
# **1. `requires_grad` left off.** Autograd records only operations on tensors that ask for it.
# If nothing in the computation does, there is no graph and `backward()` refuses; if one input
# does and another does not, the other's `.grad` stays `None`.

# %%
x = torch.tensor(x0)  # requires_grad left off
y = f(x)
print("y.requires_grad:", y.requires_grad, "| y.grad_fn:", y.grad_fn)
try:
    y.backward()
except RuntimeError as error:
    print("RuntimeError:", error)

w = torch.tensor(3.0, requires_grad=True)  # y = (w x + 2)² / 2: w asks for a gradient, x does not
y = (w * x + 2) ** 2 / 2
y.backward()
print("w.grad:", w.grad.item(), "| x.grad:", x.grad)

# %% [markdown]
# **2. `backward()` twice on the same graph.** To save memory, `backward()` frees the values the
# graph kept for the backward pass (here $u = 3x + 2$, which $dy/du = u$ needs) as soon as it
# has used them. A second call finds them gone. `retain_graph=True` keeps them — and the second
# call then *adds* its gradient to the first (exercise 1.2 comes back to that).

# %%
x = torch.tensor(x0, requires_grad=True)
y = f(x)
y.backward()
try:
    y.backward()
except RuntimeError as error:
    print("RuntimeError:", str(error).split(".")[0] + ".")

x = torch.tensor(x0, requires_grad=True)
y = f(x)
y.backward(retain_graph=True)
y.backward()
print("with retain_graph=True both calls run; x.grad =", x.grad.item(), "= 2 × 19.5")

# %% [markdown]
# **3. `.item()` in the middle of a computation.** `.item()` turns a one-number tensor into a
# Python float: the float has no record of how it was computed, so the gradient cannot flow
# back through it to $x$. (Using `.item()` to *print* or *log* a loss is fine: that is what it
# is for.)

# %%
x = torch.tensor(x0, requires_grad=True)
u = (3 * x + 2).item()  # a Python float: the graph from x ends here
y = torch.tensor(u) ** 2 / 2
print("u is a", type(u).__name__, "| y.requires_grad:", y.requires_grad)
try:
    y.backward()
except RuntimeError as error:
    print("RuntimeError:", error)
print("x.grad:", x.grad)

# %% [markdown]
# **Exercise 1.1.** The numerical estimate depends on the step $h$. Compute it for
# $h = 10^{-1}, 10^{-3}, \dots, 10^{-13}$ and compare with the exact 19.5. Which $h$ is best, and
# why does a *smaller* $h$ eventually make the estimate *worse*?

# %% student
# your code here

# %% solution
for k in range(1, 14, 2):
    step = 10.0**-k
    estimate = (f(x0 + step) - f(x0 - step)) / (2 * step)
    print(f"h = 1e-{k:<2d}  estimate = {estimate:.12f}  error = {abs(estimate - 19.5):.1e}")

# %% [markdown] solution
# **Answer.** For this quadratic the central difference has no truncation error at all (the
# $h^2$ term of the Taylor series vanishes), so the only error is **round-off**: $f(x\pm h)$ are
# about 21 and are stored with ~16 significant digits, so their difference carries an absolute
# error of ~$10^{-15}$, which division by $2h$ blows up to ~$10^{-15}/h$. Large $h$ is
# therefore best here, and at $h = 10^{-13}$ the estimate is off by about 0.004. For a general function the
# truncation error ~$h^2$ grows with $h$, and the best step balances the two — around
# $h \approx 10^{-5}$ in float64, which is what `tl.gradcheck` uses.

# %% [markdown]
# **Exercise 1.2.** Run `y = f(x); y.backward()` **twice** on the same `x` (re-creating `y`
# each time) and print `x.grad` after each call. What do you see, and why does every training
# loop call `optimizer.zero_grad()` before `loss.backward()`?

# %% student
# your code here

# %% solution
x = torch.tensor(x0, requires_grad=True)
for call in (1, 2):
    f(x).backward()
    print(f"after backward call {call}: x.grad = {x.grad.item()}")

# %% [markdown] solution
# **Answer.** 19.5, then 39.0: `backward()` **adds** into `.grad` instead of overwriting it
# (useful when a gradient is the sum over several pieces of a computation). In a training loop
# the gradients of every batch would pile up and each step would use the sum of all past
# gradients — so the loop clears them first with `optimizer.zero_grad()`.

# %% [markdown]
# ## 2. The data: two moons
#
# Two interleaving half-circles with noise, one class each. No straight line separates them,
# so a linear model cannot do well — a small MLP can. The data settings come from trainlab's
# built-in experiment `first_training_loop`: 1,200 points, noise 0.2, 80% for training and 20%
# held out for **validation** (data the model never trains on, to measure how well it
# generalises).

# %%
cfg = tl.experiment("first_training_loop", seeds=1)
print(cfg.description)
print(cfg.data)

data = tl.make_dataset(cfg.data)
print("train:", data.X_train.shape, data.y_train.shape, " val:", data.X_val.shape, data.y_val.shape)
tl.plot_data(data, title="two moons: circles = train, triangles = val");

# %% [markdown]
# **Exercise 2.1.** How many points of each class are in the training split? What validation
# accuracy does a "model" get that always predicts the more frequent class? (Keep this number in
# mind: it is the bar every real model has to clear.)

# %% student
# your code here

# %% solution
print("train class counts:", np.bincount(data.y_train))
val_counts = np.bincount(data.y_val)
print("val class counts:  ", val_counts)
print(f"always predicting the majority class: val accuracy {val_counts.max() / val_counts.sum():.3f}")

# %% [markdown] solution
# **Answer.** The classes are about balanced (moons draws half of each), so the majority-class
# baseline is close to 50%. A model at ~50% validation accuracy has learned nothing.

# %% [markdown]
# ## 3. The model: an MLP
#
# `model.hidden = [32, 32]` means two hidden layers of 32 units with ReLU between them:
# `Linear(2→32) → ReLU → Linear(32→32) → ReLU → Linear(32→2)`. The last layer outputs two
# **logits**, one score per class; softmax turns them into probabilities, and the predicted
# class is the larger one.

# %%
model = tl.build_model(cfg.model, data.in_dim, data.n_classes, generator=torch.Generator().manual_seed(0))
print(model)
print("parameters:", sum(p.numel() for p in model.parameters()))

# %% [markdown]
# **Exercise 3.1.** Derive the number of parameters by hand (a `Linear(a→b)` has a weight
# matrix and a bias vector). Which layer holds most of them?

# %% [markdown] solution
# **Answer.** A `Linear(a→b)` has $a\cdot b$ weights and $b$ biases:
# $2\cdot32+32 = 96$, $32\cdot32+32 = 1056$, $32\cdot2+2 = 66$; in total **1,218**. The middle
# layer holds 87% of them: parameters grow with the *product* of neighbouring widths.

# %% [markdown]
# ## 4. The training loop
#
# This is the loop inside `tl.train`, written out. One **epoch** is one pass over the training
# data in shuffled mini-batches of 64; each batch gets the four steps. After the epoch we
# evaluate on the whole training and validation sets, with gradients switched off.

# %%
def train_by_hand(model, optimizer, epochs, batch_size=64, seed=0, print_every=1, zero_grad=True):
    X, y = torch.tensor(data.X_train, dtype=torch.float32), torch.tensor(data.y_train)
    X_val, y_val = torch.tensor(data.X_val, dtype=torch.float32), torch.tensor(data.y_val)
    loss_fn = torch.nn.CrossEntropyLoss()
    order_rng = torch.Generator().manual_seed(seed)
    for epoch in range(1, epochs + 1):
        order = torch.randperm(len(X), generator=order_rng)
        for start in range(0, len(X), batch_size):
            batch = order[start:start + batch_size]
            if zero_grad:                           # (exercise 4.1 switches this off)
                optimizer.zero_grad()               # forget the previous batch's gradients
            loss = loss_fn(model(X[batch]), y[batch])  # 1. predict, 2. measure
            loss.backward()                         # 3. attribute: fill p.grad for every parameter
            optimizer.step()                        # 4. nudge: p -= lr * p.grad (for SGD)
        if epoch % print_every == 0:
            with torch.no_grad():
                val_acc = (model(X_val).argmax(dim=1) == y_val).float().mean().item()
                grad_norm = torch.cat([p.grad.flatten() for p in model.parameters()]).norm().item()
            print(f"epoch {epoch:2d}  last batch loss {loss.item():.3f}  val accuracy {val_acc:.3f}  "
                  f"gradient norm {grad_norm:.2f}")


model = tl.build_model(cfg.model, data.in_dim, data.n_classes, generator=torch.Generator().manual_seed(0))
train_by_hand(model, torch.optim.SGD(model.parameters(), lr=0.05), epochs=5)

# %% [markdown]
# **Exercise 4.1.** What if the loop forgets `optimizer.zero_grad()`? Exercise 1.2 told you what
# that changes; predict the effect on training first. Then train a fresh model (seed 0) for 30
# epochs with `zero_grad=False`, printing every 3rd epoch, next to one trained correctly. What
# happens to the loss, the accuracy and the gradient norm, and why?

# %% student
# your code here

# %% solution
for zero_grad in (True, False):
    print(f"zero_grad={zero_grad}")
    model = tl.build_model(cfg.model, data.in_dim, data.n_classes, generator=torch.Generator().manual_seed(0))
    train_by_hand(model, torch.optim.SGD(model.parameters(), lr=0.05), epochs=30, print_every=3, zero_grad=zero_grad)

# %% [markdown] solution
# **Answer.** Each step now uses the sum of *all* gradients so far. At first that even
# helps: the sum points roughly downhill and grows, like momentum that never forgets, so the
# accuracy rises *faster* than with the correct loop. But the sum keeps the direction of every
# old gradient and keeps growing (watch the gradient norm), so the model cannot settle into a
# minimum: later the loss spikes and the accuracy jumps around instead of improving steadily.
# Nothing crashes and the first epochs look fine — which is why this bug is so easy to miss.

# %% [markdown]
# ## 5. Training with `tl.train`: SGD
#
# `tl.train(config, seed)` runs the loop above and records, after every epoch, the training and
# validation loss and accuracy, the learning rate and the gradient norm. `cfg.at({...})` picks
# one setting of the experiment (dotted keys, as in the config file).

# %%
sgd = tl.train(cfg.at({"optim.name": "sgd", "optim.lr": 0.05}), seed=0)
summary = sgd.summary()
print(f"{sgd.epochs_run} epochs in {summary['seconds']:.1f} s: "
      f"train accuracy {summary['final_train_acc']:.3f}, val accuracy {summary['final_val_acc']:.3f}")
tl.plot_history(sgd, title="SGD, lr 0.05: train (solid) and val (dashed) loss");

# %% [markdown]
# How to read a loss curve:
#
# * **Both fall and level off together** — the model learns what generalises. Here it does.
# * **Train keeps falling, val turns up** — overfitting: the model memorises the training
#   points. Stop earlier, or use a smaller model or more data.
# * **Both flat** — nothing is learned: the learning rate is too small (or too large, with
#   dead units), or the pipeline is broken (see section 7).
# * **Spiky or rising** — the learning rate is too large.
#
# The **decision boundary** shows what the network has learned: the colour is the predicted
# probability of class 1, the black line where it is 0.5.

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 4))
tl.plot_boundary(sgd, data, ax=axes[0], split="train", title="SGD: training points")
tl.plot_boundary(sgd, data, ax=axes[1], split="val", title="SGD: validation points")
plt.show()

# %% [markdown]
# ## 6. SGD versus Adam
#
# **SGD** moves every weight by the same multiple of its gradient: $\theta \leftarrow \theta -
# \eta\,\nabla_\theta L$. It needs a well-chosen learning rate $\eta$.
#
# **Adam** keeps, per weight, a running mean of the gradient (momentum: smooths out the noise of
# mini-batches) and of its square (a scale: weights with small gradients get larger steps), and
# moves by their ratio. It is usually less sensitive to the learning rate and fast early on;
# typical rates are around $10^{-3}$ to $10^{-2}$, much smaller than SGD's.
#
# Let us compare four settings from the same initial weights (seed 0).

# %%
settings = {
    "sgd lr=0.01": {"optim.name": "sgd", "optim.lr": 0.01},
    "sgd lr=0.05": {"optim.name": "sgd", "optim.lr": 0.05},
    "adam lr=0.001": {"optim.name": "adam", "optim.lr": 0.001},
    "adam lr=0.01": {"optim.name": "adam", "optim.lr": 0.01},
}
runs = {label: tl.train(cfg.at(values), seed=0) for label, values in settings.items()}

fig, axes = plt.subplots(1, 2, figsize=(12, 4))
tl.plot_history(runs, columns=["val_loss"], ax=axes[0], title="validation loss")
tl.plot_history(runs, columns=["val_acc"], ax=axes[1], title="validation accuracy")
plt.show()
for label, run in runs.items():
    s = run.summary()
    print(f"{label:14s} final val loss {s['final_val_loss']:.3f}  val accuracy {s['final_val_acc']:.3f}")

# %% [markdown]
# **Exercise 6.1.** "Adam is faster" — by how much, here? For each setting, find the first epoch
# at which the validation loss drops below 0.1 (or report that it never does). Use
# `run.history["val_loss"]`, a list with one value per epoch (epoch 1 first).

# %% student
# your code here

# %% solution
for label, run in runs.items():
    below = [epoch for epoch, v in enumerate(run.history["val_loss"], start=1) if v < 0.1]
    print(f"{label:14s}", f"val loss < 0.1 from epoch {below[0]}" if below else "never below 0.1")

# %% [markdown] solution
# **Answer.** Adam at lr 0.01 gets there within a few epochs and Adam at 0.001 several times
# later, while neither SGD setting gets there within 50 epochs (SGD at 0.05 ends just above).
# Note what this does *and does not* show: the learning rate matters as much as the optimizer
# (a 10× smaller rate makes Adam several times slower), and one seed is one sample (exercise
# 6.2).

# %% [markdown]
# **Exercise 6.2.** One training run is one draw of the initial weights and the batch order.
# Train "sgd lr=0.05" and "adam lr=0.01" with seeds 0 to 4 and report the final validation
# accuracy of each as mean ± 95% confidence interval (`tl.mean_ci(values)` returns an estimate
# with `.mean` and `.ci`). Is the difference between the two larger than the spread over seeds?
# (`tl.welch_p(a, b)` gives the p-value of Welch's t-test.)

# %% student
# your code here

# %% solution
accs = {}
for label in ("sgd lr=0.05", "adam lr=0.01"):
    accs[label] = [tl.train(cfg.at(settings[label]), seed=s).summary()["final_val_acc"] for s in range(5)]
    e = tl.mean_ci(accs[label])
    print(f"{label:14s} val accuracy {e.mean:.3f} ± {e.ci:.3f}  (seeds: {np.round(accs[label], 3)})")
print(f"Welch's t-test: p = {tl.welch_p(*accs.values()):.3f}")

# %% [markdown] solution
# **Answer.** Both reach about 97% validation accuracy after 50 epochs, and the intervals
# overlap: on *final* accuracy these five seeds cannot tell the two apart (a large p-value). The
# real difference is speed (exercise 6.1), not where they end up. Notebook 3 asks every question
# this way — many seeds, an interval, a test — because a single run can easily mislead.

# %% [markdown]
# ## 7. When training goes wrong: the debugging checklist
#
# When a network does not learn, go through these checks in order:
#
# | symptom | likely cause | first thing to try |
# | --- | --- | --- |
# | loss becomes `nan` or explodes | learning rate too large | lower it 10× |
# | loss flat from the start | learning rate too small, or bad initialisation | raise the rate; He/Xavier init |
# | gradients tiny in the first layer | vanishing gradients (saturating units, tiny weights) | ReLU, He init, fewer layers |
# | many ReLU units always 0 ("dead") | too large steps pushed them off | lower the rate, leaky ReLU |
# | val accuracy stuck near chance | nothing learned, or labels/inputs broken | the checks above, then the data |
# | train loss falls, val loss rises | overfitting | stop early, regularise, more data |
# | cannot fit 100 training points | a bug in the model, loss or loop | fix it before anything else |
#
# The last one is the best sanity check there is: any working model and loop can memorise a
# tiny data set. `tl.diagnose(config)` runs the whole checklist: it trains briefly with extra
# measurements switched on, runs a learning-rate range test and the 100-point check, and reports
# each item with its evidence and what to try. First, the best run of section 6, Adam at lr
# 0.01 with about 98% validation accuracy:

# %%
good = tl.diagnose(cfg.at({"optim.name": "adam", "optim.lr": 0.01}))
good.show()

# %% [markdown]
# Even a run with high accuracy can have something to report. Read the evidence column, not
# just the verdict: if "val loss follows train loss" is flagged, the validation loss was lowest
# many epochs before the end and has risen since, while the training loss kept falling — the
# model is becoming *over-confident* on the few validation points it gets wrong, the first sign
# of overfitting, long before accuracy shows it. The suggestion (stop near the best epoch, or
# early stopping) is exactly the "consider early stopping" of the checklist.

# %% [markdown]
# Now a broken one: the same network with its weights initialised **far too small**
# (`model.init = "small"`: normal with standard deviation 0.001).

# %%
broken_cfg = cfg.at({"optim.name": "sgd", "optim.lr": 0.05, "model.init": "small"})
broken = tl.diagnose(broken_cfg)
broken.show()
print("faults:", [f.check for f in broken.faults])

# %% [markdown]
# **Exercise 7.1.** Explain *why* tiny initial weights stop learning in a network with two
# hidden layers (hint: what is the gradient of the loss with respect to a first-layer weight
# made of?). Then apply the doctor's suggestion and show that the run becomes healthy.

# %% student
# your code here

# %% solution
fixed = tl.diagnose(broken_cfg.at({"model.init": "he"}))
fixed.show()
print("healthy:", fixed.healthy, "| faults left:", [f.check for f in fixed.faults])

# %% [markdown] solution
# **Answer.** By the chain rule, the gradient reaching a first-layer weight is a product that
# contains the weights of every later layer ($\partial L/\partial W_1$ goes through $W_2$ and
# $W_3$). With all weights ~$10^{-3}$ every hidden activation is ~0, the output is ~0 for every
# input (loss ≈ ln 2, a coin flip), and the gradient of the first layer is shrunk by the tiny
# weights of every layer above it — the doctor measured it four orders of magnitude below the
# last layer's: the weights barely move, so the network stays where it started. He initialisation scales the weights to the layer width
# ($\sigma = \sqrt{2/\text{fan-in}}$) so that signals keep their size through ReLU layers, and
# training proceeds normally. (Some checks can remain notes rather than faults — e.g. a few dead
# units — read the evidence, not just the verdict.)

# %% [markdown]
# **Exercise 7.2.** Make the doctor report an *exploding* loss (the first item of the checklist): which single
# setting do you change, and what does the doctor suggest?

# %% student
# your code here

# %% solution
exploding = tl.diagnose(cfg.at({"optim.name": "adam", "optim.lr": 100.0}), epochs=20)
exploding.show()

# %% [markdown] solution
# **Answer.** A learning rate far too large — here Adam at lr 100. The steps overshoot so far
# that the loss shoots up by orders of magnitude (or becomes `nan`), and the first check fails;
# the doctor skips the checks that would read a blown-up run and suggests a smaller rate, taken
# from its learning-rate range test.

# %% [markdown]
# ## Summary
#
# * A gradient can be checked three ways; autograd is the chain rule, automated.
# * The loop is always: `zero_grad` → forward → loss → `backward` → `step`.
# * Read the loss curves of train **and** validation together; judge accuracy against the
#   majority-class baseline.
# * The learning rate matters as much as the choice of optimizer; Adam is usually faster early.
# * One seed is an anecdote: compare settings over several seeds.
# * When training fails, go through the checklist — `tl.diagnose` (or `trainlab doctor
#   CONFIG.toml` on the command line) does it for you.
#
# Next: **Lab 2** opens the black box of `loss.backward()` and writes backpropagation by hand.
