"""examples/sbc/kamailio/: its templates, every placeholder documented, and what `kamailio -c` says."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.support.kamailio import EXAMPLE, KAMAILIO, PLACEHOLDER, TEMPLATES, TLS_MODULE, render


def placeholders() -> set[str]:
    return {name for template in TEMPLATES for name in PLACEHOLDER.findall((EXAMPLE / template).read_text())}


def test_every_placeholder_of_the_templates_is_in_the_readme_table_and_the_sed_line():
    readme = (EXAMPLE / "README.md").read_text()
    table = {name for row in re.findall(r"^\| (`[A-Z0-9_`, ]+`) \|", readme, re.M) for name in re.findall(r"`?([A-Z0-9_]+)`?", row)}
    sed = set(re.findall(r"s#@([A-Z0-9_]+)@#", readme))
    assert placeholders() == table == sed


def test_a_placeholder_without_a_value_is_an_error_not_a_blank():
    with pytest.raises(KeyError, match="@SBC_FQDN@"):
        render("alias=tls:@SBC_FQDN@:@SBC_TLS_PORT@", {"SBC_TLS_PORT": 5061})
    assert render("sip:$rU@@SBC_FQDN@", {"SBC_FQDN": "sbc1.contoso.com"}) == "sip:$rU@sbc1.contoso.com"


@pytest.mark.skipif(KAMAILIO is None or TLS_MODULE is None,
                    reason="kamailio or its TLS module is not installed (Debian: kamailio kamailio-tls-modules)")
def test_kamailio_accepts_the_filled_in_configuration(tmp_path: Path, lab_pki) -> None:
    identity = lab_pki.identity("sbc-sea.contoso.com")
    values: dict[str, object] = {name: "127.0.0.9" for name in placeholders() if name.endswith("_ADDRESS")}
    values |= {"SBC_FQDN": "sbc-sea.contoso.com", "SBC_TLS_PORT": 5061, "SBC_CARRIER_PORT": 5060, "CARRIER_PORT": 5070,
               "TEAMS_PORT": 5061, "OPTIONS_INTERVAL_S": 60, "CONNECT_TIMEOUT_S": 2, "FAILOVER_TIMER_MS": 2000,
               "RUN_DIR": tmp_path, "TLS_CFG": tmp_path / "tls.cfg", "DISPATCHER_LIST": tmp_path / "dispatcher.list",
               "SBC_CERTIFICATE": identity.cert_path, "SBC_KEY": identity.key_path, "CA_LIST": lab_pki.ca_path}
    for template in TEMPLATES:
        (tmp_path / template).write_text(render((EXAMPLE / template).read_text(), values))
    check = subprocess.run([KAMAILIO, "-c", "-f", str(tmp_path / "kamailio.cfg")], capture_output=True, text=True,
                           timeout=30)
    assert check.returncode == 0, check.stderr[-3000:]
