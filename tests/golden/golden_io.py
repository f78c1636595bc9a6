"""Shared by the golden generators: writes safetensors through shared/tools/peer/st.py (Debian's
torch 1.13 has no safetensors package), to a temporary name that is then renamed."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..",
                                "shared", "tools", "peer"))
import st  # noqa: E402

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")


def save(tensors, path, metadata=None):
    """tensors: name -> torch tensor (saved detached, contiguous, in its own dtype)."""
    st.save({k: v.detach() for k, v in tensors.items()}, path + ".tmp", metadata)
    os.replace(path + ".tmp", path)
