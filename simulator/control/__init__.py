"""The live lab's control plane: a running lab, its HTTP + JSON API and event stream, and `drlab ctl`.

    live.py     LiveLab: start a lab, serve its API on the lab's own loop, stop it on request
    plane.py    ControlPlane: the reads and commands the API offers, in plain Python
    state.py    every read of and command to a role (the one module that knows their shape)
    events.py   the event log fanned out to live readers (bounded queues, drop-oldest)
    api.py      the aiohttp application (docs/live-lab.md is its reference)
    attach.py   AttachedLab: a running lab as the lab a scenario acts on (`drlab run --attach`)
    client.py   ControlClient: the API from Python, without an event loop
    lab_cli.py  `drlab lab up|down`;  ctl.py  `drlab ctl`
"""
