"""counterface reference plugin (arcface)."""
