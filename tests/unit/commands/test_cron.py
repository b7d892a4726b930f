"""The crontab that `esbackup cron` prints (commands/cron.py)."""


def test_cron_offers_a_weekly_verify(esb):
    lines = esb.ok("cron").stdout.splitlines()
    (weekly,) = [line for line in lines if " backup verify " in line]
    assert weekly.startswith("37 5 * * 6 root ") and str(esb.catalog) in weekly
    assert weekly.endswith("-q backup verify --older-than 6 --wait 3600")
