"""Thin triggers, one module per area: parse, authorize, call one service, respond."""
