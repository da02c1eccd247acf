"""The finding's sentences from runs whose seeds diverged, and from a single setting."""

import math

import numpy as np

from trainlab.findings import summarize, write_finding


def run(group, grid, seed, status="ok", loss=0.3):
    diverged = status == "diverged"
    return {"run_id": f"e/{group}/seed={seed}", "experiment": "e", "group": group, "seed": seed, "grid": grid,
            "status": status, "epochs_run": 5, "best_epoch": 5,
            "final_train_loss": math.nan if diverged else loss, "final_val_loss": math.nan if diverged else loss,
            "final_train_acc": math.nan if diverged else 0.9, "final_val_acc": math.nan if diverged else 0.9,
            "best_val_acc": 0.9, "test_acc": None}


def curve(values):
    return {"epoch": np.arange(1, len(values) + 1), "train_loss": np.asarray(values, dtype=float)}


def test_a_setting_whose_first_seed_diverged_is_judged_on_its_other_seeds():
    sgd = [run("optim.name=sgd", {"optim.name": "sgd"}, s, loss=0.5 + s / 100) for s in range(3)]
    adam = [run("optim.name=adam", {"optim.name": "adam"}, 0, "diverged"),
            *(run("optim.name=adam", {"optim.name": "adam"}, s, loss=0.2 + s / 100) for s in (1, 2))]
    curves = {"optim.name=sgd": [curve([0.7, 0.6, 0.5])] * 3,
              "optim.name=adam": [curve([0.7, math.nan]), curve([0.7, 0.4, 0.2]), curve([0.7, 0.3, 0.2])]}
    text = write_finding("e", sgd + adam, 3, curves=curves)
    assert "adam: 1 of 3 seeds diverged" in text and "the numbers use the other 2" in text
    # the speed line averages adam's two finite curves (first at or below sgd's final 0.5 at epoch 2)
    assert "adam at epoch 2, sgd at epoch 3" in text
    assert "nan" not in text


def test_a_setting_every_seed_of_which_diverged_has_no_speed():
    ok = [run("optim.name=sgd", {"optim.name": "sgd"}, s) for s in range(2)]
    gone = [run("optim.name=adam", {"optim.name": "adam"}, s, "diverged") for s in range(2)]
    curves = {"optim.name=sgd": [curve([0.7, 0.3])] * 2, "optim.name=adam": [curve([0.7, math.inf])] * 2}
    text = write_finding("e", ok + gone, 2, curves=curves)
    assert "adam: 2 of 2 seeds diverged" in text and "sgd at epoch 2" in text and "adam at" not in text


def test_a_one_setting_finding_reads_as_a_sentence():
    runs = [run("e", {}, s, loss=0.25) for s in range(3)]
    text = write_finding("e", runs, 5)
    assert text.startswith("At epoch 5, val loss (mean ± 95% CI over 3 seeds): 0.25 ± 0.00.")
    assert "all runs" not in text and "): ." not in text


def test_every_run_diverged():
    text = write_finding("e", [run("e", {}, 0, "diverged")], 5)
    assert text == ("Every run diverged before epoch 5, so there is no val loss to compare. 1 of 1 seeds diverged "
                    "(the loss became NaN/inf or rose far above its start).")


def test_the_summary_table_says_what_its_plus_minus_is():
    text = str(summarize([run("e", {}, s) for s in range(3)]))
    assert "val loss (mean ± 95% CI)" in text.splitlines()[0]
