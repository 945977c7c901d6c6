"""The agent console: queues, the handoff package, live transcript, replies (docs/handoff.md)."""
