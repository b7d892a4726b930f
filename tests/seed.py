"""Examples straight from the product spec (shared/seed/virtual-server-backups.txt)."""

# The seed's "Cron Format" list, verbatim.
SEED_CRONS = [
    "30 08 10 06 *",
    "00 11,16 * * *",
    "00 09-17 * * *",
    "00 09-18 * * 1-5",
    "* * * * *",
    "0,10,20,30,40,50 * * * *",
    "0,2,4,6,8,10 * * * *",
    "0 0 1 1 *",
    "0 0 * * *",
    "0 * * * *",
]
