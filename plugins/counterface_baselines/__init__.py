"""counterface reference plugin (baselines)."""
