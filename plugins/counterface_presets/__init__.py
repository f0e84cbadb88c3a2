"""counterface reference plugin (presets)."""
