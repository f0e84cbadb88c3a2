"""counterface reference plugin (stylegan2)."""
