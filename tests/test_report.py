"""report.html: one self-contained page rebuilt from an output directory's store."""

import re

from conftest import ALL, TINY, assert_bad_input, run_cli


def test_report_is_self_contained_with_every_section(lab):
    out = lab[0]
    html = (out / "report.html").read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)  # nothing fetched from a network
    assert "http://" not in html and "https://" not in html
    assert 'id="overview"' in html
    for name in ALL:
        assert f'<section class="card" id="{name}">' in html
        assert f'href="#{name}"' in html
    images = re.findall(r'<img [^>]*src="([^"]+)"', html)
    assert images and all(src.startswith("data:image/png;base64,") for src in images)
    assert len(images) >= 2 * len(ALL) + 1  # loss + boundary each, and the lr sweep
    for name in ALL:
        assert (out / f"{name}-loss.png").stat().st_size > 10_000


def test_report_command_rebuilds_from_the_store(lab, tmp_path):
    out = lab[0]
    (out / "report.html").unlink()
    code, stdout, stderr = run_cli("report", out)
    assert code == 0, stderr
    assert (out / "report.html").exists() and "report.html" in stdout


def test_report_on_a_bad_directory_is_one_line_and_exit_2(cli, tmp_path):
    assert_bad_input(cli("report", tmp_path / "missing"), "missing", "no such directory")
    assert_bad_input(cli("report", tmp_path), "no runs.sqlite")
    (tmp_path / "runs.sqlite").write_text("not a database at all")
    assert_bad_input(cli("report", tmp_path), "runs.sqlite", "not a trainlab run store")
    assert (tmp_path / "runs.sqlite").read_text() == "not a database at all"


def tick_labels(lo, hi):
    from trainlab.plots import log_scale, plt

    fig, ax = plt.subplots()
    log_scale(ax)
    ax.set_ylim(lo, hi)
    fig.canvas.draw()
    shown = [(tick.get_loc(), tick.label1.get_text())
             for tick in ax.yaxis.get_major_ticks() + ax.yaxis.get_minor_ticks()]
    plt.close(fig)
    return sorted((text for loc, text in shown if text and lo <= loc <= hi), key=float)


def test_log_axes_are_labelled_in_plain_numbers_without_crowding():
    assert tick_labels(0.15, 19) == ["0.2", "0.5", "1", "2", "5", "10"]  # two decades: 1, 2, 5
    assert tick_labels(1e-4, 10) == ["0.0001", "0.001", "0.01", "0.1", "1", "10"]  # powers of ten only
    assert len(tick_labels(0.3, 0.9)) >= 5  # within a decade every tick, else too few to read


def test_a_large_grid_draws_a_readable_sample_of_its_settings(cli, write_config, tmp_path):
    from PIL import Image

    lrs = ", ".join(f"{0.001 * 1.2**i:.6f}" for i in range(40))
    config = write_config(TINY.replace("seeds = 2", "seeds = 1") + f'[grid]\n"optim.lr" = [{lrs}]\n')
    assert cli("run", config, "--out", tmp_path / "out").code == 0
    for kind in ("boundary", "confusion"):
        width, height = Image.open(tmp_path / "out" / f"tiny-{kind}.png").size
        assert height < 1500, f"{kind}: {height} px high for 40 settings"  # 12 panels in <= 3 rows, not 40 in 7-8


def test_a_one_setting_figures_title_fits_its_width_and_names_what_the_colours_mean(tmp_path):
    """One setting draws narrow figures: their titles wrap instead of running off both sides."""
    import matplotlib

    matplotlib.use("Agg")
    from trainlab.config import config_from_dict
    from trainlab.runner import Results, run

    cfg = config_from_dict({"name": "three", "seeds": 2, "data": {"name": "blobs", "n_samples": 150},
                            "model": {"hidden": [8]}, "train": {"epochs": 5}})
    run(cfg, out=tmp_path / "o", plots=False)
    for kind, figure in Results(tmp_path / "o").figures("three").items():
        title = " ".join(figure.get_suptitle().split())
        drawn = figure.get_tightbbox(figure.canvas.get_renderer())  # inches, everything drawn
        assert 0 <= drawn.x0 and drawn.x1 <= figure.get_figwidth(), f"{kind}: {title!r} runs off the figure"
        if kind == "boundary":
            assert "colour = predicted class" in title and "P(class 1)" not in title


def test_confusion_panels_fill_their_rows(tmp_path):
    """Six settings are two rows of three panels, not five and one beside four empty squares."""
    import matplotlib

    matplotlib.use("Agg")
    from trainlab.config import config_from_dict
    from trainlab.runner import Results, run

    cfg = config_from_dict({"name": "six", "seeds": 1, "data": {"n_samples": 120}, "train": {"epochs": 2},
                            "grid": {"optim.lr": [0.001, 0.003, 0.01, 0.03, 0.1, 0.3]}})
    run(cfg, out=tmp_path / "o", plots=False)
    figure = Results(tmp_path / "o").figures("six")["confusion"]
    panels = [ax for ax in figure.axes if ax.get_subplotspec() is not None]
    assert len(panels) == 6 and all(ax.axison for ax in panels)
    assert {ax.get_subplotspec().get_geometry()[:2] for ax in panels} == {(2, 3)}


def test_a_figure_is_drawn_once_into_its_png(monkeypatch):
    """savefig of a figure laid out by tight_layout draws it once, also where the user's matplotlib
    settings ask for a layout engine of their own."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from trainlab.plots import plt, png_bytes

    draws = []
    draw = Figure.draw
    monkeypatch.setattr(Figure, "draw", lambda fig, renderer: draws.append(fig) or draw(fig, renderer))
    for autolayout in (False, True):
        with matplotlib.rc_context({"figure.autolayout": autolayout}):
            fig, ax = plt.subplots()
            ax.plot([0, 1], [1, 0])
            fig.tight_layout()
            draws.clear()
            assert png_bytes(fig).startswith(b"\x89PNG")
            assert len(draws) == 1, autolayout
