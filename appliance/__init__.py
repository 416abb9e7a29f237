"""Strongroom appliance: composition root, service layer, protocol adapters, CLI."""
