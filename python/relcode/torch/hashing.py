"""Weight sharing with random signs; the implementation (numpy only) is :mod:`relcode.sharing`."""

from ..sharing import SIGN_PURPOSE, expand, n_variables, signs

__all__ = ["SIGN_PURPOSE", "expand", "n_variables", "signs"]
