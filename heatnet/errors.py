"""heatnet's error types share one base, `HeatnetError`: a known problem with what the user gave
(a setting, a file, the data, the disk), whose message names it and says what to do. The tools
print one `error:` line for it and exit with code 2 (heatnet.cli); anything else is a bug and
keeps its traceback. This module imports nothing, so tools can use it before torch is loaded."""


class HeatnetError(Exception):
    """A known problem; the message names the file or setting and what to do."""

    # Under torchrun every process meets a configuration error alike, and only rank 0 reports it;
    # an error of one process's own (a bad image, a failed save, a diverged loss) is reported by it.
    same_in_every_process = True


class ConfigError(HeatnetError, ValueError):
    """An experiment or override is wrong; the message says what to do."""
