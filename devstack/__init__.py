"""Starts the whole stack as local processes: for `make run`, the test fixtures and `make bench`.

Not part of either service: it only runs them, the way compose does, on free ports of this machine.
It is also where what the tests and the bench both need is written once: free ports, the nginx
template's values, replicas behind nginx, tickets and publishing as Django writes them.
"""
