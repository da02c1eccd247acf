"""report.html: one self-contained page rebuilt from an output directory's store."""

import re

from conftest import ALL, assert_bad_input, run_cli


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
