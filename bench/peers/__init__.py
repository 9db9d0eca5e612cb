"""One-command benchmark of MLServe against its peers: `python -m bench.peers`."""
