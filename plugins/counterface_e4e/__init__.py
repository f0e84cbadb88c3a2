"""counterface reference plugin (e4e)."""
