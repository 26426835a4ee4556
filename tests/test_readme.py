"""The README's fresh-machine commands: `sudo` for a user, none for root (CI images lack it).

Each command runs in bash with `id`, `sudo`, `apt-get` and `python3` replaced by programs that
record their arguments (and `python3 -m venv` making a `.venv` of recording programs), so the
test sees what the command would run, in order, without installing anything.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import keras
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"

RECORDER = """#!/bin/sh
echo "$(basename "$0") $*" >> "$RECORD"
"""
PYTHON3 = (
    RECORDER
    + """if [ "$1 $2" = "-m venv" ]; then
  mkdir -p "$3/bin"
  for tool in pip python; do cp "$0" "$3/bin/$tool"; done
fi
"""
)


def fresh_machine_commands() -> list[str]:
    text = README.read_text(encoding="utf-8")
    section = text.split("## On a fresh machine", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, re.DOTALL)
    return [block.strip() for block in blocks if "apt-get" in block]


def run_as(uid: int, command: str, tmp_path: Path) -> list[str]:
    shims, work = tmp_path / "bin", tmp_path / "work"
    shims.mkdir()
    work.mkdir()
    for name, script in [("sudo", RECORDER), ("apt-get", RECORDER), ("python3", PYTHON3)]:
        (shims / name).write_text(script)
    (shims / "id").write_text(f"#!/bin/sh\necho {uid}\n")
    for shim in shims.iterdir():
        shim.chmod(0o755)
    record = tmp_path / "record.txt"
    env = {"PATH": f"{shims}:/usr/bin:/bin", "RECORD": str(record)}
    subprocess.run(["bash", "-c", command], cwd=work, env=env, check=True, timeout=30)
    return record.read_text().splitlines()


pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow" or shutil.which("bash") is None,
    reason="tests shell commands, not Keras: runs in the TensorFlow pass of the matrix only",
)


def test_the_readme_has_its_two_fresh_machine_commands():
    commands = fresh_machine_commands()
    assert len(commands) == 2
    assert all("\n" not in command for command in commands)  # one line each, to paste


@pytest.mark.parametrize("index", [0, 1])
def test_root_runs_apt_get_without_sudo(index, tmp_path):
    ran = run_as(0, fresh_machine_commands()[index], tmp_path)
    assert ran[:2] == ["apt-get update", "apt-get install -y dataset-fashion-mnist python3-venv"]
    assert ran[2] == "python3 -m venv .venv"
    assert ran[3].startswith("pip install -e .[") and ran[4].startswith("python ")
    assert not any(line.startswith("sudo") for line in ran)


@pytest.mark.parametrize("index", [0, 1])
def test_a_user_runs_apt_get_with_sudo_and_the_rest_without(index, tmp_path):
    ran = run_as(1000, fresh_machine_commands()[index], tmp_path)
    assert ran[:2] == [
        "sudo apt-get update",
        "sudo apt-get install -y dataset-fashion-mnist python3-venv",
    ]
    assert [line.split()[0] for line in ran[2:]] == ["python3", "pip", "python"]
