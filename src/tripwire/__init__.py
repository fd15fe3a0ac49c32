"""tripwire: fast model assertions over Apache Arrow batches of model outputs.

>>> import tripwire as tw
>>> suite = tw.Suite([tw.rows.consistent(id="name", attr="gender")])
>>> report = suite.check(table)            # doctest: +SKIP
"""
from . import boxes, ecg, io, points, rows
from ._assertion import Assertion, Correction, Result
from ._registry import kinds
from .alerts import Alert, AlertEvent, AlertManager, Webhook
from .boxes import Boxes
from .points import Boxes3D, Calib, Points
from .ecg import ECG
from .errors import BackendUnavailable, ColumnError, InputError, SuiteError, TripwireError
from .metrics import MonitorMetrics, serve_metrics  # prometheus_client is imported on first use
from .background import BackgroundMonitor
from .monitor import Monitor
from .report import Report
from .suite import Suite, build
from .udf import assertion

__version__ = "0.1.0"

__all__ = [
    "Suite", "Report", "Monitor", "BackgroundMonitor", "Assertion", "Result", "Correction", "rows", "boxes", "Boxes", "io", "assertion",
    "points", "Boxes3D", "Points", "Calib", "ecg", "ECG",
    "build", "kinds", "MonitorMetrics", "serve_metrics", "Alert", "AlertEvent", "AlertManager", "Webhook",
    "TripwireError", "InputError", "ColumnError", "SuiteError", "BackendUnavailable", "__version__",
]
