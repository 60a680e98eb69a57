"""What the pretraining tests share: tiny clips, and a run stopped partway."""

from collections.abc import Callable

SMALL = {"frames": 5, "size": 32}


def fails_on_call(n: int, real: Callable) -> Callable:
    """``real``, except that its ``n``-th call raises: a run stopped partway."""
    calls = []

    def wrapper(*args, **kwargs):
        calls.append(1)
        if len(calls) == n:
            raise RuntimeError("simulated power cut")
        return real(*args, **kwargs)

    return wrapper
