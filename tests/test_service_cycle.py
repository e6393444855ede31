"""A build whose services import each other around a cycle fails at the `import_service` that
closes it, naming the cycle (ids and files) in one short line with exit 1, as the language
server's diagnostic names it; a service file imported twice off any cycle still builds."""

from __future__ import annotations

from pathlib import Path

from support import run_distdev, write_files

HEADER = "from distdev import import_service\n\n"


def test_a_cycle_of_services_is_an_error_naming_it(tmp_path: Path) -> None:
    app = write_files(tmp_path / "app", {
        "app.py": HEADER + 'a = import_service("./a.py")\n',
        "a.py": HEADER + 'b = import_service("./lib/b.py")\n',
        "lib/b.py": HEADER + 'a = import_service("../a.py")  # closes the cycle\n\n'
                             "def f() -> int:\n    return 1\n",
    })
    result = run_distdev("build", app / "app.py", "-o", tmp_path / "out")
    assert result.returncode == 1
    assert result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert "services import each other in a cycle (app/a (a.py) -> app/a/b (lib/b.py) -> " \
           "app/a/b/a (a.py))" in line
    assert 'the cycle closes at lib/b.py:3 (a = import_service("../a.py")' in line
    assert "RecursionError" not in result.stderr and len(result.stderr) < 600


def test_a_service_importing_itself_or_the_root_is_a_cycle(tmp_path: Path) -> None:
    app = write_files(tmp_path / "self", {"app.py": HEADER + 'me = import_service("./app.py")\n'})
    result = run_distdev("build", app / "app.py", "-o", tmp_path / "out")
    assert result.returncode == 1
    assert "cycle (app (app.py) -> app/app (app.py))" in result.stderr


def test_one_file_imported_by_two_services_is_no_cycle(tmp_path: Path) -> None:
    app = write_files(tmp_path / "diamond", {
        "app.py": HEADER + 'a = import_service("./a.py")\nb = import_service("./b.py")\n',
        "a.py": HEADER + 'log = import_service("./log.py")\n',
        "b.py": HEADER + 'log = import_service("./log.py")\n',
        "log.py": "def write(line: str) -> None:\n    pass\n",
    })
    result = run_distdev("build", app / "app.py", "-o", tmp_path / "out")
    assert result.returncode == 0, result.stderr
