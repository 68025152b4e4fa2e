"""The wheel carries every data file the package reads at run time (the platform image
installs the wheel as images/build.sh builds it: a template missing from it was a 500 on the
web UI's first page)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.support import ROOT

pytestmark = pytest.mark.unit


def test_every_data_file_of_the_package_is_in_the_wheel(tmp_path: Path) -> None:
    tracked = subprocess.run(["git", "ls-files", "saasodoo"], cwd=ROOT, capture_output=True,
                             text=True, check=True).stdout.split()  # fmt: skip
    data = {f for f in tracked if not f.endswith(".py")}
    assert data, "no data files tracked under saasodoo/"
    # As images/build.sh builds it: from the files git knows, not the work tree (whose
    # stale build/ and *.egg-info may hold files a clean clone's build would not).
    src = tmp_path / "src"
    for name in subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                               cwd=ROOT, capture_output=True, text=True,
                               check=True).stdout.splitlines():  # fmt: skip
        if (ROOT / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            (src / name).write_bytes((ROOT / name).read_bytes())
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
         "-w", str(tmp_path), str(src)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert built.returncode == 0, built.stdout + built.stderr
    [wheel] = tmp_path.glob("saasodoo-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert not data - names, sorted(data - names)
