"""simulator.endpoint — SIP over the `sim` or `real` network: transport, transactions, UA core glue.

    ep = SipEndpoint(network, host="sbc1.contoso.com", node="sbc1", rng=random.Random(seed),
                     timers=TimerSettings(), tls=TlsConfig(identity=..., trust=ca))   # tls: for connects
    await ep.listen("udp" | "tcp" | "tls", port, tls=TlsConfig(identity=..., trust=ca, require_client_cert=True))
    ep.on_request = handler              # handler(incoming), sync or async, one call per new request
    tx = ep.request(request, Target(host, port, transport, tls_name=None, connection=None),
                    on_provisional=cb)
    response = await tx.final()          # TransactionTimeout | TransportFailure(reason)
    tx.cancel(); ep.send_ack(ack, target); await ep.close()

See endpoint.py (SipEndpoint, ClientTx, Incoming), types.py (Target, Peer, TlsConfig, errors)
and dialog.py (SipDialog) for the details; the "As built" notes below say what each rule is.
"""

from simulator.endpoint.dialog import SipDialog
from simulator.endpoint.endpoint import ClientTx, Incoming, SipEndpoint
from simulator.endpoint.transport import Connection
from simulator.endpoint.types import (
    Peer,
    SipFailure,
    Target,
    TlsConfig,
    TransactionTimeout,
    TransportFailure,
)

__all__ = [
    "ClientTx",
    "Connection",
    "Incoming",
    "Peer",
    "SipDialog",
    "SipEndpoint",
    "SipFailure",
    "Target",
    "TlsConfig",
    "TransactionTimeout",
    "TransportFailure",
]
