"""Webhooks: subscriptions, outbox, Standard Webhooks signing, SSRF checks, delivery."""
