"""What a training benchmark process ran on: versions, threads, devices, matmul precision.

The header lines are printed by the parent; the thread, device and precision probes run inside
each worker process (each has its own framework imported), and their answers go into its result.
"""

import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def threads_numpy():
    try:
        from threadpoolctl import threadpool_info

        np.ones((2, 2)) @ np.ones((2, 2))
        return ",".join(f"{i.get('internal_api')}={i.get('num_threads')}"
                        for i in threadpool_info())
    except ImportError:
        return "unknown"


def threads_torch():
    import torch

    return f"torch intra={torch.get_num_threads()} inter={torch.get_num_interop_threads()}"


def threads_jax():
    import jax

    platform = jax.devices()[0].platform
    default = " default (all cores)" if platform == "cpu" else ""
    return f"XLA:{platform.upper()}{default}; XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}"


def threads_tensorflow():
    import tensorflow as tf

    return (f"tf intra={tf.config.threading.get_intra_op_parallelism_threads()} "
            f"inter={tf.config.threading.get_inter_op_parallelism_threads()} (0 = all)")


def precision(framework):
    """How float32 matmuls run: TF32 allowed or not (matters on NVIDIA GPUs only)."""
    if framework == "torch":
        import torch

        return f"torch allow_tf32={torch.backends.cuda.matmul.allow_tf32}"
    if framework == "jax":
        import jax

        return f"jax default_matmul_precision={jax.config.jax_default_matmul_precision}"
    import tensorflow as tf

    return f"tf tensor_float_32={tf.config.experimental.tensor_float_32_execution_enabled()}"


def device_of(backend_name, variable):
    """The device a Keras variable lives on (jax: the first device, where jit places it)."""
    if backend_name == "jax":
        import jax

        return str(jax.devices()[0])
    return str(variable.value.device)


def block_tensorflow():
    """Make tensorflow look absent: `import tensorflow` fails, importlib's find_spec says None."""
    sys.modules["tensorflow"] = None


def tensorflow_imported():
    return sys.modules.get("tensorflow") is not None


def versions():
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("keras", "tensorflow", "jax", "jaxlib", "torch", "optax"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def header(extra=()):
    sys.path.insert(0, HERE)
    import evaluation  # the CPU, BLAS and environment lines of the evaluation benchmark

    lines = [line for line in evaluation.header() if not line.startswith(("keras", "BLAS env"))]
    lines.append(", ".join(f"{k} {v}" for k, v in versions().items()))
    env = {k: os.environ[k] for k in sorted(os.environ) if k.startswith(
        ("OPENBLAS", "OMP_", "MKL", "XLA_", "TF_NUM", "TF_INTRA", "TF_INTER", "KERAS_BACKEND",
         "JAX_", "CUDA_VISIBLE"))}
    lines.append(f"thread/env settings: {env or 'none (framework defaults: all cores)'}")
    lines.extend(extra)
    return lines
