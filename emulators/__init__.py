"""The local stack: every emulator, PostgreSQL, the gateway and the stand-ins, started on this machine."""
