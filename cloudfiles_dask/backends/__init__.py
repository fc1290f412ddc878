"""The storage backends: the contract in :mod:`.base`, one module per protocol."""

from typing import Any


def __getattr__(name: str) -> Any:
    # Code written for the original reaches the file locks' library as
    # ``cloudfiles.interfaces.fasteners`` (to wrap its lock class, say); the locks of file://
    # look the class up there at each use, so such code keeps working here.
    if name == "fasteners":
        import fasteners

        return fasteners
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
