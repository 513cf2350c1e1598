"""Media: RTP and RTCP of answered calls, and their quality (docs/media.md).

Sans-I/O: `rtp` (packets, G.711 payloads, ptime), `rtcp` (SR/RR, round trip), `stats` (RFC 3550
receiver statistics), `quality` (E-model MOS, CQD verdict). I/O: `stream` (one RTP session on the
lab's network) and `session` (a role's media: its streams, its relays, its ports).
"""
