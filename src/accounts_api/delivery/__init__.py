"""Notification delivery (contract §7, issue 7): everything after an event is in the outbox.

- `dispatch`: each outbox event fanned out, once, into e-mail and webhook deliveries;
- `email`, `webhooks`: one due delivery claimed and sent inside the transaction that locks it;
- `retries`: when a failed delivery is tried again;
- `purge`: old notification logs removed;
- `worker`: the loop that runs them, in `accounts-api worker` and inside `serve`.
"""
