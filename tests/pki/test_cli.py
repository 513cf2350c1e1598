"""`drlab certs`: what it prints, what it writes, its exit status."""

import pytest

from simulator.cli import main

SBC = "sbc1.contoso.com"


def test_lists_every_file_it_writes_then_the_trust_anchor(tmp_path, capsys):
    assert main(["certs", "--out", str(tmp_path), SBC, "--key", "ec-p256"]) == 0
    lines = capsys.readouterr().out.splitlines()
    written = {line.removeprefix("wrote ") for line in lines if line.startswith("wrote ")}
    assert written == {str(p) for p in tmp_path.rglob("*") if p.is_file()}
    assert f"wrote {tmp_path / 'broken' / 'wildcard' / (SBC + '.pem')}" in lines
    assert lines[-1] == f"trust anchor: {tmp_path / 'ca.pem'}"


def test_second_run_only_keeps(tmp_path, capsys):
    main(["certs", "--out", str(tmp_path), SBC, "--key", "ec-p256", "--no-broken"])
    capsys.readouterr()
    assert main(["certs", "--out", str(tmp_path), SBC, "--key", "ec-p256", "--no-broken"]) == 0
    out = capsys.readouterr().out
    assert "wrote" not in out and out.count("kept ") == 6


def test_conflict_exits_1_names_the_file_and_suggests_force(tmp_path, capsys):
    main(["certs", "--out", str(tmp_path), SBC, "--key", "ec-p256", "--no-broken"])
    (tmp_path / f"{SBC}.pem").write_text("junk")
    capsys.readouterr()
    assert main(["certs", "--out", str(tmp_path), SBC, "--key", "ec-p256", "--no-broken"]) == 1
    err = capsys.readouterr().err
    assert f"{tmp_path / (SBC + '.pem')}: cannot be parsed" in err and "--force" in err
    assert (tmp_path / f"{SBC}.pem").read_text() == "junk"
    assert main(["certs", "--out", str(tmp_path), SBC, "--key", "ec-p256", "--no-broken", "--force"]) == 0
    assert "BEGIN CERTIFICATE" in (tmp_path / f"{SBC}.pem").read_text()


def test_bad_fqdn_exits_2_with_the_reason(tmp_path, capsys):
    assert main(["certs", "--out", str(tmp_path), "sbc_1"]) == 2
    assert "not a fully qualified domain name: 'sbc_1'" in capsys.readouterr().err


def test_wildcard_skipped_for_a_name_without_parent_domain_is_said(tmp_path, capsys):
    assert main(["certs", "--out", str(tmp_path), "contoso.com", "--key", "ec-p256"]) == 0
    assert "skipped broken/wildcard/contoso.com" in capsys.readouterr().out


def test_help_lists_the_catalogue_with_the_refusal_each_variant_causes(capsys):
    with pytest.raises(SystemExit):
        main(["certs", "--help"])
    out = capsys.readouterr().out
    assert "  expired               validity ended yesterday -> tls.expired" in out
    assert "  wildcard              CN = SAN = *.<parent domain>" in out
