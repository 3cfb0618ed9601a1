"""The control center's live figures. Every admin call is in the audit log (reads by functions/_http.py)."""

from __future__ import annotations

from functions._http import Call, endpoint
from shared import bootstrap
from shared.domain.roles import Role
from shared.schemas import Empty
from shared.schemas.admin_dashboard import Dashboard
from shared.services.admin_dashboard import figures


@endpoint(get=Empty, roles={Role.ADMIN}, response=Dashboard)
def admin_dashboard(call: Call[Empty]) -> Dashboard:
    """Live figures: mitras online/busy/at capacity, searches, sessions, today's waits, no_mitra rate, revenue."""
    return Dashboard.model_validate(figures(bootstrap.ports()))
