"""The mutation score per module after `mutmut run` (make mutation; docs/mutation.md).

    python tools/mutation_table.py              # the table, from mutmut's stored results
    python tools/mutation_table.py --survivors  # and each surviving mutant's name
    python tools/mutation_table.py --edits      # and each one's edit: the line before and after

A mutant counts as killed when a test failed or timed out on it; the score is killed / checked,
so a mutant no selected test reaches ("no tests") counts against its module; a run stopped part
way leaves the rest "not checked" (`mutmut run` goes on from there). heatnet/predict.py
is scored on the predictor's mapping (photo -> crops -> points -> photo), the part the fast
tests in tests/test_predictor_mapping.py own; the rest of it is end-to-end code, tested there.
"""
import argparse
import os
import re
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# heatnet/predict.py's mapping: what turns detections into crops and network points back into photo pixels
MAPPING = {"crops", "crop_boxes", "predict_crop_boxes", "predict_many", "face_frames", "_predict_once", "roll"}
LINE = re.compile(r"^\s+heatnet\.(\w+)\.x(?:ǁ(\w+)ǁ|_)(\w+?)__mutmut_\d+: (.+)$")
KILLED = {"killed", "timeout"}


def scope(module: str, owner: str | None, function: str) -> str | None:
    """The table row a mutant belongs to, or None for predict.py beyond the mapping (the
    FacePredictor's methods and the module's functions of that name; not DlibPredictor's)."""
    if module == "predict":
        return "predict (mapping)" if function in MAPPING and owner in (None, "FacePredictor") else None
    return module


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--survivors", action="store_true", help="list the mutants that no test killed")
    parser.add_argument("--edits", action="store_true", help="list the survivors with the lines each one changes")
    parser.add_argument("--no-progress", action="store_true", help="accepted for uniformity; prints no progress anyway")
    args = parser.parse_args()
    os.chdir(ROOT)  # mutmut reads setup.cfg and mutants/ from the working folder
    out = subprocess.run([sys.executable, "-m", "mutmut", "results", "--all", "true"], capture_output=True, text=True)
    if out.returncode != 0:
        print(f"mutmut results failed (run `make mutation` first):\n{out.stderr}", file=sys.stderr)
        return 1
    counts: dict[str, Counter] = defaultdict(Counter)
    survivors = []
    for line in out.stdout.splitlines():
        match = LINE.match(line)
        if not match or (row := scope(match[1], match[2], match[3])) is None:
            continue
        status = "killed" if match[4] in KILLED else match[4]
        counts[row][status] += 1
        if status not in ("killed", "not checked"):
            survivors.append(line.strip())
    print("| module | mutants | checked | killed | survived | no tests | score of the checked |\n|---|---|---|---|---|---|---|")
    for row in sorted(counts):
        c = counts[row]
        checked = sum(c.values()) - c["not checked"]  # a stopped run leaves some for the next (mutmut resumes)
        score = f"{100 * c['killed'] / checked:.1f} %" if checked else ""
        print(f"| {row} | {sum(c.values())} | {checked} | {c['killed']} | {c['survived']} | {c['no tests']} | {score} |")
    if args.survivors or args.edits:
        print()
        for line in survivors:
            print(line)
            if args.edits:
                print(edit(line.split(":")[0]))
    return 0


def edit(mutant: str) -> str:
    """The lines a mutant changes, as `- before` / `+ after` (mutmut's own diff, without context)."""
    from mutmut.mutation.diff_apply import get_diff_for_mutant

    path = Path("heatnet") / f"{mutant.split('.')[1]}.py"
    diff = get_diff_for_mutant(mutant, path=path).splitlines()
    return "\n".join("    " + line for line in diff if line[:1] in "+-" and line[:3] not in ("+++", "---"))


if __name__ == "__main__":
    sys.exit(main())
