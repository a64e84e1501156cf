"""Streams Redis pub/sub to browsers as Server-Sent Events; see docs/wire-contract.md for the
wire contract."""
