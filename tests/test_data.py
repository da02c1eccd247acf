import tracemalloc

import numpy as np
import pytest
from sklearn.datasets import make_circles, make_moons

from trainlab.config import FIXED_DATASETS, DataConfig
from trainlab.data import FIXED, FUNCTIONS, generate, load_csv, make_dataset, write_csv
from trainlab.errors import BadInput


def test_moons_equal_sklearn():
    X, y = generate(DataConfig(name="moons", n_samples=600, noise=0.25, seed=42))
    X_ref, y_ref = make_moons(n_samples=600, noise=0.25, random_state=42)
    np.testing.assert_array_equal(X, X_ref)
    np.testing.assert_array_equal(y, y_ref)


def test_circles_equal_sklearn():
    X, _ = generate(DataConfig(name="circles", n_samples=300, noise=0.1, seed=3))
    np.testing.assert_array_equal(X, make_circles(n_samples=300, noise=0.1, factor=0.5, random_state=3)[0])


def test_xor_labels_follow_signs_without_noise():
    X, y = generate(DataConfig(name="xor", n_samples=500, noise=0.0, seed=1))
    assert X.min() >= -1 and X.max() <= 1
    np.testing.assert_array_equal(y, (X[:, 0] > 0) ^ (X[:, 1] > 0))


@pytest.mark.parametrize("name, k", [("spiral", 3), ("blobs", 4), ("gaussian", 2)])
def test_generators_make_k_balanced_classes(name, k):
    cfg = DataConfig(name=name, n_samples=300, n_classes=k if name != "gaussian" else None)
    _, y = generate(cfg)
    assert sorted(set(y.tolist())) == list(range(k))
    assert np.bincount(y).min() >= 300 // k - 1


def test_split_sizes_stratified_and_scaled_on_train_only():
    data = make_dataset(DataConfig(n_samples=1000, split=[0.8, 0.1, 0.1]))
    assert (len(data.y_train), len(data.y_val), len(data.y_test)) == (800, 100, 100)
    assert abs(data.y_val.mean() - 0.5) < 0.02
    np.testing.assert_allclose(data.X_train.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(data.X_train.std(axis=0), 1, atol=1e-12)
    assert np.abs(data.X_val.mean(axis=0)).max() > 1e-6  # val was not used to fit the scaler
    np.testing.assert_allclose(data.prepare(data.raw_val), data.X_val)


def test_scale_on_all_reproduces_course_004s_arrays_bit_for_bit():
    # Course 004's own code path: the scaler fitted on all 600 points, then a stratified 70/30 split.
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    X, y = make_moons(n_samples=600, noise=0.25, random_state=42)
    X_scaled = StandardScaler().fit_transform(X)
    X_train, X_test, y_train, y_test = train_test_split(X_scaled, y, test_size=0.3, random_state=42, stratify=y)

    course = make_dataset(DataConfig(name="moons", n_samples=600, noise=0.25, seed=42, scale_on="all"))
    for ours, theirs in ((course.X_train, X_train), (course.X_val, X_test), (course.y_train, y_train),
                         (course.y_val, y_test)):
        assert ours.dtype == theirs.dtype and np.array_equal(ours, theirs)
    assert np.array_equal(course.prepare(X), X_scaled)  # a plotting grid is scaled as the course scales it

    # trainlab's default fits on the training split only: the same rows, scaled by their own mean and std
    default = make_dataset(DataConfig(name="moons", n_samples=600, noise=0.25, seed=42))
    assert np.array_equal(default.raw_train, course.raw_train)
    assert np.allclose(default.X_train.mean(axis=0), 0, atol=1e-12)
    assert 0.01 < np.abs(default.X_train - X_train).max() < 0.1  # not the course's numbers


def test_split_is_seeded_by_data_seed():
    a = make_dataset(DataConfig(seed=1))
    b = make_dataset(DataConfig(seed=1))
    np.testing.assert_array_equal(a.X_train, b.X_train)


def test_minmax_scaling():
    data = make_dataset(DataConfig(scale="minmax"))
    np.testing.assert_allclose(data.X_train.min(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(data.X_train.max(axis=0), 1, atol=1e-12)


def test_feature_transforms():
    data = make_dataset(DataConfig(name="xor", features=["x1", "x2", "x1*x2", "x1^2", "sin(x2)"], scale="none"))
    assert data.in_dim == 5
    raw = data.raw_train
    np.testing.assert_allclose(data.X_train[:, 2], raw[:, 0] * raw[:, 1])
    np.testing.assert_allclose(data.X_train[:, 3], raw[:, 0] ** 2)
    np.testing.assert_allclose(data.X_train[:, 4], np.sin(raw[:, 1]))


def test_unknown_feature_is_bad_input():
    with pytest.raises(BadInput, match="x3"):
        make_dataset(DataConfig(features=["x1", "x3"]))


def test_csv_round_trip_with_any_number_of_features_and_classes(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(90, 3))
    y = np.arange(90) % 3
    path = tmp_path / "p.csv"
    write_csv(path, X, y)
    data = make_dataset(DataConfig(name="csv", path=str(path)))
    assert data.in_dim == 3 and data.n_classes == 3
    assert data.columns == ["x1", "x2", "x3"]


def test_csv_custom_columns(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("a,b,label\n" + "".join(f"{i},{-i},{'cat' if i % 2 else 'dog'}\n" for i in range(20)))
    data = make_dataset(DataConfig(name="csv", path=str(path), target="label", features=["b"]))
    assert data.in_dim == 1 and data.n_classes == 2


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("x1,x2\n1,2\n", "no column 'y'"),
        ("x1,x2,y\n1,abc,0\n2,2,1\n", "row 2, column 'x2': 'abc' is not a number"),
        ("x1,x2,y\n1,2,0\n1,nan,1\n", "row 3, column 'x2': 'nan' is not a finite number"),
        ("x1,x2,y\n1,2,0\n3,4,0\n5,6,0\n", "single class"),
        ("x1,x2,y\n", "no data rows"),
        ("x1,x2,y\n1,2\n", "row 2 has 2 cells, expected 3"),
        ("x1,y,x2,y\n1,0,2,0\n", "names the column 'y' twice; expected each column once"),
        ("x1\tx2\ty\n1\t2\t0\n", "separated by tabs; trainlab reads comma-separated columns"),
        ("x1;x2;y\n1;2;0\n", "separated by semicolons (';'); trainlab reads comma-separated columns"),
        ("x1,x2,y\n" + "".join(f"{i},{i},{i / 7}\n" for i in range(400)),
         'holds real numbers such as 0.14285714285714285, not classes: for a real-valued target set '
         'data.task = "regression"'),
    ],
)
def test_bad_csv(tmp_path, text, fragment):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(BadInput) as e:
        load_csv(path)
    assert fragment in str(e.value) and str(path) in str(e.value)


def test_a_bad_regression_target_is_named_by_its_line_in_the_file(tmp_path):
    path = tmp_path / "targets.csv"
    path.write_text("x1,x2,y\n1,2,0.5\n\n3,4,high\n")
    with pytest.raises(BadInput, match=r"row 4, column 'y': 'high' is not a number"):
        load_csv(path, regression=True)


def test_a_float_target_message_is_one_short_line(tmp_path):
    path = tmp_path / "floats.csv"
    path.write_text("x1,x2,y\n" + "".join(f"{i},{i},{i / 7}\n" for i in range(400)))
    with pytest.raises(BadInput) as e:
        load_csv(path)
    assert len(str(e.value)) < 200 + len(str(path))
    assert load_csv(path, regression=True)[1][1] == 1 / 7


def test_long_class_labels_cost_their_own_size_not_the_longest_ones_in_every_row(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("x1,x2,y\n" + f"0,0,{'a' * 50_000}\n" + "1,1,b\n" * 2_000)
    tracemalloc.start()
    try:
        _, y, _, classes = load_csv(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert classes == ["a" * 50_000, "b"] and y.tolist() == [0] + [1] * 2_000
    assert peak < 20e6  # a str array of 2,001 labels of 50,000 characters would be 400 MB


def test_csv_with_too_few_rows_for_the_split(tmp_path):
    path = tmp_path / "few.csv"
    path.write_text("x1,x2,y\n0,0,0\n1,1,1\n2,2,0\n")
    with pytest.raises(BadInput, match="data.split"):
        make_dataset(DataConfig(name="csv", path=str(path), split=[0.8, 0.1, 0.1]))


def test_missing_csv(tmp_path):
    with pytest.raises(BadInput, match="CSV file not found"):
        make_dataset(DataConfig(name="csv", path=str(tmp_path / "none.csv")))


def test_shipped_xor_csv_loads():
    from trainlab.data import EXAMPLE_XOR_CSV

    X, y, columns, _ = load_csv(EXAMPLE_XOR_CSV)
    assert columns == ["x1", "x2"] and len(y) >= 200 and set(y.tolist()) == {0, 1}


@pytest.mark.parametrize("scale, scaler", [("standard", "StandardScaler"), ("minmax", "MinMaxScaler")])
def test_inputs_are_scaled_as_scikit_learn_scales_them(scale, scaler):
    import sklearn.preprocessing

    cfg = DataConfig(name="circles", n_samples=400, scale=scale, features=["x1", "x2", "x1^2", "x1*x2", "sin(x2)"])
    data = make_dataset(cfg)
    rng = np.random.default_rng(0)
    grid = rng.uniform(-3, 3, size=(500, 2))
    fitted = getattr(sklearn.preprocessing, scaler)().fit(data.prepare.features(data.raw_train))
    # bit for bit: the same operations in the same order as the scaler's transform
    np.testing.assert_array_equal(data.prepare(grid), fitted.transform(data.prepare.features(grid)))
    np.testing.assert_array_equal(data.X_train, fitted.transform(data.prepare.features(data.raw_train)))


def test_a_dataset_pickles_whole():
    import pickle

    data = make_dataset(DataConfig(name="moons", features=["x1", "x2", "x2^2"], split=[0.6, 0.2, 0.2]))
    back = pickle.loads(pickle.dumps(data))
    for name in ("X_train", "y_train", "X_val", "y_val", "X_test", "y_test", "raw_train", "raw_val", "raw_test"):
        np.testing.assert_array_equal(getattr(back, name), getattr(data, name))
    grid = np.linspace(-2, 2, 40).reshape(20, 2)
    np.testing.assert_array_equal(back.prepare(grid), data.prepare(grid))
    assert (back.n_classes, back.columns, back.features, back.task) == (2, ["x1", "x2"], ["x1", "x2", "x2^2"],
                                                                        "classification")


# ---------------------------------------------------------------------------- real and function data


@pytest.mark.parametrize("name", FIXED_DATASETS)
def test_fixed_data_sets_are_scikit_learns_with_the_sizes_trainlab_list_gives(name):
    from sklearn import datasets as skd

    bunch = getattr(skd, f"load_{name}")()
    X, y = generate(DataConfig(name=name))
    assert np.array_equal(X, bunch.data) and np.array_equal(y, bunch.target)
    info = FIXED[name]
    assert (info.rows, info.inputs, info.classes) == (len(X), X.shape[1], len(set(y)))
    data = make_dataset(DataConfig(name=name, split=[0.6, 0.2, 0.2]))
    assert len(data.y_train) + len(data.y_val) + len(data.y_test) == info.rows  # every row, in three parts
    assert data.in_dim == info.inputs and data.n_classes == info.classes
    assert len(data.columns) == info.inputs and all(c.isidentifier() for c in data.columns)
    assert data.class_names == [str(c) for c in bunch.target_names]


def test_fixed_data_set_columns_name_features():
    data = make_dataset(DataConfig(name="iris", features=["petal_length_cm", "petal_width_cm^2"]))
    assert data.in_dim == 2


@pytest.mark.parametrize("key, value", [("noise", 0.1), ("n_samples", 100), ("n_classes", 3)])
def test_generator_options_are_refused_for_fixed_data_sets(cli, tmp_path, key, value):
    from conftest import assert_bad_input

    result = cli("data", "wine", "--set", f"{key}={value}", "--out", tmp_path / "w.csv")
    assert_bad_input(result, f"data.{key}", "'wine' is a fixed data set")
    assert not (tmp_path / "w.csv").exists()


def test_the_registries_of_data_sets_and_curves_agree():
    from trainlab.config import DATASETS, FUNCTIONS as CURVE_NAMES

    assert tuple(FIXED) == FIXED_DATASETS and set(FIXED_DATASETS) <= set(DATASETS)
    assert tuple(FUNCTIONS) == CURVE_NAMES


@pytest.mark.parametrize("function", list(FUNCTIONS))
def test_function_data_is_labelled_by_the_side_of_the_curve(function):
    X, y = generate(DataConfig(name="function", function=function, noise=0.0, n_samples=400))
    curve = FUNCTIONS[function]
    assert np.array_equal(y, (X[:, 1] > curve(X[:, 0])).astype(int))
    assert 0.2 < y.mean() < 0.8  # both sides of the curve hold points
    noisy, labels = generate(DataConfig(name="function", function=function, n_samples=400))
    assert np.array_equal(labels, y) and not np.array_equal(noisy, X)  # noise moves points, not labels


def test_an_unknown_curve_is_one_line_naming_the_choices(cli, tmp_path):
    from conftest import assert_bad_input

    result = cli("data", "function", "--set", "function=tan", "--out", tmp_path / "f.csv")
    assert_bad_input(result, "data.function", "'sin'", "'step'", "tan")
    result = cli("data", "moons", "--set", "function=sin", "--out", tmp_path / "f.csv")
    assert_bad_input(result, "data.function applies to data.name = 'function'")


def test_trainlab_list_shows_each_data_set_with_its_size_and_classes(cli):
    out = cli("list").out
    from trainlab.config import DATASETS

    for name in DATASETS:
        assert any(line.split()[:1] == [name] for line in out.splitlines()), name
    assert "1797 rows, 64 inputs, 10 classes" in out and "150 rows, 4 inputs, 3 classes" in out


def test_trainlab_data_writes_the_data_sets_column_names(cli, tmp_path):
    assert cli("data", "iris", "--out", tmp_path / "iris.csv").code == 0
    X, y, columns, labels = load_csv(tmp_path / "iris.csv")
    assert columns == ["sepal_length_cm", "sepal_width_cm", "petal_length_cm", "petal_width_cm"]
    assert X.shape == (150, 4) and set(y) == {0, 1, 2} and labels is None


def test_the_digits_example_reaches_95_percent_test_accuracy_on_each_of_5_seeds(tmp_path):
    from conftest import ROOT
    from trainlab.config import load_config
    from trainlab.runner import run

    cfg = load_config(ROOT / "examples" / "digits.toml")
    assert cfg.seed_list == [0, 1, 2, 3, 4] and cfg.data.name == "digits"
    runs = run(cfg, out=tmp_path / "out", plots=False).runs()
    assert len(runs) == 5
    assert min(r["test_acc"] for r in runs) >= 0.95, [r["test_acc"] for r in runs]
    assert min(r["test_macro_f1"] for r in runs) >= 0.95


MADE_ASIDE = """
import sys
import numpy as np
from trainlab.config import config_from_dict
from trainlab.data import DataCache, make_dataset
from trainlab.errors import BadInput

cfg = config_from_dict({"name": "a", "data": {"name": "moons", "n_samples": 300},
                        "grid": {"data.noise": [0.1, 0.3], "optim.lr": [0.1, 0.01]}})
bad = config_from_dict({"name": "b", "data": {"name": "csv", "path": "no-such.csv"}})
with DataCache.made_aside([cfg, bad]) as data_for:
    made = [data_for(cfg.at({"data.noise": noise})) for noise in (0.1, 0.3)]
    print("sklearn imported here:", "sklearn" in sys.modules)
    try:
        data_for(bad)
    except BadInput as e:
        print("bad:", e)
for noise, data in zip((0.1, 0.3), made):
    again = make_dataset(cfg.at({"data.noise": noise}).data)
    assert all(np.array_equal(getattr(data, a), getattr(again, a)) for a in ("X_train", "y_train", "X_val", "raw_val"))
    assert np.array_equal(data.prepare(again.raw_val), again.X_val)
print("equal")
"""


def test_data_sets_made_aside_equal_those_made_here_and_this_process_never_imports_sklearn(tmp_path):
    """`trainlab run` and `lab` have their data sets made in a second process while torch imports."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", MADE_ASIDE], cwd=tmp_path, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "sklearn imported here: False"
    assert lines[1].startswith("bad: ") and "no-such.csv" in lines[1]
    assert lines[2] == "equal"


HELPER_FAILS = """
import subprocess, sys
import trainlab.data as D
from trainlab.config import config_from_dict

real = subprocess.Popen
D.subprocess.Popen = lambda args, **kw: real([sys.executable, "-c", "import sys; sys.exit(3)"], **kw)
cfg = config_from_dict({"name": "a", "data": {"n_samples": 100}})
with D.DataCache.made_aside([cfg]) as data_for:
    print(len(data_for(cfg).X_train))
"""


def test_a_data_helper_that_fails_leaves_the_data_sets_to_be_made_here(tmp_path):
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", HELPER_FAILS], cwd=tmp_path, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "70", out.stderr


def test_the_data_helper_ignores_modules_in_the_current_directory(tmp_path):
    """A user's own sklearn.py (or another checkout's trainlab) beside their config is not what the helper imports."""
    import subprocess
    import sys

    (tmp_path / "sklearn.py").write_text("open('imported-here', 'w').close()\nraise ImportError('not scikit-learn')\n")
    script = ("import sys\nfrom trainlab.config import config_from_dict\nfrom trainlab.data import DataCache\n"
              "cfg = config_from_dict({'name': 'a', 'data': {'n_samples': 100}})\n"
              "with DataCache.made_aside([cfg]) as data_for:\n    print(len(data_for(cfg).X_train), 'sklearn' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.split() == ["70", "False"], out.stderr
    assert not (tmp_path / "imported-here").exists()
