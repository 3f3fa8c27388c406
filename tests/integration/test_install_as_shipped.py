"""The package installed the way the Dockerfile installs it - `pip install .` of the files
the image copies, into a clean virtualenv, no extras - runs: `tracker --help`, and
`tracker worker` against the test broker until /health/ answers 200. A runtime import
that only a dev extra brings (httpx once) fails here, not in production."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.integration.conftest import PROJECT_ROOT, Deployment

DOCKERFILE = PROJECT_ROOT / "Dockerfile"


def copied_before_install() -> list[str]:
    """Sources of the Dockerfile's COPY lines before its `pip install .`: the build input."""
    sources: list[str] = []
    for line in DOCKERFILE.read_text().splitlines():
        if line.startswith("RUN pip install ."):
            return sources
        if line.startswith("COPY ") and "--from" not in line:
            sources += line.split()[1:-1]
    raise AssertionError("the Dockerfile has no `RUN pip install .`")


def clean_env(base: dict[str, str]) -> dict[str, str]:
    """The environment without any trace of the development virtualenv."""
    dev_bin = str(Path(sys.executable).parent)
    env = {key: value for key, value in base.items()
           if key not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env["PATH"] = os.pathsep.join(part for part in env.get("PATH", "").split(os.pathsep)
                                  if part != dev_bin)
    return env


def test_installed_without_extras_runs_help_and_a_worker(deployment: Deployment,
                                                          tmp_path: Path) -> None:
    source = tmp_path / "image"
    source.mkdir()
    for item in copied_before_install():
        origin = PROJECT_ROOT / item
        if origin.is_dir():
            shutil.copytree(origin, source / item,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(origin, source / item)
    venv = tmp_path / "venv"
    env = clean_env(deployment.base_env)
    # The venv is made by the interpreter the tests run on (3.11, as the image's), not by the
    # dev venv's pip; pip may take wheels from its cache, so this is quick after the first run.
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True,
                   env=env, timeout=120)
    done = subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", str(source)],
                          env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout + done.stderr

    installed = subprocess.run(
        [str(venv / "bin" / "python"), "-c",
         "import services.tracker.cli as cli; print(cli.__file__)"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=True)
    assert installed.stdout.startswith(str(venv)), installed.stdout  # not the repository's

    tracker = str(venv / "bin" / "tracker")
    helped = subprocess.run([tracker, "--help"], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=60, check=False)
    assert helped.returncode == 0, helped.stderr
    assert "worker" in helped.stdout and "reconcile" in helped.stdout

    worker = deployment.worker()
    worker.env = clean_env(worker.env)
    worker.command = [tracker, "worker"]
    worker.cwd = tmp_path
    worker.start(ready_timeout=90)
    assert worker.get("/commitments/").status_code == 200
