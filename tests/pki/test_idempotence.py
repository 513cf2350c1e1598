"""Existing valid material is reused; unusable material is never overwritten without force."""

import datetime as dt
import re

import pytest

from simulator.pki.store import LabPki, PkiConflict
from simulator.pki.variants import VARIANTS

SBC = "sbc1.contoso.com"
KEY = "ec-p256"  # fast; what is tested here does not depend on the key type
ALL_FILES = 4 + 2 + 2 * len(VARIANTS) + 2  # root, intermediate, leaf, catalogue, untrusted root


def fingerprint(directory):
    return {p.relative_to(directory): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def issued(tmp_path_factory):
    directory = tmp_path_factory.mktemp("issued")
    pki = LabPki(directory, key=KEY)
    pki.ensure([SBC])
    return directory, pki


def test_first_run_writes_every_file_and_lists_it(issued):
    directory, pki = issued
    on_disk = {p for p in directory.rglob("*") if p.is_file()}
    assert set(pki.written) == on_disk
    assert len(pki.written) == ALL_FILES and pki.kept == []


def test_second_run_keeps_everything_and_writes_nothing(issued, tmp_path):
    directory, _ = issued
    before = fingerprint(directory)
    again = LabPki(directory, key=KEY)
    again.ensure([SBC])
    assert again.written == [] and len(again.kept) == ALL_FILES
    assert fingerprint(directory) == before


def test_adding_an_fqdn_issues_only_that_fqdn_under_the_same_ca(issued):
    directory, _ = issued
    ca = (directory / "ca.pem").read_bytes()
    more = LabPki(directory, key=KEY)
    more.ensure([SBC, "sba1.contoso.com"], variants=())
    assert more.written == [directory / "sba1.contoso.com.pem", directory / "sba1.contoso.com.key"]
    assert (directory / "ca.pem").read_bytes() == ca


def test_force_regenerates_everything_asked_for(tmp_path):
    LabPki(tmp_path, key=KEY).ensure([SBC], variants=())
    before = fingerprint(tmp_path)
    forced = LabPki(tmp_path, key=KEY, force=True)
    forced.ensure([SBC], variants=())
    after = fingerprint(tmp_path)
    assert set(after) == set(before) and all(after[p] != before[p] for p in before)
    assert len(forced.written) == 6


def leaf_only(d):
    pem = (d / f"{SBC}.pem").read_bytes()
    end = b"-----END CERTIFICATE-----\n"
    (d / f"{SBC}.pem").write_bytes(pem.split(end)[0] + end)


@pytest.mark.parametrize("damage, problem", [
    pytest.param(lambda d: (d / f"{SBC}.pem").write_text("junk"), "cannot be parsed", id="garbage-pem"),
    pytest.param(lambda d: (d / f"{SBC}.key").unlink(), f"{SBC}.key is missing", id="key-missing"),
    pytest.param(lambda d: (d / f"{SBC}.key").write_bytes((d / "ca.key").read_bytes()),
                 "the key does not belong", id="someone-else-s-key"),
    pytest.param(leaf_only, "the chain is not leaf + intermediate", id="intermediate-dropped"),
])
def test_unusable_file_is_a_conflict_and_nothing_is_written(tmp_path, damage, problem):
    LabPki(tmp_path, key=KEY).ensure([SBC], variants=())
    damage(tmp_path)
    before = fingerprint(tmp_path)
    with pytest.raises(PkiConflict, match=re.escape(problem)) as caught:
        LabPki(tmp_path, key=KEY).ensure([SBC, "sba1.contoso.com"], variants=())
    assert [path for path, _ in caught.value.problems] == [tmp_path / f"{SBC}.pem"]
    assert fingerprint(tmp_path) == before  # not even sba1's files


def test_a_lost_root_makes_every_leaf_it_issued_a_conflict(tmp_path):
    LabPki(tmp_path, key=KEY).ensure([SBC], variants=())
    (tmp_path / "ca.pem").unlink()
    (tmp_path / "ca.key").unlink()
    with pytest.raises(PkiConflict) as caught:
        LabPki(tmp_path, key=KEY).ensure([SBC], variants=())
    assert [p.name for p, _ in caught.value.problems] == ["intermediate.pem", f"{SBC}.pem"]


def test_leaf_expiring_within_30_days_is_a_conflict_not_a_silent_renewal(tmp_path):
    LabPki(tmp_path, key=KEY).ensure([SBC], variants=())
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=380)
    with pytest.raises(PkiConflict, match="not valid from now for 30 more days"):
        LabPki(tmp_path, key=KEY, now=later).ensure([SBC], variants=())


def test_not_yet_valid_variant_that_became_valid_is_stale(tmp_path):
    LabPki(tmp_path, key=KEY).broken("not-yet-valid", SBC)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=31)
    with pytest.raises(PkiConflict, match="already valid"):
        LabPki(tmp_path, key=KEY, now=later).broken("not-yet-valid", SBC)


def test_other_key_type_than_on_disk_is_a_conflict(tmp_path):
    LabPki(tmp_path, key="ec-p256").ensure([SBC], variants=())
    with pytest.raises(PkiConflict, match="key is not rsa-2048"):
        LabPki(tmp_path).ensure([SBC], variants=())
