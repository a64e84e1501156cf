"""Streams Redis pub/sub to browsers as Server-Sent Events; see README.md for the wire contract."""
