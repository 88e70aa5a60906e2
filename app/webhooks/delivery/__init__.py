"""Sending the outbox: leases (claims), the signed POST (sender), what an outcome decides
(policy) and the loop that composes them (worker)."""
