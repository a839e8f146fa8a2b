"""The drift monitor: the serving-side drift alert's source, with the drift pipeline's detector."""

from mlops_platform.components.drift_monitor.model import DriftMonitorConfig, monitored_models
from mlops_platform.components.drift_monitor.resources import DriftMonitor, DriftMonitorArgs

__all__ = ["DriftMonitor", "DriftMonitorArgs", "DriftMonitorConfig", "monitored_models"]
