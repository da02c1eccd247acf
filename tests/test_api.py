"""The public API the notebooks use: `import trainlab as tl`, nothing deeper."""

import math
import subprocess
import sys
import textwrap

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

import trainlab as tl


@pytest.fixture(scope="module")
def short_run():
    cfg = tl.experiment("first_training_loop", seeds=1).at({"optim.name": "adam", "optim.lr": 0.01, "train.epochs": 3})
    return cfg, tl.train(cfg, seed=0)


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    cfg = tl.experiment("activations", seeds=3, overrides=["train.epochs=5"])
    return tl.run(cfg, out=tmp_path_factory.mktemp("api") / "out", plots=False)


def test_everything_in_all_is_there():
    for name in tl.__all__:
        assert getattr(tl, name) is not None, name


def test_experiment_loads_a_builtin_config_with_seeds_and_overrides():
    cfg = tl.experiment("depth", seeds=4, overrides=["train.epochs=7"])
    assert cfg.seeds == 4 and cfg.train.epochs == 7
    assert cfg.experiment_name == "depth" and "model.hidden" in cfg.grid
    with pytest.raises(tl.BadInput, match="unknown experiment"):
        tl.experiment("nope")


def test_at_is_one_setting_without_the_grid():
    cfg = tl.experiment("first_training_loop")
    one = cfg.at({"optim.name": "adam", "optim.lr": 0.01})
    assert one.optim.name == "adam" and one.optim.lr == 0.01 and one.grid == {}
    assert one.data == cfg.data
    with pytest.raises(tl.BadInput, match="optim.lr"):
        cfg.at({"optim.lr": -1.0})


def test_run_result_model_predicts_like_the_trained_weights(short_run):
    cfg, result = short_run
    model = result.model()
    data = tl.make_dataset(cfg.data)
    logits = model(torch.tensor(data.X_val))
    acc = (logits.argmax(1).numpy() == data.y_val).mean()
    assert acc == pytest.approx(result.history["val_acc"][-1], abs=1e-9)


def test_rebuilding_a_model_leaves_torchs_global_generator_alone(short_run):
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    short_run[1].model()
    assert torch.equal(torch.rand(3), expected)


def test_example_xor_csv_is_the_xor_experiments_data():
    assert tl.EXAMPLE_XOR_CSV.is_file()
    assert tl.experiment("xor_sgd_vs_adam").data.path == str(tl.EXAMPLE_XOR_CSV.resolve())


def test_planted_bugs_are_named_and_described():
    bugs = tl.planted_bugs()
    assert "gradient-ascent" in bugs and all(bugs.values())
    assert not tl.gradcheck(bug="no-activation-derivative").ok


def test_backprop_and_scalar_demo_are_public():
    demo = tl.scalar_demo()
    assert demo.analytic == demo.autograd == 19.5
    assert tl.Backprop("relu").activation == "relu"


def test_plots_draw_on_given_or_new_axes(short_run):
    cfg, result = short_run
    data = tl.make_dataset(cfg.data)
    fig, axes = plt.subplots(1, 2)
    assert tl.plot_boundary(result, data, ax=axes[0], split="val") is axes[0]
    assert tl.plot_boundary(result.model(), data, ax=axes[1]) is axes[1]
    ax = tl.plot_data(data)
    assert len(ax.collections) == 2 * data.n_classes  # classes × (train, val)
    ax = tl.plot_history({"adam": result, "again": [result, result]})
    assert len(ax.get_lines()) == 4 and ax.get_ylabel() == "cross-entropy loss"
    ax = tl.plot_history(result, columns=["lr"])
    assert ax.get_ylabel() == "learning rate"
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), result.history["lr"])
    with pytest.raises(ValueError, match="split"):
        tl.plot_data(data, split="everything")
    plt.close("all")


def test_plot_data_shows_every_point_of_a_regression_data_set():
    data = tl.make_dataset(tl.RunConfig(name="r", data={"name": "plane", "task": "regression", "n_samples": 200,
                                                        "split": [0.6, 0.2, 0.2]}).data)
    ax = tl.plot_data(data)
    drawn = [c.get_offsets() for c in ax.collections]
    assert sum(len(d) for d in drawn) == 200  # train, val and test, each coloured by its target
    np.testing.assert_array_equal(ax.collections[0].get_array(), data.y_train)
    plt.close("all")


def test_results_summary_settings_finding_and_figures(results):
    summary = results.summary()
    assert [r["setting"] for r in summary.rows] == ["sigmoid", "tanh", "relu"]
    relu = summary.rows[2]
    runs = [r for r in results.runs() if r["grid"]["model.activation"] == "relu"]
    assert relu["seeds"] == 3
    assert relu["final_val_loss"].mean == pytest.approx(np.mean([r["final_val_loss"] for r in runs]))
    assert "test_acc" not in summary.metrics  # no test split
    text = str(summary)
    assert text.splitlines()[0].split()[:2] == ["setting", "seeds"] and "relu" in text
    assert "<table>" in summary._repr_html_()

    ss = results.settings("activations")
    p = tl.welch_p(ss[0].values("final_val_loss"), ss[2].values("final_val_loss"))
    assert 0 <= p <= 1
    assert "val loss" in results.finding("activations")
    figures = results.figures("activations")
    assert set(figures) == {"loss", "boundary", "confusion"}
    assert results.config("activations").train.epochs == 5
    with pytest.raises(tl.BadInput, match="no experiment"):
        results.config("depth")
    plt.close("all")


def test_results_reopens_an_output_directory(results):
    again = tl.Results(results.out_dir)
    assert again.experiments() == ["activations"]
    assert str(again.summary()) == str(results.summary())


def test_mean_ci_is_public():
    e = tl.mean_ci([1.0, 2.0, 3.0])
    assert e.mean == 2.0 and math.isfinite(e.ci)


def test_diagnosis_and_gradcheck_show_what_the_cli_prints(capsys):
    tl.gradcheck(bug="gradient-ascent").show()
    assert "UPHILL" in capsys.readouterr().out
    cfg = tl.experiment("overfit_check", seeds=1).at({"train.epochs": 5})
    tl.diagnose(cfg, epochs=5).show()
    assert "can overfit" in capsys.readouterr().out


def test_using_trainlab_leaves_the_garbage_collector_as_it_found_it():
    # nothing of the caller's frozen, nothing the caller froze released
    script = textwrap.dedent("""
        import gc
        class Node: pass
        nodes = [Node() for _ in range(1000)]
        for n in nodes: n.me = n
        frozen = (gc.freeze(), gc.get_freeze_count())[1] if FREEZE else 0
        import trainlab
        trainlab.train  # the first use of the API imports torch and the rest
        # (frozen objects freed by reference counting meanwhile leave the count a little lower)
        assert gc.isenabled() and frozen // 2 <= gc.get_freeze_count() <= frozen, (gc.get_freeze_count(), frozen)
        del nodes, n
        assert gc.collect() >= (0 if FREEZE else 1000)
    """)
    for freeze in (False, True):
        subprocess.run([sys.executable, "-c", f"FREEZE = {freeze}\n" + script], timeout=120, check=True)


def test_import_trainlab_imports_torch_on_first_use_and_exports_stay_functions():
    script = textwrap.dedent("""
        import sys
        import trainlab as tl
        assert "torch" not in sys.modules and "sklearn" not in sys.modules
        import trainlab.train, trainlab.gradcheck  # submodules of the same names as two exports
        assert callable(tl.train) and callable(tl.gradcheck) and "torch" in sys.modules
        assert set(tl.__all__) <= set(dir(tl))
        for name in tl.__all__:
            getattr(tl, name)
    """)
    subprocess.run([sys.executable, "-c", script], timeout=120, check=True)
