"""Run in the Rasa venv: the handoff gate still fits the installed Rasa.

`rasa_ext.handoff.handle_message` re-implements `MessageProcessor.handle_message` with the
gate in front, so the Rasa steps it repeats must be the ones Rasa itself takes, in order.
Prints one JSON line.
"""

import ast
import inspect
import json
import textwrap

from rasa.core.processor import MessageProcessor

from rasa_ext import handoff
from rasa_ext.patches import apply_patches


def in_source_order(node: ast.AST) -> list[ast.AST]:
    found = [node]
    for child in ast.iter_child_nodes(node):
        found.extend(in_source_order(child))
    return found


def awaited_calls(function: object) -> list[str]:
    """Names of the awaited method calls, in the order they appear in the source."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    return [
        node.value.func.attr
        for node in in_source_order(tree)
        if isinstance(node, ast.Await)
        and isinstance(node.value, ast.Call)
        and isinstance(node.value.func, ast.Attribute)
    ]


original = MessageProcessor.handle_message
rasa_steps = awaited_calls(original)
ours = awaited_calls(handoff.handle_message)
apply_patches()
print(
    json.dumps(
        {
            "rasa": rasa_steps,
            "ours": ours,
            "patched": MessageProcessor.handle_message is handoff.handle_message,
        }
    )
)
