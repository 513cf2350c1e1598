"""The Docker lab: the lab file as Docker networks and containers (compose.py), and link cuts as
nftables rules in the router container's network namespace (cuts.py). docker/README.md."""
