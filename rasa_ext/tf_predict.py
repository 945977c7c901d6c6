"""Call the compiled prediction graph of DIET and TED directly.

Rasa builds each model's prediction step as a `tf.function` with one input signature whose
dimensions are dynamic, so there is exactly one compiled graph. Calling the `tf.function` still
runs TensorFlow's dispatch (matching the inputs against its signature, finding the graph) on
every call, which here cost more than running the graph itself. The concrete function is that
same graph; calling it skips only the dispatch.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf
from keras.utils import tf_utils
from rasa.shared.constants import DIAGNOSTIC_DATA
from rasa.utils.tensorflow import models

original_rasa_predict = models.RasaModel._rasa_predict


def rasa_predict_on_concrete_graph(self: models.RasaModel, batch_in: tuple[Any, ...]) -> dict:
    """`RasaModel._rasa_predict`, calling the one concrete function of the prediction step."""
    if self._run_eagerly or not self.prepared_for_prediction:
        return original_rasa_predict(self, batch_in)
    self._training = False
    if self._tf_predict_step is None:
        self._tf_predict_step = tf.function(
            self.predict_step, input_signature=self._dynamic_signature(batch_in)
        )
    concrete = getattr(self, "_concrete_predict_step", None)
    if concrete is None:
        concrete = self._concrete_predict_step = self._tf_predict_step.get_concrete_function()
    # The flat call: the inputs are already exactly the signature's tensors, in order.
    tensors = [tf.convert_to_tensor(value) for value in batch_in]
    outputs = tf_utils.sync_to_numpy_or_python_type(
        concrete._call_flat(tensors, concrete.captured_inputs)
    )
    if DIAGNOSTIC_DATA in outputs:
        outputs[DIAGNOSTIC_DATA] = self._empty_lists_to_none_in_dict(outputs[DIAGNOSTIC_DATA])
    return outputs
