"""Imports every service's models so the shared metadata knows all tables.

Migrations are the one place that sees every schema; services never import each other.
"""

from services.campaign_engine import models as campaign_engine_models  # noqa: F401
from services.chat_agent import models as chat_agent_models  # noqa: F401
from services.redemption_tracker import models as redemption_tracker_models  # noqa: F401
from shared import auth  # noqa: F401
from shared.db import Base

target_metadata = Base.metadata
