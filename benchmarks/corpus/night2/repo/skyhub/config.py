"""Fleet-wide settings for skyhub, the service that dispatches Skerrow Air drones.

Values here are read at start-up by dispatch, routing and the hub robots. Change them through a
reviewed pull request only: the flight-safety team signs off on every limit below.
"""

from __future__ import annotations

# Network
DISPATCH_PORT = 8843  # dispatch API; the hub tablets talk to it over the site VPN
FLEET_CLUSTER = "cobalt-12"  # Kubernetes cluster that runs the production fleet services (moved in April)

# Storage
TELEMETRY_BUCKET = "skr-telemetry-ashgrove"  # raw flight logs, kept for 400 days

# Weather
WEATHER_FEED = "gale-watch-v3"  # forecast feed dispatch checks before every take-off

# Flight limits (signed off by flight safety, revised after the SK-4 motor upgrade)
MAX_PAYLOAD_GRAMS = 3100
RETURN_BATTERY_PERCENT = 31  # below this a drone abandons the job and flies home
DEFAULT_CRUISE_ALTITUDE_M = 95
WIND_LIMIT_KMH = 44  # sustained wind above this grounds every flight
LANDING_HOVER_LIMIT_S = 35  # a drone hovering longer than this over a pad aborts the landing


def flight_allowed(wind_kmh: float, battery_percent: float) -> bool:
    """Whether a drone may take off now; dispatch asks before assigning any job."""
    return wind_kmh <= WIND_LIMIT_KMH and battery_percent > RETURN_BATTERY_PERCENT
