"""Location conveyance in SIP (RFC 6442): a PIDF-LO document by reference in a multipart body.

An emergency INVITE to a gateway with PidfLoSupported [S4] [S22] carries:

- `Geolocation: <cid:ID>` (RFC 6442 §4.1), pointing at the body part whose `Content-ID` is `<ID>`
  (RFC 2392), and `Geolocation-Routing: yes` (§4.2: the location may be used to route the call);
- a `multipart/mixed` body (RFC 2046 §5.1.3, RFC 5621) with the session description and the
  location as `application/pidf+xml` (RFC 6442 §3.1);
- the location: a PIDF-LO document (RFC 4119) whose `geopriv` holds a civic address with the
  RFC 5139 elements (country, A1 state, A3 city, RD street, HNO house number, PC postal code,
  NAM name, LOC the place inside), in a `dm:device` as RFC 5491 §3.4 recommends.

`multipart_mixed` / `body_parts` build and split the body (what an SBC does to reach the SDP),
`pidf_lo` / `civic_address` build and read the document.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass

PIDF = "urn:ietf:params:xml:ns:pidf"
GEOPRIV = "urn:ietf:params:xml:ns:pidf:geopriv10"
CIVIC = "urn:ietf:params:xml:ns:pidf:geopriv10:civicAddr"
DATA_MODEL = "urn:ietf:params:xml:ns:pidf:data-model"
PIDF_CONTENT_TYPE = "application/pidf+xml"
SDP_CONTENT_TYPE = "application/sdp"
# RFC 5139 §4's order of the civic address elements (a schema sequence).
CIVIC_ORDER = ("country", "A1", "A2", "A3", "A4", "A5", "A6", "PRM", "PRD", "RD", "STS", "POD", "POM", "RDSEC",
               "RDBR", "RDSUBBR", "HNO", "HNS", "LMK", "LOC", "FLR", "NAM", "PC", "BLD", "UNIT", "ROOM", "SEAT",
               "PLC", "PCN", "POBOX", "ADDCODE")


class BodyError(ValueError):
    """A multipart body or a PIDF-LO document that cannot be read."""


@dataclass(frozen=True, slots=True)
class BodyPart:
    content_type: str
    body: bytes
    content_id: str | None = None  # without the angle brackets


def pidf_lo(entity: str, civic: Mapping[str, str], method: str = "Manual") -> bytes:
    """A PIDF-LO document (RFC 4119, RFC 5491 §3.4) locating `entity` at a civic address (RFC 5139)."""
    ET.register_namespace("", PIDF)
    ET.register_namespace("gp", GEOPRIV)
    ET.register_namespace("ca", CIVIC)
    ET.register_namespace("dm", DATA_MODEL)
    presence = ET.Element(f"{{{PIDF}}}presence", entity=entity)
    device = ET.SubElement(presence, f"{{{DATA_MODEL}}}device", id="teams-client")
    geopriv = ET.SubElement(device, f"{{{GEOPRIV}}}geopriv")
    info = ET.SubElement(geopriv, f"{{{GEOPRIV}}}location-info")
    address = ET.SubElement(info, f"{{{CIVIC}}}civicAddress")
    for element in CIVIC_ORDER:
        if civic.get(element):
            ET.SubElement(address, f"{{{CIVIC}}}{element}").text = civic[element]
    ET.SubElement(geopriv, f"{{{GEOPRIV}}}usage-rules")
    ET.SubElement(geopriv, f"{{{GEOPRIV}}}method").text = method
    ET.SubElement(device, f"{{{DATA_MODEL}}}deviceID").text = entity
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(presence)


def civic_address(document: bytes) -> dict[str, str]:
    """The civic address elements of a PIDF-LO document; BodyError if it is not one."""
    try:
        root = ET.fromstring(document)
    except ET.ParseError as exc:
        raise BodyError(f"PIDF-LO is not XML: {exc}") from None
    if root.tag != f"{{{PIDF}}}presence":
        raise BodyError(f"PIDF-LO root is {root.tag}, not a PIDF presence (RFC 4119)")
    address = root.find(f".//{{{GEOPRIV}}}location-info/{{{CIVIC}}}civicAddress")
    if address is None:
        raise BodyError("PIDF-LO has no civic address (RFC 5139)")
    return {child.tag.split("}", 1)[1]: child.text or "" for child in address}


def multipart_mixed(parts: list[BodyPart], boundary: str) -> tuple[str, bytes]:
    """The Content-Type and body of a multipart/mixed body (RFC 2046 §5.1.1)."""
    out = b""
    for part in parts:
        headers = f"Content-Type: {part.content_type}\r\n"
        if part.content_id is not None:
            headers += f"Content-ID: <{part.content_id}>\r\n"
        out += f"--{boundary}\r\n{headers}\r\n".encode() + part.body + b"\r\n"
    return f"multipart/mixed;boundary={boundary}", out + f"--{boundary}--\r\n".encode()


def _boundary(content_type: str) -> str:
    for param in content_type.split(";")[1:]:
        name, _, value = param.strip().partition("=")
        if name.strip().lower() == "boundary" and value.strip():
            return value.strip().strip('"')
    raise BodyError(f"{content_type!r} has no boundary parameter (RFC 2046 §5.1.1)")


def body_parts(content_type: str | None, body: bytes) -> list[BodyPart]:
    """The parts of a body, given its whole Content-Type header value (the boundary is a parameter):
    a multipart one split (RFC 2046 §5.1.1), any other as its one part."""
    if not content_type or not content_type.split(";")[0].strip().lower().startswith("multipart/"):
        return [BodyPart(content_type or "", body)] if body else []
    delimiter = b"--" + _boundary(content_type).encode()
    chunks = body.split(delimiter)
    if len(chunks) < 3 or not chunks[-1].startswith(b"--"):
        raise BodyError("multipart body without its closing delimiter (RFC 2046 §5.1.1)")
    parts = []
    for chunk in chunks[1:-1]:
        chunk = chunk.removeprefix(b"\r\n").removesuffix(b"\r\n")
        head, sep, content = chunk.partition(b"\r\n\r\n")
        if not sep:
            head, content = chunk, b""
        fields: dict[str, str] = {}
        for line in head.decode("utf-8", "replace").split("\r\n"):
            name, colon, value = line.partition(":")
            if colon:
                fields[name.strip().lower()] = value.strip()
        cid = fields.get("content-id")
        parts.append(BodyPart(fields.get("content-type", "text/plain"), content,
                              cid.strip("<>") if cid else None))
    return parts


def part_of(parts: list[BodyPart], content_type: str) -> BodyPart | None:
    """The first part of that type (its parameters ignored)."""
    return next((p for p in parts if p.content_type.split(";")[0].strip().lower() == content_type), None)
