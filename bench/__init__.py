"""`make bench`: the fan-out benchmark, run against real redis, the SSE service and nginx, and against
nginx + nchan beside them, so that each figure has a ratio to the C implementation on the same machine.

Everything is started fresh per scenario on free loopback ports; the load client and the publisher run
as processes of their own so their CPU is never the server's. See `python -m bench --help`.
"""
