"""Every setting with its type, default and comment, for `--help`.

Read from the source of heatnet/config.py (and of the unions and enums its annotations name)
without importing it: config imports torch, which takes seconds, and help must answer at once.
The text therefore always matches the code.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

HERE = Path(__file__).resolve().parent
CHOICES = {"Architecture": "models.py", "LossClass": "losses.py", "Decoder": "codecs.py", "Schedule": "schedules.py"}
ENUMS = {"CropBox": "crop.py"}


def _union_members(file: str, name: str) -> list[str]:
    """Class names in `name = A | B | type[x.C] ...` at the top of heatnet/<file>."""
    for node in ast.parse((HERE / file).read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
            return [part.split(".")[-1] for part in re.sub(r"type\[|\]|[()\s]", "", ast.unparse(node.value)).split("|")]
    raise LookupError(f"{name} not found in heatnet/{file}")


def _enum_members(file: str, name: str) -> dict[str, str]:
    """Member name -> value of `class name(enum.Enum)` in heatnet/<file>."""
    for node in ast.parse((HERE / file).read_text()).body:
        if isinstance(node, ast.ClassDef) and node.name == name:
            return {item.targets[0].id: item.value.value for item in node.body if isinstance(item, ast.Assign)}
    raise LookupError(f"{name} not found in heatnet/{file}")


def _default_text(node: ast.expr) -> str:
    """A default as one types it on the command line: synthetic, landmarks, Unet, Cosine()."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value or '""'
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in ENUMS:
        return _enum_members(ENUMS[node.value.id], node.value.id)[node.attr]
    if isinstance(node, ast.Attribute):
        return node.attr
    return ast.unparse(node)


def _type_text(annotation: str) -> str:
    if annotation in CHOICES:
        return " | ".join(_union_members(CHOICES[annotation], annotation))
    if annotation in ENUMS:
        return " | ".join(_enum_members(ENUMS[annotation], annotation).values())
    return annotation


def settings_help() -> str:
    """One line per field of heatnet.config.Settings, under its section comment."""
    source = (HERE / "config.py").read_text()
    lines = source.splitlines()
    settings = next(n for n in ast.parse(source).body if isinstance(n, ast.ClassDef) and n.name == "Settings")
    fields = {n.lineno: n for n in settings.body if isinstance(n, ast.AnnAssign)}
    out = ["settings (--key=value; an experiment file may change the defaults shown, and a run's "
           "settings.json holds the values it used):"]
    for number in range(settings.body[0].lineno, settings.body[-1].end_lineno + 1):
        text = lines[number - 1].strip()
        if text.startswith("#"):
            out.append(f"\n  {text.lstrip('# ')}")
        elif number in fields and isinstance(fields[number].target, ast.Name):
            node = fields[number]
            default = _default_text(node.value) if node.value is not None else "(required)"
            comment = text.split("  # ", 1)[1] if "  # " in text else ""
            out.append(f"    --{node.target.id}={default}  ({_type_text(ast.unparse(node.annotation))})"
                       + (f"\n        {comment}" if comment else ""))
    return "\n".join(out)
