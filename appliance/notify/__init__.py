"""Notifications (issue 13): building and sending what tells people that something
happened, never deciding who may hear about what.

The service layer decides (who is told, about which names, when); this package only
builds and delivers: `mailer` sends one EmailMessage over SMTP ([mail] options) and
turns every failure into one `MailError` line; `ignore` says which file names are
editor and OS litter ([notify] ignore). Digests, the outbox sender and webhooks live
here too, each in its own module.
"""
