"""counterface reference plugin (align)."""
