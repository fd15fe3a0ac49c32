"""Consistency assertions on TV news face labels (a port of the paper library's example).

The paper (Kang et al., "Model Assertions for Monitoring and Improving ML Models", MLSys 2020)
and its library ``model_assertions`` show consistency assertions on TV news: a face
recogniser names the people on screen and a classifier labels their gender and hair colour.
Two assertions catch its mistakes without any ground truth:

- within one scene, the same person keeps their gender and hair colour
  (``rows.consistent`` with the identifier ``scene_name``, a scene + name key derived with
  pyarrow compute, once per attribute);
- a person does not disappear and reappear within 3 frames
  (``rows.contiguous(id="name", time="frame", window=3)``: a one-frame gap is two transitions,
  more than the one allowed).

The table below is small, made up and illustrative (the names are fictional): it is written
so that each assertion fires a few times. The consistency assertions also propose weak labels
(the majority value of the person in the scene), which ``report.apply()`` writes into a copy of
the table.

Run: ``python examples/tv_news_consistency.py``
"""
from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

import tripwire as tw

ADA, BEN, CLEO = "Ada Reyes", "Ben Okafor", "Cleo Park"


def detections() -> pa.Table:
    """One row per face in a frame: the model's outputs (illustrative data)."""
    rows = [
        # frame, scene, name, gender, hair_color
        (0, 1, ADA, "F", "brown"),
        (0, 1, BEN, "M", "black"),
        (1, 1, ADA, "F", "brown"),
        (1, 1, BEN, "M", "black"),
        (2, 1, ADA, "M", "brown"),    # gender flips for one frame
        # frame 2: Ben is missed, and is back at frame 3 (flicker)
        (3, 1, ADA, "F", "brown"),
        (3, 1, BEN, "M", "black"),
        (4, 1, ADA, "F", "brown"),
        (4, 1, BEN, "M", "gray"),     # hair colour flips
        (5, 2, ADA, "F", "brown"),
        (5, 2, CLEO, "F", "red"),
        (6, 2, ADA, "F", "blonde"),   # hair colour flips
        # frame 6: Cleo is missed, and is back at frame 7 (flicker)
        (7, 2, ADA, "F", "brown"),
        (7, 2, CLEO, "F", "red"),
        (8, 2, ADA, "F", "brown"),
        (8, 2, CLEO, "F", "red"),
        (9, 2, ADA, "F", "brown"),
        (9, 2, CLEO, "M", "red"),     # gender flips
    ]
    frame, scene, name, gender, hair = zip(*rows)
    return pa.table({
        "frame": pa.array(frame, pa.int64()),
        "scene": pa.array(scene, pa.int64()),
        "name": pa.array(name, pa.string()),
        "gender": pa.array(gender, pa.string()),
        "hair_color": pa.array(hair, pa.string()),
    })


def with_scene_name(table: pa.Table) -> pa.Table:
    """Add ``scene_name`` ("1:Ada Reyes"): a person *within a scene* is the identifier."""
    key = pc.binary_join_element_wise(pc.cast(table["scene"], pa.string()), table["name"], ":")
    return table.append_column("scene_name", key)


def suite() -> tw.Suite:
    return tw.Suite([
        tw.rows.consistent(id="scene_name", attr="gender", name="same_gender_in_scene"),
        tw.rows.consistent(id="scene_name", attr="hair_color", name="same_hair_in_scene"),
        tw.rows.contiguous(id="name", time="frame", window=3, allowed_transitions=1,
                           name="no_flicker"),
    ])


def main(show: bool = True) -> tw.Report:
    table = with_scene_name(detections())
    report = suite().check(table)
    if show:
        import pandas as pd

        with pd.option_context("display.width", 140, "display.max_columns", 20):
            print(report)
            print("\nsummary:")
            print(report.summary().to_pandas().to_string(index=False))
            print("\nviolations:")
            print(report.to_pandas().to_string(index=False))
            print("\ncorrections (corrected rows):")
            print(report.corrections().to_pandas().to_string(index=False))
            print("\nweak-labelled table:")
            print(report.apply().to_pandas().to_string(index=False))
    return report


if __name__ == "__main__":
    main()
