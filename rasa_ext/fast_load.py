"""Load DIET and TED for prediction without tracing their training step.

`RasaModel.load` creates the model's variables by fitting it on one example, which traces the
whole training graph (forward pass, losses, gradients, optimizer) only to throw that work away
when the trained weights are loaded: about 50 s of the 65 s it took to start the server here,
paid again by every test and every replica that starts. Weights saved in TensorFlow's format
are restored into variables as they are created, so creating them with one prediction on the
example Rasa passes for warming up gives the same weights, and the same predictions, without
the training graph. Fine-tuning, and a model loaded without a prediction example, keep Rasa's
way.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf
from rasa.utils.tensorflow.constants import LEARNING_RATE, RUN_EAGERLY
from rasa.utils.tensorflow.model_data import RasaModelData
from rasa.utils.tensorflow.models import RasaModel

original_load = RasaModel.load.__func__  # type: ignore[attr-defined]


def load_for_prediction(
    cls: type[RasaModel],
    model_file_name: str,
    model_data_example: RasaModelData,
    predict_data_example: RasaModelData | None = None,
    finetune_mode: bool = False,
    *args: Any,
    **kwargs: Any,
) -> RasaModel:
    """`RasaModel.load`, building the variables by predicting instead of by training."""
    if finetune_mode or predict_data_example is None:
        return original_load(
            cls,
            model_file_name,
            model_data_example,
            predict_data_example,
            finetune_mode,
            *args,
            **kwargs,
        )
    model = cls(*args, **kwargs)
    config = kwargs.get("config", {})
    model.compile(
        optimizer=tf.keras.optimizers.Adam(config.get(LEARNING_RATE, 0.001)),
        run_eagerly=config.get(RUN_EAGERLY),
    )
    restored = model.load_weights(model_file_name)
    model.run_inference(predict_data_example)
    # Everything prediction uses is restored; the optimizer's and training-only state is not.
    restored.assert_existing_objects_matched()
    restored.expect_partial()
    return model
