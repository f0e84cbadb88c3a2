"""counterface reference plugin (pti)."""
