"""Starts the whole stack as local processes: for `make run`, the test fixtures and `make bench`.

Not part of either service: it only runs them, the way compose does, on free ports of this machine.
"""
