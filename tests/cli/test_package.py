"""A plain (non-editable) install: the configs ship in the wheel, and `hdvision train` /
`check-data` work from an empty folder, writing data/ and logs/ there."""

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import TINY

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The project built into a wheel (from a copy: a build writes into its source folder) and
    unpacked as site-packages would hold it."""
    tmp = tmp_path_factory.mktemp("package")
    source = tmp / "source"
    shutil.copytree(ROOT / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
    subprocess.run([*build, "-w", str(tmp / "dist"), str(source)], check=True)
    (wheel,) = (tmp / "dist").glob("hdvision-*.whl")
    site = tmp / "site"
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        archive.extractall(site)
    assert "hdvision/conf/train.yaml" in names
    assert "hdvision/conf/experiment/effnet_hd.yaml" in names
    assert "hdvision/conf/model/stem/saliency_sampler.yaml" in names
    return site


def _hdvision(site: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(site)}  # before the checkout's editable path
    env.pop("HDVISION_ROOT", None)
    code = "import sys; from hdvision.cli.main import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run(
        [sys.executable, "-c", code, *args], cwd=cwd, env=env, capture_output=True, text=True
    )


@pytest.mark.slow
def test_hdvision_train_runs_from_an_empty_folder_with_the_packaged_configs(installed, tmp_path):
    run = _hdvision(installed, tmp_path, "train", *TINY, "test=false")
    assert run.returncode == 0, run.stderr[-2000:]
    (ckpt,) = tmp_path.glob("logs/train/runs/*/checkpoints/last.ckpt")
    assert next(tmp_path.glob("data/hd_digits_*/train.csv")).is_file()
    # The run imported the installed copy, not this checkout.
    log = next(tmp_path.glob("logs/train/runs/*/.hydra/hydra.yaml")).read_text()
    assert str(installed / "hdvision" / "conf") in log
    evaluated = _hdvision(installed, tmp_path, "eval", *TINY[:-2], f"ckpt_path={ckpt}")
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]


@pytest.mark.slow
def test_a_user_config_folder_adds_experiments(installed, tmp_path):
    mine = tmp_path / "myconf" / "experiment"
    mine.mkdir(parents=True)
    (mine / "mine.yaml").write_text("# @package _global_\ntags: [from_my_folder]\n")
    args = ["train", "--config-dir", str(tmp_path / "myconf"), "experiment=mine", *TINY]
    shown = _hdvision(installed, tmp_path, *args, "--cfg", "job")
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert "- from_my_folder" in shown.stdout
