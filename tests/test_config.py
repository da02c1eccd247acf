import pytest

from trainlab.config import RunConfig, apply_overrides, config_from_dict, expand, load_config
from trainlab.errors import BadInput

from conftest import assert_bad_input


def test_three_line_config_runs_on_defaults(write_config):
    cfg = load_config(write_config('name = "tiny"\n[data]\nname = "circles"\n'))
    assert cfg.data.name == "circles"
    assert cfg.model.hidden == [32] and cfg.optim.name == "sgd" and cfg.train.epochs == 100


def test_overrides_are_toml_typed():
    raw = apply_overrides({}, ["model.hidden=[16,16]", "optim.lr=0.01", "data.name=xor", "train.dtype=float64",
                               "data.stratify=false"])
    cfg = config_from_dict(raw)
    assert cfg.model.hidden == [16, 16]
    assert cfg.optim.lr == 0.01
    assert cfg.data.name == "xor" and cfg.data.stratify is False
    assert cfg.train.dtype == "float64"


def test_seeds_count_or_list():
    assert RunConfig(seeds=3).seed_list == [0, 1, 2]
    assert RunConfig(seeds=[7, 11]).seed_list == [7, 11]


def test_grid_expands_every_combination_times_every_seed():
    cfg = config_from_dict(
        {"name": "g", "seeds": 2, "grid": {"model.activation": ["relu", "tanh"], "optim.lr": [0.1, 0.01, 0.001]}}
    )
    specs = expand(cfg)
    assert len(specs) == 2 * 3 * 2
    assert len({s.run_id for s in specs}) == len(specs)
    first = specs[0]
    assert first.run_id == "g/activation=relu,lr=0.1/seed=0"
    assert first.config.model.activation == "relu" and first.config.optim.lr == 0.1
    assert specs[-1].config.model.activation == "tanh" and specs[-1].config.optim.lr == 0.001
    assert expand(cfg)[5].run_id == specs[5].run_id  # stable


def test_grid_with_clashing_leaf_names_keeps_full_keys():
    cfg = config_from_dict({"grid": {"data.seed": [1], "train.epochs": [5]}})
    assert expand(cfg)[0].group == "seed=1,epochs=5"


@pytest.mark.parametrize(
    "raw, fragment",
    [
        ({"modle": {}}, "modle: unknown key"),
        ({"model": {"hiden": [3]}}, "model.hiden: unknown key"),
        ({"optim": {"lr": 0}}, "optim.lr"),
        ({"optim": {"lr": -1.0}}, "optim.lr"),
        ({"optim": {"lr": "fast"}}, "optim.lr"),
        ({"data": {"split": [0.8, 0.4]}}, "sum to at most 1"),
        ({"model": {"hidden": [8, 0]}}, "at least 1 unit"),
        ({"train": {"epochs": 0}}, "train.epochs"),
        ({"data": {"name": "mnist"}}, "'moons'"),
        ({"model": {"activation": "swish"}}, "'relu'"),
        ({"optim": {"name": "lbfgs"}}, "'adam'"),
        ({"data": {"name": "csv"}}, "data.path"),
        ({"grid": {"model.activation": ["relu", "swish"]}}, "swish"),
        ({"grid": {"activation": ["relu"]}}, "dotted key"),
    ],
)
def test_bad_config_values_are_named(raw, fragment):
    with pytest.raises(BadInput) as e:
        config_from_dict(raw, source="exp.toml")
    assert fragment in str(e.value)
    assert str(e.value).startswith("exp.toml")


def test_toml_syntax_error_names_the_line(write_config):
    path = write_config('name = "x"\n[model\nhidden = [3]\n')
    with pytest.raises(BadInput, match=r"exp.toml: TOML syntax error.*line 2"):
        load_config(path)


def test_missing_config_file(tmp_path):
    with pytest.raises(BadInput, match="config file not found"):
        load_config(tmp_path / "nope.toml")


def test_csv_path_is_relative_to_the_config(write_config, tmp_path):
    cfg = load_config(write_config('[data]\nname = "csv"\npath = "points.csv"\n'))
    assert cfg.data.path == str(tmp_path / "points.csv")


def test_an_activation_and_a_dropout_rate_per_hidden_layer():
    cfg = config_from_dict({"model": {"hidden": [8, 6, 4], "activation": ["tanh", "relu", "gelu"],
                                      "dropout": [0.5, 0, 0.1]}})
    assert cfg.model.activations == ["tanh", "relu", "gelu"]
    assert cfg.model.dropouts == [0.5, 0.0, 0.1]
    one = config_from_dict({"model": {"hidden": [8, 6], "activation": "sigmoid", "dropout": 0.2}}).model
    assert one.activations == ["sigmoid", "sigmoid"] and one.dropouts == [0.2, 0.2]
    assert config_from_dict({}).model.dropouts == [0.0]  # no dropout by default


def test_a_grid_of_per_layer_activations_has_readable_groups():
    cfg = config_from_dict({"name": "g", "model": {"hidden": [4, 4]},
                            "grid": {"model.activation": [["relu", "tanh"], "relu"], "model.dropout": [0, [0.1, 0.5]]}})
    specs = expand(cfg)
    assert [s.group for s in specs] == ["activation=[relu,tanh],dropout=0", "activation=[relu,tanh],dropout=[0.1,0.5]",
                                        "activation=relu,dropout=0", "activation=relu,dropout=[0.1,0.5]"]
    assert specs[1].config.model.activations == ["relu", "tanh"] and specs[1].config.model.dropouts == [0.1, 0.5]


@pytest.mark.parametrize("setting, fragments", [
    ("model.activation=['relu','tanh','relu']", ["model.activation", "list of 2 names", "model.hidden = [4, 4]",
                                                 "['relu', 'tanh', 'relu']"]),
    ("model.dropout=[0.1]", ["model.dropout", "list of 2 rates", "model.hidden = [4, 4]", "[0.1]"]),
    ("model.dropout=1", ["model.dropout", "in [0, 1)", "(got 1)"]),
    ("model.dropout=[0.2,-0.1]", ["model.dropout", "in [0, 1)", "-0.1"]),
    ("model.activation=['relu','swish']", ["model.activation", "unknown activation 'swish'", "'relu', 'tanh'"]),
    ("grid.model.activation=[['relu'],'tanh']", ["grid point", "model.activation", "list of 2 names", "['relu']"]),
])
def test_bad_per_layer_settings_are_one_line_naming_the_key(setting, fragments, cli, write_config, tmp_path):
    config = write_config('[model]\nhidden = [4, 4]\n[train]\nepochs = 1\n')
    assert_bad_input(cli("run", str(config), "--out", str(tmp_path / "out"), "--set", setting), *fragments)
    assert not (tmp_path / "out").exists()


def test_the_terminal_shows_per_layer_labels_as_written(cli, write_config, tmp_path):
    config = write_config('name = "pl"\n[data]\nn_samples = 100\n[model]\nhidden = [4, 4]\n[train]\nepochs = 2\n'
                          '[grid]\n"model.activation" = [["relu", "tanh"], "relu"]\n')
    result = cli("run", str(config), "--out", str(tmp_path / "out"))
    assert result.code == 0, result.err
    assert "activation=[relu,tanh]" in result.out  # not swallowed as markup by the terminal's renderer


def test_an_unreadable_config_is_one_line(tmp_path):
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'name = "caf\xe9"\n')
    with pytest.raises(BadInput, match="latin1.toml: cannot read config"):
        load_config(path)
