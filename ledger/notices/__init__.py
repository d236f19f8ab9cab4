"""Notices (#20): the scheme's automatic e-mails and signed webhooks.

Derived from the wallet events, never written by a command
(:mod:`ledger.notices.derive`, a pure function), worded in Dutch
(:mod:`ledger.notices.texts`, Jinja2 templates) and sent over SMTP or as
Standard Webhooks (:mod:`ledger.notices.channels`). The notifier that tails
the notification log and keeps each notice's delivery state lives beside the
read models, in :mod:`projections.notifier`.
"""
