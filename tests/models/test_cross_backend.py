"""A .keras file saved on this backend loads, predicts identically and trains on the others.

Each backend's run saves files and checks them in fresh processes of the two other
backends, so the three runs of the suite cover all six directions.
"""

import os
import subprocess
import sys
import textwrap

import keras
import numpy as np

from keras_cmr import losses
from keras_cmr.models import CrossModalEncoder, PairwiseModel, SourceModel, TransferModel

BACKENDS = ("tensorflow", "jax", "torch")

CHECK_SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    import keras
    import keras_cmr  # registers the classes: no custom_objects

    folder = sys.argv[1]
    data = np.load(f"{folder}/data.npz")
    x = {"image": data["image"], "text": data["text"]}
    for kind in ("transfer", "pairwise"):
        model = keras.saving.load_model(f"{folder}/{kind}.keras")
        # The saving backend's compiler choice is not imposed (JAX's True would mean
        # torch.compile here): the loading backend resolves "auto" itself.
        assert model.jit_compile == (keras.backend.backend() == "jax"), model.jit_compile
        out = model.predict(x, verbose=0)
        for key in ("image", "text"):
            np.testing.assert_allclose(out[key], data[f"{kind}_{key}"], atol=1e-5)
        before = int(model.optimizer.iterations)
        loss = model.fit(x, data["labels"], batch_size=10, epochs=1, verbose=0).history["loss"]
        assert int(model.optimizer.iterations) == before + 2, model.optimizer.iterations
        assert np.isfinite(loss[-1]), loss
        print(kind, "ok on", keras.backend.backend(), type(model.optimizer).__module__)
""")


def test_files_saved_here_load_and_train_on_the_other_backends(rng, tmp_path):
    labels = np.repeat(np.arange(2), 10)
    x = {"image": rng.normal(size=(20, 6)).astype("float32"),
         "text": rng.normal(size=(20, 4)).astype("float32")}
    arrays = {"labels": labels, **x}

    source = SourceModel(CrossModalEncoder.projection(4, hidden_dims=(8,)), 2)
    models = {
        "transfer": TransferModel(CrossModalEncoder.projection(4, hidden_dims=(8,)), source),
        "pairwise": PairwiseModel(CrossModalEncoder.projection(4, hidden_dims=(8,)),
                                  losses.ContrastiveLoss()),
    }
    source.compile(optimizer=keras.optimizers.Adam(1e-2))
    source.fit(x, labels, batch_size=10, epochs=1, verbose=0)
    for kind, model in models.items():
        model.compile(optimizer=keras.optimizers.Adam(1e-2))
        model.fit(x, labels, batch_size=10, epochs=1, verbose=0)
        model.save(str(tmp_path / f"{kind}.keras"))
        out = model.predict(x, verbose=0)
        arrays.update({f"{kind}_image": out["image"], f"{kind}_text": out["text"]})
    np.savez(tmp_path / "data.npz", **arrays)

    for backend in BACKENDS:
        if backend == keras.backend.backend():
            continue
        env = dict(os.environ, KERAS_BACKEND=backend)
        completed = subprocess.run([sys.executable, "-c", CHECK_SCRIPT, str(tmp_path)],
                                   env=env, capture_output=True, text=True, timeout=600)
        assert completed.returncode == 0, (
            f"saved on {keras.backend.backend()}, failed on {backend}:\n"
            f"{completed.stdout}\n{completed.stderr[-3000:]}"
        )
        assert completed.stdout.count(f"ok on {backend}") == 2, completed.stdout
