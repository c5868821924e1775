"""Everything bpnet knows about array libraries, and the only code that names one.

The rest of the package is written against the Python Array API standard and
receives its namespace as ``xp``; when it needs to know something that the
standard leaves open (is this array on the host? is this backend lazy? do views
alias?), it asks a function here.

- :mod:`~bpnet.backend.select`: names and modules to namespaces, "auto",
  install hints, dtypes and devices;
- :mod:`~bpnet.backend.transfer`: moving arrays between the host and a device,
  and waiting for a device;
- :mod:`~bpnet.backend.lazy`: Dask's row chunks, persisting, one compute per step,
  chunks of any library (:class:`Chunks`: a Dask array's device);
- :mod:`~bpnet.backend.fast`: every backend-specific fast path, behind one
  switch (``BPNET_PORTABLE=1`` turns them all off);
- :mod:`~bpnet.backend.threads`: the BLAS thread policy for NumPy.
"""

from .lazy import Chunks
from .select import (
    BACKENDS,
    DTYPES,
    GENERIC,
    array_library,
    backend_name,
    check_device,
    cuda_available,
    default_device,
    device_from_state,
    device_state,
    dtype_name,
    get_namespace,
    is_host_array,
    is_writeable,
    namespace_of,
    on_device,
    on_its_device,
    precision,
    resolve_backend,
    resolve_dtype,
)
from .transfer import (
    detach,
    device_description,
    device_of,
    from_host,
    host_scalars,
    synchronize,
    to_device,
    to_numpy,
)

__all__ = [
    "BACKENDS",
    "DTYPES",
    "GENERIC",
    "Chunks",
    "array_library",
    "backend_name",
    "check_device",
    "cuda_available",
    "default_device",
    "detach",
    "device_description",
    "device_from_state",
    "device_of",
    "device_state",
    "dtype_name",
    "from_host",
    "get_namespace",
    "host_scalars",
    "is_host_array",
    "is_writeable",
    "namespace_of",
    "on_device",
    "on_its_device",
    "precision",
    "resolve_backend",
    "resolve_dtype",
    "synchronize",
    "to_device",
    "to_numpy",
]
