"""The crontab that `esbackup cron` prints (commands/cron.py)."""


def test_cron_offers_a_weekly_verify(esb):
    lines = esb.ok("cron").stdout.splitlines()
    (weekly,) = [line for line in lines if " backup verify " in line]
    assert weekly.startswith("37 5 * * 6 root ") and str(esb.catalog) in weekly
    assert weekly.endswith("-q backup verify --older-than 6 --wait 3600")


def tick_argv(result) -> list[str]:
    import shlex

    line = result.stdout.splitlines()[2]
    return shlex.split(line.split(" root ", 1)[1].replace("\\%", "%"))


def test_cron_names_this_esbackup_and_this_catalog_by_absolute_paths(tmp_path, monkeypatch):
    import os
    import sys

    from tests.conftest import Esbackup

    monkeypatch.chdir(tmp_path)
    relative = Esbackup("here/catalog.db").init()  # a cron job's working directory is not this one
    argv = tick_argv(relative.ok("cron"))
    assert argv[argv.index("--catalog") + 1] == str(tmp_path / "here" / "catalog.db")
    assert argv[:3] == [sys.executable, "-m", "esbackup"]  # under pytest: this Python
    script = tmp_path / "bin" / "esbackup"
    script.parent.mkdir()
    script.write_text("#!/bin/sh\n")
    os.chmod(script, 0o755)
    monkeypatch.setattr(sys, "argv", ["bin/esbackup", "cron"])  # started as ./bin/esbackup
    assert tick_argv(relative.ok("cron"))[0] == str(script)
