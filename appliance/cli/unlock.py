"""`strongroom unlock`: hands the passphrase to a daemon started locked (issue 15)."""
