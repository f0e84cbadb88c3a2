"""pi_0 variants: the baseline image paired with pi_1's edit.

All three take the same inputs (the photo, ``render(a)`` = the photo with the face re-synthesised
through the tuned pivot at strength ``a`` and pasted back with the same blender, and pi_1's
``alpha``), so swapping the baseline never changes pi_1's output.
"""

from __future__ import annotations

from counterface import Baseline


class Original(Baseline):
    """pi_0(Z) = Z: the photo itself. The pair then also differs in GAN reconstruction error."""

    def make(self, photo, render, alpha):
        return photo.copy()


class Reconstruction(Baseline):
    """pi_0(Z) = the alpha = 0 reconstruction through the same tuned generator and blend.

    The counterfactual pair then differs only in the attribute, not in GAN reconstruction.
    """

    def make(self, photo, render, alpha):
        return render(0.0)


class Negate(Baseline):
    """pi_0(Z) = the edit at -alpha: removes (or reverses) the attribute instead of keeping it."""

    def make(self, photo, render, alpha):
        return render(-float(alpha))
