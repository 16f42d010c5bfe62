"""Fleet-wide settings for skyhub, the service that dispatches Skerrow Air drones.

Values here are read at start-up by dispatch, routing and the hub robots. Change them through a
reviewed pull request only: the flight-safety team signs off on every limit below.
"""

from __future__ import annotations

# Network
DISPATCH_PORT = 8843  # dispatch API; the hub tablets talk to it over the site VPN
FLEET_CLUSTER = "cobalt-9"  # Kubernetes cluster that runs the production fleet services

# Storage
TELEMETRY_BUCKET = "skr-telemetry-ashgrove"  # raw flight logs, kept for 400 days

# Flight limits (signed off by flight safety)
MAX_PAYLOAD_GRAMS = 2750
RETURN_BATTERY_PERCENT = 27  # below this a drone abandons the job and flies home
DEFAULT_CRUISE_ALTITUDE_M = 95
WIND_LIMIT_KMH = 38  # sustained wind above this grounds every flight


def flight_allowed(wind_kmh: float, battery_percent: float) -> bool:
    """Whether a drone may take off now; dispatch asks before assigning any job."""
    return wind_kmh <= WIND_LIMIT_KMH and battery_percent > RETURN_BATTERY_PERCENT
