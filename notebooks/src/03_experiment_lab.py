# %% [markdown]
# # Lab 3 — The experiment lab: what does each knob do?
#
# Activations, initialisation, depth, optimizers, learning rates: each is a knob with a textbook
# answer ("ReLU trains faster than sigmoid", "Adam converges faster than SGD"). In this lab you
# *test* those answers on the two-moons data — and you test them properly:
#
# * **one change at a time**: every experiment varies a single setting and keeps the data, the
#   network and the training budget fixed;
# * **many seeds**: each setting is trained from 10 different random initialisations and batch
#   orders, because a single run can be lucky or unlucky;
# * **honest comparisons**: each setting is reported as mean ± 95% confidence interval, and two
#   settings differ *beyond noise* only if Welch's t-test says so (p < 0.05).
#
# That is 30–110 training runs per experiment. trainlab's **population engine** trains all the
# models of one shape at once, as batched tensors, so each experiment takes seconds.
#
# Cells marked **Exercise** are for you. Write your answer in the cell below the question.

# %%
import math
import tempfile
from pathlib import Path

import numpy as np
from IPython.display import display

import trainlab as tl

SEEDS = 10
OUT = Path(tempfile.mkdtemp(prefix="trainlab-lab3-"))  # where the runs are stored; any directory works


def lab(name):
    """Run a built-in experiment over SEEDS seeds, then show its table, its finding and its figures."""
    cfg = tl.experiment(name, seeds=SEEDS)
    print(cfg.description)
    results = tl.run(cfg, engine="population", out=OUT / name, plots=False)
    display(results.summary())
    print("Finding:", results.finding(name))
    results.figures(name)  # the figures appear below the cell
    return results


def claim_vs_measurement(results, name, metric, better, worse, claim):
    """The course's claim that setting `better` beats `worse` (lower `metric`), and what these runs measured."""
    by_label = {s.label: s for s in results.settings(name)}
    a, b = by_label[better], by_label[worse]
    ea, eb = a.estimate(metric), b.estimate(metric)
    p = tl.welch_p(a.values(metric), b.values(metric))
    if p < 0.05:
        verdict = ("the measurement agrees with the course" if ea.mean < eb.mean else
                   f"the measurement DISAGREES with the course: {worse} beats {better}, beyond seed noise")
    elif ea.mean < eb.mean:
        verdict = f"{better} ends lower on average, as the course expects, but within seed noise"
    else:
        verdict = (f"the measurement does not support the course: {worse} ends lower on average, though these "
                   "seeds cannot tell the two apart (within noise)")
    print(f"The course: {claim}")
    print(f"Measured ({metric}, mean ± 95% CI over {len(a.runs)} seeds): {better} {ea.mean:.3f} ± {ea.ci:.3f}, "
          f"{worse} {eb.mean:.3f} ± {eb.ci:.3f} (Welch p = {p:.2g})")
    print(f"→ {verdict}.")


# %% [markdown]
# How to read what `lab` shows:
#
# * **The table**: the final metrics of each setting, mean ± 95% confidence interval over the
#   seeds. Two intervals that do not overlap are a clear difference; overlapping ones need the
#   test.
# * **The finding**: a paragraph written by trainlab *from these numbers* (it is not a stored
#   text): the settings ranked, and for neighbours whether the gap is beyond seed noise.
# * **The loss curves**: the mean over seeds as a line, ±1 standard deviation as a band (the
#   spread of single runs).
# * **The decision boundaries**: one typical seed per setting (the one with the median
#   validation loss).
#
# All experiments use the same data: 600 moons points with noise 0.25, standardised, split 70/30
# into training and validation, stratified by class.
#
# One difference from the course's notebook, on purpose: trainlab fits the scaler (the mean and
# standard deviation of each input) on the **training split only** (`data.scale_on = "train"`,
# the default), while the course fits it on all 600 points before splitting. Fitting on all
# points lets the validation points shape the training inputs — a small leak of held-out
# information, which grows with fewer points or a shifted validation set. Here the two scalings
# differ by this much:

# %%
moons = tl.experiment("activations").data
ours, course = tl.make_dataset(moons), tl.make_dataset(moons.model_copy(update={"scale_on": "all"}))
print(f"largest difference between the two scalings: {np.abs(ours.X_train - course.X_train).max():.3f} "
      f"(train rows), {np.abs(ours.X_val - course.X_val).max():.3f} (val rows)")

# %% [markdown]
# — small against the noise of the data, so the findings below do not depend on it. To reproduce
# the course's arrays bit for bit, set `data.scale_on = "all"` (in a config, or
# `--set data.scale_on=all`).

# %% [markdown]
# ## 1. Activations: sigmoid vs tanh vs ReLU
#
# A 2 → 32 → 2 network, plain SGD at lr 0.05 for 150 epochs; only the hidden activation changes.
# Sigmoid squashes into (0, 1) and its slope is at most 0.25; tanh is zero-centred with slope up
# to 1; ReLU has slope exactly 1 wherever it is active.

# %%
activations = lab("activations")

# %% [markdown]
# **Exercise 1.1.** Using the per-seed numbers, not the finding: is the gap between the best
# and the worst activation beyond seed noise? `activations.settings("activations")` returns the
# settings in grid order; each has `.label`, `.values(metric)` (one value per seed) and
# `.estimate(metric)` (mean and CI). Use `tl.welch_p`. Then explain the ranking.

# %% student
# your code here

# %% solution
metric = "final_val_loss"
ranked = sorted(activations.settings("activations"), key=lambda s: s.estimate(metric).mean)
best, worst = ranked[0], ranked[-1]
for s in ranked:
    e = s.estimate(metric)
    print(f"{s.label:8s} val loss {e.mean:.4f} ± {e.ci:.4f}")
print(f"{best.label} vs {worst.label}: Welch p = {tl.welch_p(best.values(metric), worst.values(metric)):.2g}")

# %% [markdown] solution
# **Answer.** ReLU is best and sigmoid worst, far beyond seed noise (a tiny p-value; the
# intervals do not come close). With the same learning rate and epochs sigmoid simply has not got
# as far: its derivative is at most 0.25 and its outputs are not centred at 0, so the gradients
# that reach the first layer are small and the steps short — its boundary is still almost a
# straight line (compare its validation loss with logistic regression's in section 3). Tanh
# (slope up to 1, zero-centred) lies in between; ReLU (slope exactly 1 where active) bends its
# boundary fastest. Whether each neighbouring gap is beyond noise is what the finding tests.

# %% [markdown]
# ## 2. Initialisation: He vs too small vs too large
#
# A deeper ReLU network, 2 → 64 → 64 → 2, SGD at lr 0.01 for 120 epochs. Three ways to draw the
# initial weights: **He** (normal with $\sigma = \sqrt{2/\text{fan-in}}$, designed for ReLU),
# **small** ($\sigma = 10^{-3}$) and **large** ($\sigma = 1$). Judged on the training loss: the
# question is whether the optimizer gets going at all.

# %%
initialization = lab("initialization")

# %% [markdown]
# The course expects He to beat the too-large initialisation. What the runs above say:

# %%
claim_vs_measurement(initialization, "initialization", "final_train_loss", "he", "large",
                     "He initialisation keeps ReLU training healthy; too-large weights (std 1) cause saturation "
                     "or exploding activations.")

# %% [markdown]
# **Exercise 2.1.** One setting's training loss barely moves from its starting value. Which one,
# and what is that value? (Compare it with $\ln 2$.) Explain why it is stuck, and why the
# *large* initialisation is not stuck although it is also "wrong".

# %% student
# your code here

# %% solution
for s in initialization.settings("initialization"):
    train, val = s.estimate("final_train_loss"), s.estimate("final_val_loss")
    print(f"{s.label:6s} final train loss {train.mean:.4f} ± {train.ci:.4f}, val loss {val.mean:.4f} ± {val.ci:.4f}"
          f"   (ln 2 = {math.log(2):.4f})")

# %% [markdown] solution
# **Answer.** The *small* initialisation stays at ≈ ln 2 = 0.693, the loss of a coin flip: with
# weights of $10^{-3}$ every activation is nearly 0, the output is the same for every input, and
# the gradient of each layer is multiplied by the tiny weights of all layers above it — with two
# hidden layers that is a factor of ~$10^{-6}$, so nothing moves (vanishing gradients).
#
# The *large* one is not stuck — on this network it ends, on average, at least as low as He (the
# comparison above says whether the gap is beyond noise; its seeds spread widely). Two reasons: for
# the first layer $\sigma = 1$ *is* He's scale (fan-in 2: $\sqrt{2/2} = 1$), and only the later
# layers (fan-in 64, He $\sigma \approx 0.18$) are ~6× too large. That makes the network start
# with large logits — confident random predictions, a high initial loss — but also with large
# gradients, so at this small learning rate (0.01) it takes bigger effective steps than He.
# With more layers, or a larger learning rate, too-large weights make activations and gradients
# grow layer after layer until training blows up; He's scale is the one that keeps the signal's
# size constant through any number of ReLU layers.

# %% [markdown]
# ## 3. Depth: logistic regression vs one vs two hidden layers
#
# Same data, SGD at lr 0.05 for 150 epochs. No hidden layer is logistic regression: its
# decision boundary is a straight line. Look at the decision boundaries first.

# %%
depth = lab("depth")

# %% [markdown]
# **Exercise 3.1.** How much validation accuracy does the *first* hidden layer add, and how much
# the *second*? Answer with the mean difference of `final_val_acc` and a p-value for each step.
# Is the second step worth it on this data?

# %% student
# your code here

# %% solution
ss = depth.settings("depth")  # grid order: logistic regression, 1 hidden layer, 2 hidden layers
for a, b in zip(ss, ss[1:]):
    gain = b.estimate("final_val_acc").mean - a.estimate("final_val_acc").mean
    p = tl.welch_p(a.values("final_val_acc"), b.values("final_val_acc"))
    print(f"{a.label} → {b.label}: {gain * 100:+.1f} points of val accuracy (Welch p = {p:.2g})")

# %% [markdown] solution
# **Answer.** The first hidden layer makes the big difference: a curved boundary can follow the
# moons, a line cannot, and that is several points of accuracy, far beyond noise. The second
# layer adds less; whether its gain is beyond noise is what its p-value says. On two noisy moons
# the ceiling is the noise in the data (points of one class deep in the other), so extra
# capacity has little left to win; part of the gain is also speed — in the same 150 epochs the
# deeper network gets further. More depth pays off when the boundary itself is more complex.

# %% [markdown]
# ## 4. Optimizers: SGD vs momentum vs Adam
#
# 2 → 32 → 2 ReLU, all three at the same learning rate 0.05, 80 epochs. Judged on the training
# loss; the finding also says how fast each one gets as far as the slowest one gets in total.

# %%
optimizers = lab("optimizers")

# %% [markdown]
# **Exercise 4.1.** Adam and momentum are often said to be "faster". Measure it: for each
# optimizer, the first epoch at which the *mean* training loss over the seeds falls below
# 0.3. `optimizers.curves("optimizers")` maps each setting's group to its runs' histories (each
# a dict of arrays: `h["train_loss"][e - 1]` is epoch `e`); the settings' `.runs[0]["group"]` is
# the key.

# %% student
# your code here

# %% solution
curves = optimizers.curves("optimizers")
for s in optimizers.settings("optimizers"):
    mean = np.mean([h["train_loss"] for h in curves[s.runs[0]["group"]]], axis=0)
    below = np.flatnonzero(mean < 0.3)
    print(f"{s.label:9s}", f"mean train loss < 0.3 from epoch {below[0] + 1}" if len(below) else "never below 0.3")

# %% [markdown] solution
# **Answer.** Momentum and Adam reach the mark within a few epochs, plain SGD much later (or not
# within 80 epochs) — at the *same* learning rate. Momentum builds up speed along directions the
# gradient keeps pointing to; Adam also rescales each weight's step. Beware the fine print:
# "faster at lr 0.05" is not "better at its best learning rate" — a fair race tunes each
# optimizer's rate (exercise 5.2).

# %% [markdown]
# ## 5. Learning rates: a sweep
#
# Plain SGD, 2 → 32 → 2 ReLU, 80 epochs, at eleven learning rates from 0.001 to 10 (evenly spaced
# on a log scale). The sweep plot shows the final loss against the learning rate.

# %%
learning_rates = lab("learning_rates")

# %% [markdown]
# The course compares SGD at lr 0.05 ("a reasonable one") with lr 0.5 ("a too-large one"). What
# the sweep says about these two, and where training actually becomes unstable:

# %%
claim_vs_measurement(learning_rates, "learning_rates", "final_train_loss", "lr=0.05", "lr=0.5",
                     "lr 0.05 is a reasonable rate for SGD here; lr 0.5 is too large: the loss oscillates or "
                     "diverges.")

# How much each rate's loss bounces: in how many epochs it rose, and how far above its own lowest
# loss it ended (the median run; diverged runs count as unstable).
curves = learning_rates.curves("learning_rates")
unstable = []
for s in learning_rates.settings("learning_rates"):
    losses = [h["train_loss"] for h in curves[s.runs[0]["group"]]]
    rising = np.median([np.sum(np.diff(h) > 0) for h in losses])
    above = np.nanmedian([h[-1] / np.nanmin(h) - 1 for h in losses])
    if s.diverged or above > 0.1:
        unstable.append(s.label)
    print(f"{s.label:9s} loss rose from one epoch to the next {rising:4.1f} times, ended {above:6.1%} above its lowest"
          + (f", {s.diverged} seeds diverged" if s.diverged else ""))
print(f"→ unstable (a typical run ends more than 10% above its own lowest loss, or seeds diverged) only at "
      f"{', '.join(unstable) or 'no rate of the sweep'}.")

# %% [markdown]
# **Exercise 5.1.** Describe the shape of final loss against learning rate. Why is the loss
# high at *both* ends, and for different reasons? Did any seeds diverge, and at which rates?
# (`s.diverged` counts the diverged seeds of a setting.)

# %% student
# your code here

# %% solution
for s in learning_rates.settings("learning_rates"):
    e = s.estimate("final_train_loss")
    print(f"{s.label:9s} final train loss {e.mean:8.4f} ± {e.ci:.4f}   diverged: {s.diverged} of {len(s.runs)}")

# %% [markdown] solution
# **Answer.** A U (or the left part of one): at tiny rates the loss has barely moved in 80
# epochs — too small a step, too few steps; it falls as the rate grows, is lowest at an
# intermediate rate, and rises again at the largest rates, where each step overshoots the
# valley and the loss bounces around (or blows up: diverged seeds are listed, and the finding
# counts them). The best rate is much larger than the "safe" textbook default — and it is a
# property of this network, data and budget, so it has to be measured, not assumed.

# %% [markdown]
# **Exercise 5.2.** A fairer optimizer race: run the `optimizers` experiment at a smaller rate
# where Adam is usually happiest, lr 0.005, with `tl.run(tl.experiment("optimizers", seeds=SEEDS,
# overrides=["optim.lr=0.005"]), engine="population", out=OUT / "optimizers-lr0.005", plots=False)`
# and read its finding. Does the ranking change?

# %% student
# your code here

# %% solution
slower = tl.run(tl.experiment("optimizers", seeds=SEEDS, overrides=["optim.lr=0.005"]), engine="population",
                out=OUT / "optimizers-lr0.005", plots=False)
display(slower.summary())
print("Finding:", slower.finding("optimizers"))

final = {(lr, s.label): s.estimate("final_train_loss") for lr, results in ((0.05, optimizers), (0.005, slower))
         for s in results.settings("optimizers")}
for key in ((0.05, "sgd"), (0.005, "momentum")):
    print(f"{key[1]:8s} at lr {key[0]:<5g}: final train loss {final[key].mean:.4f} ± {final[key].ci:.4f}")

# %% [markdown] solution
# **Answer.** Compare the two findings: all three are slower at 0.005, but by very different
# amounts. Adam changes least — it scales each weight's step by the size of its recent
# gradients, so the learning rate matters less. And momentum at 0.005 ends about where plain
# SGD ended at 0.05: with momentum $\beta = 0.9$ a steady gradient builds up steps
# $1/(1-\beta) = 10$ times the learning rate, so "momentum beats SGD at the same rate" largely
# means "a 10× larger effective rate wins". A claim "optimizer A beats optimizer B" needs both at
# their own best rate — a sweep like section 5 for each.

# %% [markdown]
# ## 6. Checking the gradients: the course's TinyNet
#
# The course ends with a numerical gradient check on a tiny network: 2 → 2 → 1 with tanh, one
# input $(0.5, -1)$ with target 1, and the **mean squared error** — a regression loss with a
# single output. `tl.gradcheck(course_004=True)` checks exactly that network (the same initial
# weights as the course's `torch.manual_seed(0); TinyNet()`): trainlab's backprop by hand, which
# for MSE starts from $\partial L/\partial \hat y = 2(\hat y - y)/N$, against central differences
# in float64 and against autograd. (`trainlab gradcheck --course-004` does the same on the
# command line; `--set data.task=regression --set data.name=plane` checks any regression net.)

# %%
tl.gradcheck(course_004=True).show()

# %% [markdown]
# **Exercise 6.1.** The course computes its numerical gradients in **float32** with
# $\varepsilon = 10^{-4}$ and prints the largest difference from autograd per parameter. Do the
# same with the network of `model, X, y = course_tinynet()` (`from trainlab.gradcheck import
# course_tinynet`; its loss is `torch.nn.functional.mse_loss(model(X)[:, 0], y)`) converted to
# float32. How large are the differences, next to those of the float64 check above — and why?

# %% student
# your code here

# %% solution
import torch
import torch.nn.functional as F

from trainlab.gradcheck import course_tinynet

model, X, y = course_tinynet()
model, X, y = model.float(), X.float(), y.float()
loss = F.mse_loss(model(X)[:, 0], y)
loss.backward()
eps = 1e-4
for name, p in model.named_parameters():
    numerical = torch.zeros_like(p)
    with torch.no_grad():
        for i in range(p.numel()):
            original = p.view(-1)[i].item()
            p.view(-1)[i] = original + eps
            up = F.mse_loss(model(X)[:, 0], y).item()
            p.view(-1)[i] = original - eps
            down = F.mse_loss(model(X)[:, 0], y).item()
            p.view(-1)[i] = original
            numerical.view(-1)[i] = (up - down) / (2 * eps)
    print(f"{name:9s} max |autograd − numerical| = {(p.grad - numerical).abs().max().item():.1e}")

# %% [markdown] solution
# **Answer.** In float32 the differences are many orders of magnitude larger than the ~$10^{-11}$
# of the float64 check (the numbers above). Nothing is wrong with the gradients: float32 keeps
# about 7 significant digits, so the loss (≈ 0.7) is stored with an error of ~$10^{-8}$, and
# the central difference divides the difference of two such losses by $2\varepsilon = 2\cdot
# 10^{-4}$, which turns that rounding into an error of ~$10^{-4}$ in the worst case. A smaller
# $\varepsilon$ makes it worse, a larger one adds truncation error. That is why gradient checks
# run in float64 (16 digits), where $\varepsilon = 10^{-5}$ leaves errors near $10^{-11}$, and
# why they compare *relative* errors against a threshold.

# %% [markdown]
# **Exercise 6.2.** Plant each bug into the TinyNet's check, `tl.gradcheck(course_004=True,
# bug=name)` (skip `wrong-probabilities`: it is a bug of the cross-entropy loss, and this net's
# loss is MSE). Which bugs does the check catch, and which slip through? Why — and what does it
# teach about the batch and the network you check gradients on?

# %% student
# your code here

# %% solution
from trainlab.gradcheck import bug_losses

for name in tl.planted_bugs():
    if "mse" not in bug_losses(name):
        continue
    result = tl.gradcheck(course_004=True, bug=name)
    caught = "caught" if not result.ok else "SLIPS THROUGH"
    print(f"{name:26s} {caught:14s} wrong: {', '.join(result.wrong) or '—':36s} downhill: {result.descent.ok}")

# %% [markdown] solution
# **Answer.** `bias-mean` and `no-batch-mean` slip through: both get the $1/N$ of the batch
# mean wrong, and with a single sample $N = 1$, so dividing by it once more, or not at all,
# changes nothing. `w1-shape` is caught, but not by a shape error: $W_1$ is 2 × 2 here, so
# swapping its dimensions fits and silently transposes it; central differences agree with the
# hand-made gradient (both see the transposed weights) and only autograd, on the weights as
# meant, disagrees. A gradient check is only as good as its test case: use a batch of several
# rows (trainlab uses 16) and layers of different widths, so that each slip has a chance to
# show.

# %% [markdown]
# ## Summary
#
# * Sigmoid hidden units learn slowest, tanh a little faster, ReLU clearly the fastest.
# * Initialisation decides whether a deeper network learns at all: too small and the gradients
#   vanish, He keeps the signal's scale through ReLU layers.
# * One hidden layer turns a straight boundary into a curve; more layers help only when the
#   problem needs a more complex boundary.
# * At a fixed learning rate momentum and Adam are much faster than plain SGD — but compare
#   optimizers at their own best rates.
# * Final loss against learning rate is U-shaped: measure the sweet spot.
# * A claim from a course (or a paper) is a hypothesis: sections 2 and 5 printed, from these
#   runs, where two of the course's claims and the measurements part ways.
# * Check gradients in float64, on a batch of several rows: a one-sample check of a square
#   network misses whole classes of bugs.
# * Every statement above came with a number, an interval over seeds and a test. Make that a
#   habit: with one seed, half of these "findings" could have come out the other way.
#
# On the command line, `trainlab lab` runs all of these (and the experiments of labs 1 and 2)
# and writes an HTML report with the same tables, findings and figures.
