"""`scripts/run.sh` installs on the first start and when pyproject.toml changes, not on
every start. Run on a copy of the project whose .venv holds stand-ins that record what
they were asked to do (a real install takes minutes)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BASH = shutil.which("bash") or "/bin/bash"
# Logs its call; as `python -m pip install` it also "installs" the `tracewire` command.
STAND_IN = """#!/usr/bin/env bash
echo "$(basename "$0") $*" >> "$(dirname "$0")/../../calls.log"
if [ "$1 $2 $3" = "-m pip install" ]; then cp "$0" "$(dirname "$0")/tracewire"; fi
"""


def _project(tmp_path: Path) -> Path:
    project = tmp_path / "tracewire"
    (project / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "run.sh", project / "scripts" / "run.sh")
    shutil.copy(ROOT / "pyproject.toml", project / "pyproject.toml")
    bin_dir = project / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "python").write_text(STAND_IN)
    (bin_dir / "python").chmod(0o755)
    return project


def _start(project: Path, *args: str) -> list[str]:
    log = project / "calls.log"
    log.unlink(missing_ok=True)
    done = subprocess.run(
        [BASH, str(project / "scripts" / "run.sh"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return log.read_text().splitlines()


def test_run_installs_only_when_the_project_changed(tmp_path):
    project = _project(tmp_path)
    install = "python -m pip install --quiet --disable-pip-version-check -e ."
    serve = "tracewire serve --demo --port 9000"

    assert _start(project, "--port", "9000") == [install, serve]  # first start
    assert _start(project, "--port", "9000") == [serve]  # nothing changed
    assert _start(project, "--port", "9000") == [serve]

    with (project / "pyproject.toml").open("a") as f:
        f.write("\n# a new dependency\n")
    assert _start(project, "--port", "9000") == [install, serve]
    assert _start(project, "--port", "9000") == [serve]


def test_run_installs_again_when_the_command_is_missing(tmp_path):
    project = _project(tmp_path)
    _start(project)
    (project / ".venv" / "bin" / "tracewire").unlink()
    calls = _start(project)
    assert calls[0].startswith("python -m pip install")
