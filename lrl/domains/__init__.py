"""Task domains for the LRL pipeline, one module per domain (see lrl.domain for the protocol)."""
