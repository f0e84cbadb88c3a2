"""Reference networks in pure PyTorch, with upstream parameter names (a plain library: no hooks)."""
