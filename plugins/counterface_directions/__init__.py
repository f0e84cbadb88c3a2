"""counterface reference plugin (directions)."""
