"""Hostile manifests written into a real backup node's storage: `catalog
rebuild` skips each with one warning, imports the good ones, changes no row
that exists, and leaves every listing working."""
import copy
import io
import json
import tarfile
import time
from pathlib import Path

from tests.conftest import Esbackup
from tests.integration.conftest import both_flavours
from tests.integration.site import VM_UUID

OTHER_UUID = "3f2a5a4e-0000-4000-8000-0000000000b2"
INTRUDER_UUID = "3f2a5a4e-0000-4000-8000-0000000000c3"


def fresh_catalog(site) -> Esbackup:
    site.esb.catalog.unlink()
    fresh = Esbackup(site.esb.catalog).init()
    c1, b1 = site.nodes.compute, site.nodes.backup
    fresh.ok("node", "create", "c1", "--address", f"{c1.address}:{c1.port}", "--key",
             c1.key_path, "--host-key", c1.host_key)
    fresh.ok("node", "create", "b1", "--address", f"{b1.address}:{b1.port}", "--key",
             b1.key_path, "--host-key", b1.host_key, "--backup", "--no-compute")
    fresh.ok("storage", "create", "b1", "tank", "--zpool", b1.pool)
    return fresh


def renamed(good: dict, stamp: str, uuid: str = VM_UUID, **vm) -> dict:
    """The good manifest as another backup (its own name, place and location)."""
    m = copy.deepcopy(good)
    name = f"daily-{stamp}"
    m["backup"].update(name=name, vm_uuid=uuid)
    m["vm"].update(uuid=uuid, **vm)
    target = m["backup"]["location"].split("@")[0].replace(VM_UUID, uuid)
    m["backup"]["location"] = f"{target}@esb-{name}"
    return m


def hostile_manifests(good: dict, dataset: str) -> dict[str, bytes]:
    """File name (under the manifest dir) -> contents; every one must be refused."""
    def case(stamp, mutate, uuid=VM_UUID, **vm):
        m = renamed(good, stamp, uuid, **vm)
        mutate(m)
        return f"{uuid}/disk1/daily-{stamp}.json", json.dumps(m).encode()

    def setter(section, **values):
        return lambda m: m[section].update(values)

    cases = dict([
        case("20260101_000001", setter("definition", schedule="61 * * * *")),
        case("20260101_000002", setter("definition", timezone="Mars/Olympus")),
        case("20260101_000003", setter("definition", retention=10**30)),
        case("20260101_000004", setter("definition", retention=-1)),
        case("20260101_000005", setter("definition", desc="x\n* * * * * root sh")),
        case("20260101_000006", setter("backup", created="99999-01-01T00:00:00+00:00")),
        case("20260101_000007", setter("backup", note="\x1b[2Jowned")),
        case("20260101_000008", setter("backup", disk_id=[1])),
        case("20260101_000009", setter("backup", location="tank/elsewhere@esb-x")),
        case("20260101_000010", setter("backup", size=2**80)),
        case("20260101_000011", setter("backup", type="tarball")),
        case("20260101_000012", setter("definition", bwlimit="1٠M")),
        case("20260101_000013", lambda m: m.update(vm="web01")),
        # a new VM on a node nobody registered: a manifest may not create nodes
        case("20260101_000014", lambda m: None, INTRUDER_UUID, hostname="intruder", node="evil"),
        # a new VM that maps the dataset web01 has: a restore would destroy it
        case("20260101_000015", lambda m: None, INTRUDER_UUID, hostname="intruder",
             disks={"1": dataset}),
        # a hostname of a uuid's form, one with a newline
        case("20260101_000016", lambda m: None, INTRUDER_UUID, hostname=VM_UUID),
        case("20260101_000017", lambda m: None, INTRUDER_UUID, hostname="a\nb"),
        # a manifest whose place says another VM
        case("20260101_000018", setter("backup", vm_uuid=OTHER_UUID)),
    ])
    cases[f"{VM_UUID}/disk1/daily-20260101_000020.json"] = b"{not json"
    cases[f"{VM_UUID}/disk1/daily-20260101_000021.json"] = b"\xff\xfe{\x00"
    cases[f"{VM_UUID}/disk1/daily-20260101_000022.json"] = b"[1, 2]"
    cases[f"{VM_UUID}/disk1/odd name.json"] = json.dumps(good).encode()
    cases[f"{VM_UUID}/disk1/evil\n.json"] = json.dumps(good).encode()
    return cases


def tar_of(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), time.time()
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


@both_flavours
def test_hostile_manifests_skipped_good_ones_imported(site):
    ref = site.define("daily", "--type", "dataset", "--retention", "0")
    site.esb.ok("run", ref)
    site.esb.ok("run", ref)
    names = [b["name"] for b in site.backups()]
    top = str(Path(site.backups()[0]["manifest"]).parents[2])
    good = json.loads(site.read(f"{top}/{VM_UUID}/disk1/{names[0]}.json"))
    if site.zvol:  # OpenZFS: the newest backup holds its snapshot
        site.zfs("release", "esbackup", f"{site.target}@esb-{names[1]}")
    site.zfs("destroy", f"{site.target}@esb-{names[1]}")  # its data is gone

    fresh = fresh_catalog(site)
    out = fresh.ok("catalog", "rebuild", "--node", "b1")
    assert out.stdout.startswith("1 backups, 1 vms, 1 definitions, 1 lost added")
    assert [(b["name"], b["status"]) for b in fresh.json("backup", "list")] == \
        [(names[0], "ok"), (names[1], "lost")]
    before = {what: fresh.json(what, "list") for what in ("backup", "definition", "vm")}

    cases = hostile_manifests(good, site.nodes.dataset)
    # and one good manifest of a new VM on the registered node, whose data is gone
    newcomer = renamed(good, "20260101_000030", OTHER_UUID, hostname="db01",
                       disks={"1": site.nodes.dataset + "-db01"})
    newcomer["definition"] = None
    newcomer["backup"]["definition"] = None
    cases[f"{OTHER_UUID}/disk1/daily-20260101_000030.json"] = json.dumps(newcomer).encode()
    site.sh(site.node_of(top), 'tar -C "$1" -xf -', top, input=tar_of(cases))  # one call

    result = fresh("catalog", "rebuild", "--node", "b1")
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == len(cases) - 1 == 23, result.stderr
    assert all("skipped" in w and "\x1b" not in w for w in warnings)
    assert result.stdout.startswith("0 backups, 1 vms, 0 definitions, 1 lost added")
    assert f"{len(cases) - 1} manifests skipped" in result.stdout

    after = {what: fresh.json(what, "list") for what in ("backup", "definition", "vm")}
    assert after["definition"] == before["definition"]  # nothing that exists changed
    assert [b for b in after["backup"] if b["vm_uuid"] == VM_UUID] == before["backup"]
    assert {v["hostname"] for v in after["vm"]} == {"web01", "db01"}
    assert [n["name"] for n in fresh.json("node", "list")] == ["b1", "c1"]
    for listing in (["schedule", "overview"], ["schedule", "load"], ["history"],
                    ["storage", "list"], ["backup", "list", "--full"]):
        fresh.ok(*listing)
