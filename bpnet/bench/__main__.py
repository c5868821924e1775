"""``python -m bpnet.bench``: the same as ``bpnet bench``."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
