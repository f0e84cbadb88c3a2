"""counterface reference plugin (blend)."""
