"""`make bench`: the fan-out benchmark, run against real redis, the SSE service and nginx.

Everything is started fresh per scenario on free loopback ports; the load client and the publisher run
as processes of their own so their CPU is never the server's. See `python -m bench --help`.
"""
