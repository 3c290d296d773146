"""Experiment files: importing one by path, collecting the sources a run depends on, and
rebuilding one from sources stored in a checkpoint.

An experiment is a Python file with `settings` (a heatnet.config.Settings) and
`build(settings, scheme) -> Method`. A variant imports its base (`from experiments.unet_kl import
build, settings`), so a checkpoint stores the source of every experiment module the run's file
imports, transitively, and `module_from_sources` rebuilds the model from those, whatever has
happened to the files since.
"""
from __future__ import annotations

import ast
import hashlib
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from heatnet.config import Settings, apply_overrides, method_settings
from heatnet.errors import ConfigError
from heatnet.files import cache_folder, write_atomic

REPO_ROOT = Path(__file__).resolve().parents[1]  # holds heatnet's own experiments/ package
EXPERIMENT_PACKAGES = {"experiments"}


@dataclass(frozen=True)
class ExperimentSource:
    """What a checkpoint needs to rebuild a run's method: the module name of the experiment and
    the source of it and of every experiment module it imports."""

    path: str
    module: str
    sources: dict[str, str]


def load_experiment(path: str | Path) -> ModuleType:
    """Import an experiment file as a module. Its folder's parent goes on sys.path (so a file in
    any `experiments/` folder can import its siblings as `experiments.NAME`), and heatnet's own
    repository root after it, so a file elsewhere can import heatnet's experiments."""
    path = Path(path).resolve()
    if not path.is_file():
        raise ConfigError(f"experiment file {path} not found (try one of experiments/*.py)")
    if str(path.parent.parent) not in sys.path:
        sys.path.insert(0, str(path.parent.parent))
    if str(REPO_ROOT) not in sys.path:
        sys.path.append(str(REPO_ROOT))
    name = f"{path.parent.name}.{path.stem}" if (path.parent / "__init__.py").is_file() else path.stem
    try:
        if "." in name:
            module = importlib.import_module(name)
        else:  # a file on its own: load it under its stem
            spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
    except ConfigError:
        raise
    except (ImportError, SyntaxError, NameError, AttributeError, TypeError, ValueError) as e:
        raise ConfigError(f"{path}: cannot import the experiment ({type(e).__name__}: {e})") from None
    if Path(getattr(module, "__file__", "")).resolve() != path:
        raise ConfigError(f"{path}: imported {module.__file__} instead; is there a name clash?")
    _check_experiment(module, str(path))
    return module


def experiment_settings(path: str | Path, overrides: list[str]) -> Settings:
    """An experiment file's settings with `--key=value` overrides; a setting its Settings class
    lacks is an error naming the experiment and its method's settings."""
    module = load_experiment(path)
    return apply_overrides(module.settings, overrides, owner=f"experiment {module.__name__}")



def experiment_help(path: str | Path) -> str:
    """The settings help of an experiment file (heatnet.config.settings_help of its settings).
    Importing an experiment imports torch and smp (5-6 s on 2 cores), so the text is kept in
    cache_folder()/help under a hash of everything it is made from: the sources of heatnet, of
    heatnet's experiments and of the file's own folder, and the installed torch, smp and timm.
    A later --help reads it without importing torch; any change to a source makes it again."""
    path = Path(path).resolve()
    cached = cache_folder() / "help" / f"{_help_key(path)}.txt"
    try:
        return cached.read_text()
    except OSError:
        pass
    from heatnet.config import settings_help

    text = settings_help(load_experiment(path).settings)
    try:
        write_atomic(cached, text.encode())
    except OSError:  # an unwritable cache only costs the import next time
        pass
    return text


def write_help_cache() -> None:
    """Make every experiment's --help answer at once (the install step of the Makefile runs this)."""
    for path in sorted((REPO_ROOT / "experiments").glob("*.py")):
        if path.name != "__init__.py":
            experiment_help(path)


def _help_key(path: Path) -> str:
    from importlib.metadata import PackageNotFoundError, version

    digest = hashlib.sha256(str(path).encode())
    folders = {Path(__file__).parent, REPO_ROOT / "experiments", path.parent}
    for source in sorted(f for folder in folders for f in folder.rglob("*.py")):
        digest.update(str(source).encode() + source.read_bytes())
    for package in ("torch", "segmentation-models-pytorch", "timm"):
        try:
            digest.update(version(package).encode())
        except PackageNotFoundError:
            pass
    return digest.hexdigest()[:24]

def _check_experiment(module: ModuleType, where: str) -> None:
    for attribute in ("settings", "build"):
        if not hasattr(module, attribute):
            raise ConfigError(f"{where} defines no `{attribute}`; an experiment needs `settings` and `build`")


def _imports(source: str, module_name: str) -> set[str]:
    """Absolute names of the modules a source imports (relative imports resolved)."""
    names = set()
    package = module_name.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}".strip(".")
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)  # `from experiments import unet_kl`
    return names


def experiment_source(module: ModuleType) -> ExperimentSource:
    """The sources of an imported experiment and of the experiment modules it imports."""
    own_package = module.__name__.split(".")[0] if "." in module.__name__ else None
    packages = EXPERIMENT_PACKAGES | ({own_package} if own_package else set())
    sources: dict[str, str] = {}
    todo = [module.__name__]
    while todo:
        name = todo.pop()
        if name in sources:
            continue
        sources[name] = Path(sys.modules[name].__file__).read_text()
        for imported in _imports(sources[name], name):
            found = sys.modules.get(imported)
            if imported.split(".")[0] in packages and getattr(found, "__file__", None) and "." in imported:
                todo.append(imported)
    return ExperimentSource(str(Path(module.__file__).resolve()), module.__name__, sources)


class _StoredSources(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves modules from a {name: source} dict; their parent packages are empty."""

    def __init__(self, sources: dict[str, str]):
        self.sources = sources
        self.packages = {name.rsplit(".", i)[0] for name in sources for i in range(1, name.count(".") + 1)}

    def find_spec(self, fullname, path=None, target=None):
        if fullname in self.sources or fullname in self.packages:
            return importlib.machinery.ModuleSpec(fullname, self, origin=f"<stored {fullname}>",
                                                  is_package=fullname in self.packages)
        return None

    def create_module(self, spec):
        return None

    def exec_module(self, module: ModuleType) -> None:
        source = self.sources.get(module.__name__, "")
        exec(compile(source, module.__spec__.origin, "exec"), module.__dict__)


def module_from_sources(stored: ExperimentSource) -> ModuleType:
    """Import the experiment from its stored sources, isolated from the files on disk and from
    any copy of the same modules already imported (those are put back afterwards)."""
    finder = _StoredSources(stored.sources)
    names = set(stored.sources) | finder.packages
    saved = {name: sys.modules.pop(name) for name in list(sys.modules) if name in names}
    sys.meta_path.insert(0, finder)
    try:
        module = importlib.import_module(stored.module)
    except Exception as e:  # the stored code itself failed: name the checkpoint's experiment
        raise ConfigError(f"cannot rebuild experiment {stored.module} from its stored source "
                          f"({type(e).__name__}: {e})") from None
    finally:
        sys.meta_path.remove(finder)
        for name in names:
            sys.modules.pop(name, None)
        sys.modules.update(saved)
    _check_experiment(module, f"stored experiment {stored.module}")
    return module


def source_differences(stored: ExperimentSource, live: ExperimentSource) -> list[str]:
    """One line per experiment module whose live source differs from the stored one."""
    lines = []
    for name in sorted(set(stored.sources) | set(live.sources)):
        old, new = stored.sources.get(name), live.sources.get(name)
        if old != new:
            state = "not imported now" if new is None else "new import" if old is None else "edited"
            lines.append(f"{name}: {state} since training")
    return lines


class _ReadRecorder:
    """Settings seen through a recorder of the fields read."""

    def __init__(self, settings):
        object.__setattr__(self, "_settings", settings)
        object.__setattr__(self, "read", set())

    def __getattr__(self, name: str):
        self.read.add(name)
        return getattr(self._settings, name)


def build_method(module: ModuleType, settings: Settings, scheme, name: str = "", check_unused: bool = True):
    """`module.build(settings, scheme)`, checked: with `check_unused`, a method setting (a field
    of the experiment's Settings subclass) changed from the experiment's own value that build()
    does not read is a ConfigError naming the experiment and the method settings it does read;
    the model must accept the input size."""
    recorder = _ReadRecorder(settings)
    method = module.build(recorder, scheme)
    own = set(method_settings(type(settings)))
    changed = [name for name in own if check_unused and getattr(settings, name) != getattr(module.settings, name, None)]
    unused = [key for key in sorted(changed) if key not in recorder.read]
    if unused:
        used = sorted(own & recorder.read)
        raise ConfigError(f"{', '.join('--' + key for key in unused)}: experiment {name or module.__name__} does not "
                          f"use {'this setting' if len(unused) == 1 else 'these settings'}; its method reads "
                          f"{', '.join('--' + key for key in used) or 'none of the method settings'}")
    method.model.check_input_size(settings.input_size)
    return method
